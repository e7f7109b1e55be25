/**
 * The grant's token for the SSH proxy's password prompt: `<grantId>.<mac>`, where the MAC is an
 * HMAC-SHA256 of the grant id under a key derived from the CA private key. Stateless: the broker
 * and the proxy hold the same CA, so nothing is stored and nothing secret is logged. The token
 * lives exactly as long as its grant: the proxy checks the grant on every login.
 */
import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import type { SshCa } from './keys.ts';

const GRANT_ID = /^[a-z0-9]{1,64}$/;
const MAC_LENGTH = 43;
const keys = new WeakMap<SshCa, Buffer>();

function tokenKey(ca: SshCa): Buffer {
  let key = keys.get(ca);
  if (!key) {
    const seed = Buffer.from(ca.privateKey.export({ format: 'jwk' }).d!, 'base64url');
    key = Buffer.from(hkdfSync('sha256', seed, 'warden', 'warden ssh proxy token v1', 32));
    keys.set(ca, key);
  }
  return key;
}

function mac(ca: SshCa, grantId: string): string {
  return createHmac('sha256', tokenKey(ca)).update(`grant:${grantId}`).digest('base64url');
}

/** Builds the proxy token of a grant. */
export function createProxyToken(ca: SshCa, grantId: string): string {
  return `${grantId}.${mac(ca, grantId)}`;
}

/**
 * Returns the grant id a token was made for, or `undefined` when the token is malformed or its MAC
 * does not match (compared in constant time).
 */
export function verifyProxyToken(ca: SshCa, token: string): string | undefined {
  if (typeof token !== 'string' || token.length > 64 + 1 + MAC_LENGTH) return undefined;
  const dot = token.indexOf('.');
  const grantId = token.slice(0, dot);
  const given = Buffer.from(token.slice(dot + 1), 'utf8');
  if (dot < 1 || !GRANT_ID.test(grantId) || given.length !== MAC_LENGTH) return undefined;
  const expected = Buffer.from(mac(ca, grantId), 'utf8');
  return timingSafeEqual(given, expected) ? grantId : undefined;
}
