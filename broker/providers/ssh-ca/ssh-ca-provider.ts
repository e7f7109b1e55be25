/**
 * The SSH CA credential provider: an approved grant on an SSH target gets an OpenSSH user
 * certificate valid until the grant's expiry, with the level's principals, options and extensions.
 *
 * A certificate cannot be withdrawn from sshd once issued. Revocation therefore leaves nothing to
 * remove on the target: the grant's key id goes into the KRL ({@link buildGrantKrl}) and the SSH
 * proxy ends live sessions; direct logins stop at the certificate's own expiry unless the target's
 * sshd reads the published KRL (`RevokedKeys`).
 */

import { randomBytes } from 'node:crypto';
import {
  type CertificateExtensions,
  type CriticalOptions,
  formatKeyId,
  type MintedUserCertificate,
  mintUserCertificate,
} from '../../../lib/ssh/certificate.ts';
import { isSshCaError } from '../../../lib/ssh/errors.ts';
import type { SshCa } from '../../../lib/ssh/keys.ts';
import { buildKrl } from '../../../lib/ssh/krl.ts';
import { createProxyToken } from '../../../lib/ssh/proxy-token.ts';
import type { SshLevelConfig, SshTargetConfig } from '../../config/schema.ts';
import { Secret } from '../../config/secrets.ts';
import { ProviderError } from '../../errors.ts';
import type { AccessRequest, CredentialRecord } from '../../model.ts';
import type { CredentialProvider, MintResult, RevokeResult } from '../provider.ts';
import { SshCredential } from './credential.ts';

/** Request meta key holding the requester's OpenSSH public key line (optional). */
export const SSH_PUBLIC_KEY_META = 'ssh_public_key';

/** Options of {@link SshCaProvider}. */
export interface SshCaProviderOptions {
  targetName: string;
  target: SshTargetConfig;
  ca: SshCa;
  /** Clock in epoch ms (tests); default `Date.now`. */
  clock?: () => number;
}

/** The certificate options a level asks for. */
export function certificateOptionsOf(level: SshLevelConfig): {
  criticalOptions: CriticalOptions;
  extensions: CertificateExtensions;
} {
  return {
    criticalOptions: {
      ...(level.force_command ? { forceCommand: level.force_command } : {}),
      ...(level.source_address ? { sourceAddress: level.source_address } : {}),
    },
    extensions: {
      permitPty: level.permit_pty,
      permitAgentForwarding: level.permit_agent_forwarding,
      permitPortForwarding: level.permit_port_forwarding,
      permitX11Forwarding: level.permit_x11_forwarding,
    },
  };
}

/** A fresh random serial in 1..2^63-1 (unique enough per CA; serials are also audited). */
function randomSerial(): bigint {
  return (randomBytes(8).readBigUInt64BE() & 0x7fff_ffff_ffff_ffffn) | 1n;
}

/**
 * Mints a certificate for a live grant of `level`, valid from now to `expiresAt`. Used at
 * activation and by `warden ssh login` (which certifies a key made on the user's machine).
 * Throws `ERR_PROVIDER_FAILED` with the CA error's code in the message.
 */
export function mintGrantCertificate(input: {
  ca: SshCa;
  grant: Pick<AccessRequest, 'id' | 'requester'>;
  level: SshLevelConfig;
  now: number;
  expiresAt: number;
  publicKey?: string | undefined;
}): MintedUserCertificate {
  try {
    return mintUserCertificate({
      ca: input.ca,
      principals: input.level.principals,
      validAfter: new Date(input.now),
      validBefore: new Date(input.expiresAt),
      keyId: formatKeyId(input.grant.id, input.grant.requester),
      serial: randomSerial(),
      ...certificateOptionsOf(input.level),
      ...(input.publicKey ? { publicKey: input.publicKey } : {}),
    });
  } catch (error) {
    if (isSshCaError(error)) {
      throw new ProviderError(`cannot mint the SSH certificate: ${error.message} (${error.code})`, {
        cause: error,
      });
    }
    throw error;
  }
}

/**
 * Builds the KRL of grants revoked before their expiry: every certificate carrying their key id
 * is revoked, whichever key it certifies. Returns `undefined` when nothing is revoked (sshd is
 * happy with an empty `RevokedKeys` file).
 */
export function buildGrantKrl(
  ca: SshCa,
  revoked: readonly Pick<AccessRequest, 'id' | 'requester'>[],
  now: Date,
): Buffer | undefined {
  if (revoked.length === 0) return undefined;
  return buildKrl({
    ca,
    keyIds: revoked.map((g) => formatKeyId(g.id, g.requester)),
    generatedAt: now,
    version: Math.floor(now.getTime() / 1000),
    comment: 'warden revoked grants',
  });
}

/**
 * What every SSH certificate provider shares (this CA, Vault's SSH engine): a certificate can be
 * neither lengthened nor withdrawn from sshd once issued, so there is nothing to extend, remove or
 * reconcile on the target; the KRL and the SSH proxy do the work of revocation.
 */
export abstract class SshCertificateProvider implements CredentialProvider {
  abstract readonly name: string;
  abstract mint(grant: AccessRequest, expiresAt: number): Promise<MintResult>;

  /** Certificates cannot be lengthened: `warden ssh login` has a new one made for the new expiry. */
  async extend(_credential: CredentialRecord, _expiresAt: number): Promise<void> {}

  /** Nothing to remove on the target (see the class comment). */
  async revoke(_credentials: readonly CredentialRecord[]): Promise<RevokeResult> {
    return { failures: new Map(), details: new Map() };
  }

  /** Certificates leave nothing on the target to reconcile. */
  async listManaged(): Promise<string[]> {
    return [];
  }

  async removeOrphan(_handle: string): Promise<void> {}

  async check(): Promise<void> {}

  async close(): Promise<void> {}
}

export class SshCaProvider extends SshCertificateProvider {
  readonly name = 'ssh-ca';
  readonly #options: SshCaProviderOptions;

  constructor(options: SshCaProviderOptions) {
    super();
    this.#options = options;
  }

  async mint(grant: AccessRequest, expiresAt: number): Promise<MintResult> {
    const { target, targetName, ca } = this.#options;
    const level = target.levels[grant.level];
    if (!level) throw new ProviderError(`target ${targetName} has no level ${grant.level}`);
    const publicKey = grant.meta[SSH_PUBLIC_KEY_META];
    const minted = mintGrantCertificate({
      ca,
      grant,
      level,
      now: (this.#options.clock ?? Date.now)(),
      expiresAt,
      publicKey: typeof publicKey === 'string' ? publicKey : undefined,
    });
    const credential = new SshCredential({
      host: target.host,
      port: target.port,
      principals: [...level.principals],
      certificate: minted.certificate,
      ...(minted.privateKey ? { privateKey: new Secret(minted.privateKey) } : {}),
      password: new Secret(createProxyToken(ca, grant.id)),
      keyId: minted.keyId,
      serial: String(minted.serial),
      expiresAt,
    });
    return { handle: `serial:${minted.serial}`, credential };
  }
}
