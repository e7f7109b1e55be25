import { createHash, timingSafeEqual } from 'node:crypto';
import type { Secret } from '../config/secrets.ts';
import { AuthError } from '../errors.ts';

export interface ApiToken {
  name: string;
  role: 'service' | 'admin';
  secret: Secret;
}

export interface ApiCaller {
  token: string;
  role: 'service' | 'admin';
}

const digest = (text: string) => createHash('sha256').update(text).digest();

/**
 * Checks a bearer token against the configured tokens in constant time (every token is compared,
 * digests have equal length, so timing says nothing about which or how much matched).
 */
export function authenticateBearer(header: string | undefined, tokens: readonly ApiToken[]): ApiCaller {
  if (!header) throw new AuthError('ERR_AUTH_REQUIRED');
  const match = /^Bearer ([\x21-\x7e]{1,512})$/.exec(header);
  if (!match) throw new AuthError('ERR_AUTH_INVALID');
  const presented = digest(match[1]!);
  let found: ApiToken | undefined;
  for (const token of tokens) {
    if (timingSafeEqual(presented, digest(token.secret.reveal())) && !found) found = token;
  }
  if (!found) throw new AuthError('ERR_AUTH_INVALID');
  return { token: found.name, role: found.role };
}
