/**
 * Vault secrets for the parts that read their secrets synchronously: the SSH CA key, the SSH
 * proxy's host and upstream keys, and masking keys (`masking.key`, a string reference such as
 * `env:NAME`, is also accepted as `vault:kv/data/warden#masking_key`). `warden serve` (a reload,
 * `warden doctor`, `warden ssh ca` and `warden ssh krl` too) reads every
 * Vault reference of the configuration once, before anything starts, and hands those parts an
 * environment overlay holding the values under private names, with each reference pointed at its
 * name (`{env: WARDEN_VAULT_SECRET_1}`, `env:WARDEN_VAULT_SECRET_2`). The overlay lives in memory
 * only: nothing is written to `process.env` or to a file. A reference that cannot be read fails
 * start-up naming its key, as any secret does.
 */

import { isSecretRefOf } from '../../lib/secret.ts';
import type { Config } from '../config/load.ts';
import { VAULT_SECRET_REF } from '../config/schema.ts';
import type { Secret, SecretEnv, SecretRef } from '../config/secrets.ts';
import { SecretError } from '../errors.ts';
import { createSecretResolver } from './secrets.ts';

/** The prefix of the overlay's names; a configuration's own `env:` references never need them. */
const OVERLAY_PREFIX = 'WARDEN_VAULT_SECRET_';

type Resolve = (ref: SecretRef, path: string) => Promise<Secret>;

/** What {@link preloadVaultSecrets} gives. */
export interface PreloadedSecrets {
  config: Config;
  env: SecretEnv;
  /** Overlay name → the Vault reference it holds (`kv/data/warden#masking_key`), for messages. */
  sources: ReadonlyMap<string, string>;
}

/**
 * `config` with every Vault reference read and pointed at an overlay name, and `env` with the
 * overlay; both unchanged when the configuration has none (or no `vault:` section, where the
 * references fail later with what to add).
 */
export async function preloadVaultSecrets(
  config: Config,
  env: SecretEnv,
  resolve: Resolve = createSecretResolver(config, env),
): Promise<PreloadedSecrets> {
  if (!config.vault) return { config, env, sources: new Map() };
  const overlay: Record<string, string> = {};
  const names = new Map<string, string>();
  const read = async (ref: string, path: string): Promise<string> => {
    let name = names.get(ref);
    if (!name) {
      const secret = await resolve({ vault: ref }, path);
      name = `${OVERLAY_PREFIX}${names.size + 1}`;
      overlay[name] = secret.reveal();
      names.set(ref, name);
    }
    return name;
  };
  const walk = async (node: unknown, path: string, inMasking: boolean): Promise<unknown> => {
    if (Array.isArray(node)) {
      const out: unknown[] = [];
      for (const [i, item] of node.entries()) out.push(await walk(item, `${path}[${i}]`, false));
      return out;
    }
    if (isSecretRefOf(node, 'vault')) return { env: await read(node.vault, path) };
    if (typeof node !== 'object' || node === null) return node;
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(node)) {
      const at = path ? `${path}.${key}` : key;
      if (inMasking && key === 'key' && typeof value === 'string' && value.startsWith('vault:')) {
        const ref = value.slice('vault:'.length);
        if (!VAULT_SECRET_REF.test(ref))
          throw new SecretError(
            at,
            'a Vault masking key is "vault:<mount>/data/<path>#<field>" (KV version 2)',
          );
        out[key] = `env:${await read(ref, at)}`;
      } else {
        out[key] = await walk(value, at, key === 'masking');
      }
    }
    return out;
  };
  const { vault, ...rest } = config;
  const walked = (await walk(rest, '', false)) as Omit<Config, 'vault'>;
  if (names.size === 0) return { config, env, sources: new Map() };
  return {
    config: { ...walked, vault } as Config,
    env: { ...env, ...overlay },
    sources: new Map([...names].map(([ref, name]) => [name, ref])),
  };
}
