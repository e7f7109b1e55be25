/**
 * Credential providers by name. Adding one (Vault) is a folder with its plugin and a line here.
 * A target's `kind` says where to connect (a Postgres database, an SSH host); its `provider` says
 * who mints its credentials, by default its kind's usual provider.
 */
import type { Config } from '../config/load.ts';
import type { TargetConfig } from '../config/schema.ts';
import { ConfigError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { createSecretResolver } from '../vault/secrets.ts';
import type { ProviderPlugin } from './plugin.ts';
import { postgresPlugin } from './postgres/plugin.ts';
import type { CredentialProvider } from './provider.ts';
import { sshCaPlugin } from './ssh-ca/plugin.ts';
import { vaultPlugin } from './vault/plugin.ts';

/** Every provider Warden ships, by name. */
export const PROVIDER_PLUGINS: ReadonlyMap<string, ProviderPlugin> = new Map(
  ([postgresPlugin, sshCaPlugin, vaultPlugin] as ProviderPlugin[]).map((plugin) => [plugin.name, plugin]),
);

/** The provider a kind of target gets when it names none. */
const DEFAULT_PROVIDER: Record<TargetConfig['kind'], string> = { postgres: 'postgres', ssh: 'ssh-ca' };

/** The plugin that mints for `target`; throws a `ConfigError` at `targets.<name>.provider`. */
export function findProviderPlugin(
  name: string,
  target: TargetConfig,
  plugins: ReadonlyMap<string, ProviderPlugin> = PROVIDER_PLUGINS,
): ProviderPlugin {
  const wanted = target.provider ?? DEFAULT_PROVIDER[target.kind];
  const plugin = plugins.get(wanted);
  const path = `targets.${name}.provider`;
  if (!plugin) {
    throw new ConfigError(path, `unknown provider "${wanted}" (known: ${[...plugins.keys()].join(', ')})`);
  }
  if (!plugin.targetKinds.includes(target.kind)) {
    throw new ConfigError(path, `provider "${wanted}" cannot mint for a ${target.kind} target`);
  }
  return plugin;
}

/** Options of {@link createProviders}. */
export interface CreateProvidersOptions {
  env?: Record<string, string | undefined>;
  logger?: Logger;
  /** Default {@link PROVIDER_PLUGINS}. */
  plugins?: ReadonlyMap<string, ProviderPlugin>;
  /** Only these targets (a configuration reload that adds some); default every target of `config`. */
  targets?: Record<string, TargetConfig>;
}

/**
 * Builds one provider per target. Every target's settings are checked by its plugin before any
 * provider is created, so a bad one fails start-up (exit 3) with nothing connected.
 */
export async function createProviders(
  config: Config,
  options: CreateProvidersOptions = {},
): Promise<Map<string, CredentialProvider>> {
  const env = options.env ?? process.env;
  const chosen = Object.entries(options.targets ?? config.targets).map(([name, target]) => {
    const plugin = findProviderPlugin(name, target, options.plugins);
    plugin.validate(target, `targets.${name}`);
    return { name, target, plugin };
  });
  const shared = new Map<string, Promise<unknown>>();
  const resolveSecret = createSecretResolver(config, env);
  const providers = new Map<string, CredentialProvider>();
  try {
    for (const { name, target, plugin } of chosen) {
      providers.set(
        name,
        await plugin.create({
          targetName: name,
          target,
          config,
          path: `targets.${name}`,
          resolveSecret,
          env,
          ...(options.logger ? { logger: options.logger } : {}),
          once: <V>(key: string, load: () => Promise<V>) => {
            if (!shared.has(key)) shared.set(key, load());
            return shared.get(key) as Promise<V>;
          },
        }),
      );
    }
  } catch (error) {
    // A later target's failure must not leave earlier providers' admin connections open.
    await Promise.all([...providers.values()].map((p) => p.close().catch(() => {})));
    throw error;
  }
  return providers;
}
