/**
 * Secret references (`{env: NAME}`, `{file: path}`) resolved to {@link Secret}s. Resolution is
 * asynchronous: a reference may name a secret store reached over the network (Vault next), which
 * plugs in as one more branch here. The local kinds also resolve synchronously
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
 * Resolves a reference. `path` names the config key for error messages; `env` defaults to
 * process.env. Fails with `ERR_CONFIG_SECRET` naming the path, never the secret.
 */
export async function resolveSecret(
  ref: SecretRef,
  path: string,
  env: SecretEnv = process.env,
): Promise<Secret> {
  if ('env' in ref) return readEnvSecret(ref.env, path, env);
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
