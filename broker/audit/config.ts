/**
 * The audit keys named by `audit:` in warden.yaml: the signer (where Warden writes the log) and the
 * keyring (where it is verified). Secrets resolve here, so a missing key fails with its config path.
 */
import { readFileSync } from 'node:fs';
import type { Config } from '../config/load.ts';
import { ConfigError } from '../errors.ts';
import { createSecretResolver } from '../vault/secrets.ts';
import {
  type AuditKeyring,
  type AuditSigner,
  createAuditKeyring,
  loadAuditPublicKey,
  loadAuditSigner,
} from './signing.ts';

/** The signer of `audit.signing_key`, or undefined when none is configured. */
export async function loadConfiguredAuditSigner(
  config: Config,
  env: Record<string, string | undefined>,
): Promise<AuditSigner | undefined> {
  const ref = config.audit.signing_key;
  if (!ref) return undefined;
  const pem = (await createSecretResolver(config, env)(ref, 'audit.signing_key')).reveal();
  try {
    return loadAuditSigner(pem);
  } catch (error) {
    throw new ConfigError('audit.signing_key', (error as Error).message);
  }
}

/**
 * The keys signatures are checked against: the signing key's public half when it resolves here
 * (an auditor's machine may not hold it), `audit.public_keys`, and `extraFiles` (`--public-key`).
 * Undefined when there is none: the log is then unkeyed as far as this machine can tell.
 */
export async function loadConfiguredAuditKeyring(
  config: Config,
  env: Record<string, string | undefined>,
  extraFiles: readonly string[] = [],
): Promise<AuditKeyring | undefined> {
  const keys = [];
  if (config.audit.signing_key) {
    try {
      keys.push((await loadConfiguredAuditSigner(config, env))!.publicKey);
    } catch (error) {
      // Without the private key, public_keys (or --public-key) must say which key to trust.
      if (config.audit.public_keys.length === 0 && extraFiles.length === 0) {
        throw new ConfigError(
          'audit.signing_key',
          `${(error as Error).message.replace(/^audit\.signing_key: /, '')}; where the private key is not at hand, list its public key in audit.public_keys or pass --public-key`,
        );
      }
    }
  }
  const files = [
    ...config.audit.public_keys.map((file, i) => ({ file, path: `audit.public_keys[${i}]` })),
    ...extraFiles.map((file) => ({ file, path: '--public-key' })),
  ];
  for (const { file, path } of files) {
    let pem: string;
    try {
      pem = readFileSync(file, 'utf8');
    } catch (error) {
      throw new ConfigError(
        path,
        `cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
      );
    }
    try {
      keys.push(loadAuditPublicKey(pem));
    } catch (error) {
      throw new ConfigError(path, `${file}: ${(error as Error).message}`);
    }
  }
  return keys.length > 0 ? createAuditKeyring(keys) : undefined;
}
