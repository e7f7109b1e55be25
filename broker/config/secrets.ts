import { readFileSync } from 'node:fs';
import { Secret, type SecretRef } from '../../lib/secret.ts';
import { SecretError } from '../errors.ts';

/** The wrapper resolved secrets come in (`lib/secret.ts`), re-exported for the broker's callers. */
export { Secret, type SecretRef };

/** Resolves a reference. `path` names the config key for error messages; `env` defaults to process.env. */
export function resolveSecret(
  ref: SecretRef,
  path: string,
  env: Record<string, string | undefined> = process.env,
): Secret {
  if ('env' in ref) {
    const value = env[ref.env];
    if (value === undefined || value === '') {
      throw new SecretError(path, `environment variable ${ref.env} is not set`);
    }
    return new Secret(value);
  }
  let text: string;
  try {
    text = readFileSync(ref.file, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new SecretError(path, `cannot read secret file ${ref.file} (${reason})`);
  }
  const value = text.replace(/\r?\n$/, '');
  if (value === '') throw new SecretError(path, `secret file ${ref.file} is empty`);
  return new Secret(value);
}
