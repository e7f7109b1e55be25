import { readFileSync } from 'node:fs';
import { inspect } from 'node:util';
import { SecretError } from '../errors.ts';

/** How a secret is referenced in `warden.yaml`: never inline, always from the environment or a file. */
export type SecretRef = { env: string } | { file: string };

const REDACTED = '[secret]';

/**
 * A secret value that never prints: `String(secret)`, `JSON.stringify`, `util.inspect` and pino
 * all see `[secret]`. Call `reveal()` only where the value is handed to the system that needs it.
 */
export class Secret {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
  }
  reveal(): string {
    return this.#value;
  }
  toString(): string {
    return REDACTED;
  }
  toJSON(): string {
    return REDACTED;
  }
  [inspect.custom](): string {
    return REDACTED;
  }
}

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
