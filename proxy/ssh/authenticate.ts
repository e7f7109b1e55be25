/**
 * Decides whether an SSH client may log in through the proxy: with its Warden certificate
 * (publickey method: CA, signature, validity, principal, source address) or with the grant's
 * token (password method). Then the grant named by the certificate's key id or the token must be
 * active, on the target of the login name, and its level must list the account. Pure apart from
 * the injected grant lookup.
 */
import { verify } from 'node:crypto';
import { BlockList, isIP } from 'node:net';
import type { GrantStatus } from '../../broker/ports/proxy.ts';
import { grantIdFromKeyId, parseCertificate, verifyUserCertificate } from '../../lib/ssh/certificate.ts';
import { ed25519PublicKeyFromBlob, type SshCa } from '../../lib/ssh/keys.ts';
import { verifyProxyToken } from '../../lib/ssh/proxy-token.ts';

import type { SshProxyLevelConfig, SshProxyTargetConfig } from './config.ts';
import { SshProxyError } from './errors.ts';
import type { ProxyLoginName } from './login-name.ts';

/** One authentication request as the SSH server received it. */
export type ProxyAuthAttempt =
  | {
      method: 'publickey';
      keyAlgo: string;
      /** The public key blob (a certificate blob for `*-cert-v01@openssh.com`). */
      key: Buffer;
      /** Absent for the "would this key do?" query. */
      signature?: Buffer | undefined;
      /** The bytes the client signed (session id + request). */
      signed?: Buffer | undefined;
    }
  | { method: 'password'; password: string };

/** What the decision depends on. */
export interface ProxyAuthContext {
  ca: SshCa;
  /** The CA public key line. */
  caPublicKey: string;
  login: ProxyLoginName;
  clientAddress: string;
  now: number;
  targets: Readonly<Record<string, unknown>>;
  getGrant(id: string): Promise<GrantStatus | undefined>;
}

/** A successful login. */
export interface ProxyIdentity {
  grant: GrantStatus;
  targetName: string;
  target: SshProxyTargetConfig;
  level: SshProxyLevelConfig;
  /** The account on the target. */
  account: string;
  via: 'certificate' | 'token';
  /** The certificate's key id and serial, for the audit log. */
  keyId?: string;
  serial?: string;
  /** Whether the signature was checked (false for the publickey query). */
  proven: boolean;
}

const CERT_ED25519 = 'ssh-ed25519-cert-v01@openssh.com';

function fail(code: SshProxyError['code'], message: string, details: Record<string, unknown> = {}) {
  return new SshProxyError(code, message, { details });
}

/** Reads an Ed25519 signature: the SSH encoding (`string "ssh-ed25519"`, `string sig`) or 64 raw bytes. */
function readEd25519Signature(signature: Buffer): Buffer | undefined {
  if (signature.length === 64) return signature;
  if (signature.length !== 4 + 11 + 4 + 64) return undefined;
  if (signature.readUInt32BE(0) !== 11 || signature.toString('latin1', 4, 15) !== 'ssh-ed25519')
    return undefined;
  if (signature.readUInt32BE(15) !== 64) return undefined;
  return signature.subarray(19);
}

function checkSourceAddress(list: readonly string[] | undefined, address: string): boolean {
  if (!list) return true;
  const blocks = new BlockList();
  for (const entry of list) {
    const [ip, prefix] = entry.split('/');
    const family = isIP(ip ?? '') === 6 ? 'ipv6' : 'ipv4';
    if (prefix === undefined) blocks.addAddress(ip!, family);
    else blocks.addSubnet(ip!, Number(prefix), family);
  }
  const bare = address.startsWith('::ffff:') ? address.slice(7) : address;
  return blocks.check(bare, isIP(bare) === 6 ? 'ipv6' : 'ipv4');
}

/**
 * Authenticates one attempt. Throws an {@link SshProxyError} or an `SshCaError`
 * (`ERR_SSH_CA_CERT_*`) naming why; the server answers every refusal with the same failure.
 */
export async function authenticateProxyLogin(
  attempt: ProxyAuthAttempt,
  context: ProxyAuthContext,
): Promise<ProxyIdentity> {
  const { login } = context;
  const targetName = login.target;
  const target = Object.hasOwn(context.targets, targetName)
    ? (context.targets[targetName] as SshProxyTargetConfig)
    : undefined;
  if (target?.kind !== 'ssh') {
    throw fail('ERR_SSH_PROXY_TARGET_UNKNOWN', 'no such SSH target', { target: targetName });
  }
  let grantId: string | undefined;
  let certificate: ReturnType<typeof verifyUserCertificate> | undefined;
  if (attempt.method === 'publickey') {
    if (attempt.keyAlgo !== CERT_ED25519) {
      throw fail('ERR_SSH_PROXY_KEY_TYPE', 'only Warden Ed25519 certificates are accepted', {
        algo: attempt.keyAlgo.slice(0, 64),
      });
    }
    // Without an account in the login name, any principal of the certificate passes here; the
    // account chosen from the grant's level is checked against the principals below.
    const principal = login.account ?? parseCertificate(attempt.key).principals[0] ?? '';
    const verified = verifyUserCertificate(attempt.key, {
      caPublicKeys: [context.caPublicKey],
      principal,
      now: new Date(context.now),
    });
    certificate = verified;
    grantId = grantIdFromKeyId(verified.keyId);
    if (!grantId) throw fail('ERR_SSH_PROXY_GRANT_UNKNOWN', 'the certificate names no Warden grant');
    if (attempt.signature) {
      const raw = readEd25519Signature(attempt.signature);
      const ok =
        raw !== undefined &&
        attempt.signed !== undefined &&
        verify(null, attempt.signed, ed25519PublicKeyFromBlob(verified.publicKeyBlob), raw);
      if (!ok) throw fail('ERR_SSH_PROXY_SIGNATURE', 'the login signature is invalid');
    }
    if (!checkSourceAddress(verified.criticalOptions.sourceAddress, context.clientAddress)) {
      throw fail('ERR_SSH_PROXY_SOURCE_ADDRESS', 'the certificate is not valid from this address');
    }
  } else if (attempt.method === 'password') {
    grantId = verifyProxyToken(context.ca, attempt.password);
    if (!grantId) throw fail('ERR_SSH_PROXY_TOKEN_INVALID', 'invalid token');
  } else {
    throw fail('ERR_SSH_PROXY_AUTH_METHOD', 'use a Warden certificate or the grant token');
  }
  const grant = await context.getGrant(grantId);
  if (!grant) throw fail('ERR_SSH_PROXY_GRANT_UNKNOWN', 'no such grant', { grant: grantId });
  if (grant.state !== 'active' || grant.expiresAt === null || grant.expiresAt <= context.now) {
    throw fail('ERR_SSH_PROXY_GRANT_NOT_ACTIVE', 'the grant is not active', {
      grant: grant.grantId,
      state: grant.state,
    });
  }
  if (grant.target !== targetName) {
    throw fail('ERR_SSH_PROXY_GRANT_TARGET', 'the grant is for another target', { grant: grant.grantId });
  }
  const level = target.levels[grant.level];
  const account = login.account ?? level?.principals[0];
  if (!level || account === undefined || !level.principals.includes(account)) {
    throw fail('ERR_SSH_PROXY_PRINCIPAL', 'the grant does not allow this account', { grant: grant.grantId });
  }
  if (certificate && !certificate.principals.includes(account)) {
    throw fail('ERR_SSH_PROXY_PRINCIPAL', 'the certificate is not valid for this account', {
      grant: grant.grantId,
    });
  }
  return {
    grant,
    targetName,
    target,
    level,
    account,
    via: certificate ? 'certificate' : 'token',
    ...(certificate ? { keyId: certificate.keyId, serial: String(certificate.serial) } : {}),
    proven: attempt.method === 'password' || attempt.signature !== undefined,
  };
}
