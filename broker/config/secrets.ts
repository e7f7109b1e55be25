/**
 * Secret references (`{env: NAME}`, `{file: path}`, `{vault: "kv/data/path#field"}`) resolved to
 * {@link Secret}s. Resolution is asynchronous: a Vault reference is read over the network, by the
 * reader the caller passes (`broker/vault/secrets.ts`). The local kinds also resolve synchronously
 * ({@link resolveLocalSecret}) for the few call sites that run inside synchronous factories (the
 * proxies' keys and masker factories, CLI verbs that load the SSH CA).
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { Secret, type SecretRef } from '../../lib/secret.ts';
import { SecretError } from '../errors.ts';

/** The wrapper resolved secrets come in (`lib/secret.ts`), re-exported for the broker's callers. */
export { Secret, type SecretRef };

/** The environment secrets are read from (default `process.env`, passed by entry points). */
export type SecretEnv = Record<string, string | undefined>;

/**
 * Reads a field of a Vault KV version 2 secret (`broker/vault/secrets.ts` is the one Warden uses).
 * `mountPath` is `<mount>/data/<path>`; fails naming `configPath`.
 */
export interface VaultSecretReader {
  readField(mountPath: string, field: string, configPath: string): Promise<Secret>;
}

/**
 * Resolves a reference. `path` names the config key for error messages; `env` defaults to
 * process.env; `vault` reads `{vault: ...}` references (from the configuration's `vault:`
 * section). Fails with `ERR_CONFIG_SECRET` naming the path, never the secret.
 */
export async function resolveSecret(
  ref: SecretRef,
  path: string,
  env: SecretEnv = process.env,
  vault?: VaultSecretReader,
): Promise<Secret> {
  if ('env' in ref) return readEnvSecret(ref.env, path, env);
  if ('vault' in ref) {
    if (!vault) {
      throw new SecretError(
        path,
        'a {vault: ...} secret needs the vault section (vault.address and vault.auth), and cannot be read here',
      );
    }
    const at = ref.vault.lastIndexOf('#');
    return vault.readField(ref.vault.slice(0, at), ref.vault.slice(at + 1), path);
  }
  let text: string;
  try {
    text = await readFile(ref.file, 'utf8');
  } catch (error) {
    throw unreadable(ref.file, path, error);
  }
  return fileSecret(text, ref.file, path);
}

/** {@link resolveSecret} for synchronous call sites: `env:` and `file:` references only. */
export function resolveLocalSecret(ref: SecretRef, path: string, env: SecretEnv = process.env): Secret {
  if ('env' in ref) return readEnvSecret(ref.env, path, env);
  if ('vault' in ref) {
    throw new SecretError(
      path,
      'this secret is read synchronously at start-up: reference it with env: or file:, not vault:',
    );
  }
  let text: string;
  try {
    text = readFileSync(ref.file, 'utf8');
  } catch (error) {
    throw unreadable(ref.file, path, error);
  }
  return fileSecret(text, ref.file, path);
}

function readEnvSecret(name: string, path: string, env: SecretEnv): Secret {
  const value = env[name];
  if (value === undefined || value === '') {
    throw new SecretError(path, `environment variable ${name} is not set`);
  }
  return new Secret(value);
}

function unreadable(file: string, path: string, error: unknown): SecretError {
  const reason = (error as NodeJS.ErrnoException).code ?? 'unreadable';
  return new SecretError(path, `cannot read secret file ${file} (${reason})`);
}

/** A secret file's content without its final newline; an empty file is refused. */
function fileSecret(text: string, file: string, path: string): Secret {
  const value = text.replace(/\r?\n$/, '');
  if (value === '') throw new SecretError(path, `secret file ${file} is empty`);
  return new Secret(value);
}
