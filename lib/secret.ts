/**
 * A secret value that never prints. Shared by every part that holds one (the broker's resolved
 * config secrets, minted passwords, the proxy's upstream credentials); depends on nothing of ours.
 */
import { inspect } from 'node:util';

/**
 * How a secret is referenced in `warden.yaml`: never inline, always from the environment, a file,
 * or a field of a Vault KV version 2 secret (`kv/data/warden#slack_bot_token`).
 */
export type SecretRef = { env: string } | { file: string } | { vault: string };

/** True when `value` is a reference of one kind (`{file: path}`), wherever it sits in a configuration. */
export function isSecretRefOf<K extends 'env' | 'file' | 'vault'>(
  value: unknown,
  kind: K,
): value is Record<K, string> {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    Object.keys(value).length === 1 &&
    typeof (value as Record<string, unknown>)[kind] === 'string'
  );
}

/**
 * Reads a referenced secret; `path` names the config key for error messages. The broker's
 * `resolveSecret` is one (it fails with `ERR_CONFIG_SECRET` naming the path).
 */
export type SecretResolver = (ref: SecretRef, path: string) => Secret;

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
