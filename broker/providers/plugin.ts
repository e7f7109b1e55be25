/**
 * The shape of a credential provider plugin: a name, the kinds of target (connections) it can mint
 * for, a check of the settings it needs, and a factory. The registry (`registry.ts`) lists them by
 * name; a target names its provider with `provider:` (default: its kind's usual provider).
 */
import type { Config } from '../config/load.ts';
import type { TargetConfig } from '../config/schema.ts';
import type { Secret, SecretRef } from '../config/secrets.ts';
import type { Logger } from '../log.ts';
import type { CredentialProvider } from './provider.ts';

/** What a plugin's factory gets. Secrets resolve here, so a missing one fails at start-up. */
export interface ProviderContext<T extends TargetConfig = TargetConfig> {
  targetName: string;
  target: T;
  config: Config;
  /** `targets.<name>`: the prefix of every config path the plugin names in an error. */
  path: string;
  resolveSecret(ref: SecretRef, path: string): Promise<Secret>;
  env: Record<string, string | undefined>;
  logger?: Logger;
  /**
   * Values shared by every target of one start-up (the SSH CA key is loaded once): `once(key, load)`
   * runs `load` the first time a key is asked for.
   */
  once<V>(key: string, load: () => Promise<V>): Promise<V>;
}

/** A credential provider plugin. */
export interface ProviderPlugin<T extends TargetConfig = TargetConfig> {
  /** The name targets use in `provider:` (`postgres`, `ssh-ca`, later `vault`). */
  readonly name: string;
  /** Target kinds (where to connect) this provider mints for. */
  readonly targetKinds: readonly TargetConfig['kind'][];
  /**
   * Checks what this provider needs of a target's settings; throws a `ConfigError` naming the path
   * (`targets.db.admin.password`). Called at start-up before any provider is created.
   */
  validate(target: T, path: string): void;
  create(context: ProviderContext<T>): Promise<CredentialProvider>;
}
