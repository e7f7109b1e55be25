/**
 * Vault as a secret source: `{vault: "kv/data/warden#slack_bot_token"}` anywhere `warden.yaml`
 * takes a secret (KV version 2). Read at start-up and on reload; a missing secret or field is a
 * configuration error (`ERR_CONFIG_SECRET`) naming the key, and Vault's own failures (sealed,
 * permission denied, unreachable) are {@link VaultError}s naming the key too.
 */
import type { Config } from '../config/load.ts';
import {
  resolveSecret,
  Secret,
  type SecretEnv,
  type SecretRef,
  type VaultSecretReader,
} from '../config/secrets.ts';
import { SecretError, VaultError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { VaultClient } from './client.ts';

/** Reads KV version 2 fields through one {@link VaultClient}. */
export class VaultKvReader implements VaultSecretReader {
  readonly #client: VaultClient;

  constructor(client: VaultClient) {
    this.#client = client;
  }

  async readField(mountPath: string, field: string, configPath: string): Promise<Secret> {
    let answer: Awaited<ReturnType<VaultClient['read']>>;
    try {
      answer = await this.#client.read(mountPath, `reading the secret ${mountPath} for ${configPath}`);
    } catch (error) {
      if ((error as VaultError).code === 'ERR_VAULT_NOT_FOUND') {
        throw new SecretError(
          configPath,
          `Vault has no secret at ${mountPath} (KV version 2: <mount>/data/<path>)`,
        );
      }
      if (error instanceof VaultError) {
        throw new VaultError(error.code as never, `${configPath}: ${error.message}`, {
          cause: error,
          ...(error.status === undefined ? {} : { status: error.status }),
        });
      }
      throw error;
    }
    const data = (answer.data as { data?: unknown } | null | undefined)?.data;
    if (data === null) {
      throw new SecretError(
        configPath,
        `the Vault secret ${mountPath} is deleted (its current version has no data)`,
      );
    }
    if (typeof data !== 'object' || data === undefined || Array.isArray(data)) {
      throw new VaultError(
        'ERR_VAULT_BAD_RESPONSE',
        `${configPath}: Vault's answer for ${mountPath} has no data.data: is the mount KV version 2?`,
      );
    }
    const value = (data as Record<string, unknown>)[field];
    if (value === undefined) {
      const known = Object.keys(data).slice(0, 20).join(', ') || 'none';
      throw new SecretError(
        configPath,
        `the Vault secret ${mountPath} has no field "${field}" (its fields: ${known})`,
      );
    }
    if (typeof value !== 'string' && typeof value !== 'number') {
      throw new SecretError(configPath, `the field "${field}" of the Vault secret ${mountPath} is not text`);
    }
    if (value === '')
      throw new SecretError(configPath, `the field "${field}" of the Vault secret ${mountPath} is empty`);
    return new Secret(String(value));
  }
}

/** A Vault client for `config.vault`, logging in with `env:`/`file:` secrets only. */
export function createVaultClient(config: Config, env: SecretEnv, logger?: Logger): VaultClient | undefined {
  if (!config.vault) return undefined;
  return new VaultClient({
    settings: config.vault,
    resolveSecret: (ref: SecretRef, path: string) => resolveSecret(ref, path, env),
    logger,
  });
}

const readers = new WeakMap<Config, VaultKvReader>();

/** The reader of `{vault: ...}` secrets for one loaded configuration (one login per configuration). */
export function vaultSecretsFor(config: Config, env: SecretEnv): VaultKvReader | undefined {
  let reader = readers.get(config);
  if (!reader) {
    const client = createVaultClient(config, env);
    if (!client) return undefined;
    reader = new VaultKvReader(client);
    readers.set(config, reader);
  }
  return reader;
}

/** `resolveSecret` for every secret of `config`: `env:`, `file:` and, with a `vault:` section, `vault:`. */
export function createSecretResolver(
  config: Config,
  env: SecretEnv = process.env,
): (ref: SecretRef, path: string) => Promise<Secret> {
  return (ref, path) =>
    resolveSecret(ref, path, env, 'vault' in ref ? vaultSecretsFor(config, env) : undefined);
}
