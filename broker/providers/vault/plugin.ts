/**
 * HashiCorp Vault as a credential provider (`provider: vault`, docs/vault.md): Postgres targets
 * through the database secrets engine, SSH targets through the SSH secrets engine. Warden logs in
 * with `vault.auth`; each target gets its own login, renewed until the provider closes.
 */
import type { Config } from '../../config/load.ts';
import type { TargetConfig } from '../../config/schema.ts';
import { ConfigError } from '../../errors.ts';
import { VaultClient } from '../../vault/client.ts';
import type { ProviderContext, ProviderPlugin } from '../plugin.ts';
import { createPostgresAdmin } from '../postgres/plugin.ts';
import { loadConfiguredSshCa } from '../ssh-ca/plugin.ts';
import { VaultDbProvider, validateVaultDbTarget } from './vault-db-provider.ts';
import { VaultSshProvider, validateVaultSshTarget } from './vault-ssh-provider.ts';

/** Managed Vault roles' `max_ttl` without `vault.max_ttl`: the longest rule maximum on the target. */
export function defaultMaxTtlMs(config: Config, targetName: string): number {
  const maxima = config.rules.filter((r) => r.targets.includes(targetName)).map((r) => r.duration.max);
  return maxima.length ? Math.max(...maxima) : 24 * 3600_000;
}

function createVaultClient(context: ProviderContext): VaultClient {
  const settings = context.config.vault;
  if (!settings) {
    throw new ConfigError(
      `${context.path}.provider`,
      'provider vault needs the vault section (vault.address and vault.auth)',
    );
  }
  return new VaultClient({
    settings,
    // Vault's own login secrets come from the environment or files (the schema allows no other).
    resolveSecret: context.resolveSecret,
    logger: context.logger,
  });
}

export const vaultPlugin: ProviderPlugin<TargetConfig> = {
  name: 'vault',
  targetKinds: ['postgres', 'ssh'],
  validate(target, path) {
    if (target.kind === 'postgres') validateVaultDbTarget(target, path);
    else validateVaultSshTarget(target, path);
  },
  async create(context) {
    const { targetName, target, config, resolveSecret, logger, once } = context;
    const vault = createVaultClient(context);
    if (target.kind === 'ssh') {
      const proxyCa = config.ssh
        ? await once('ssh-ca', () => loadConfiguredSshCa(config, resolveSecret))
        : undefined;
      return new VaultSshProvider({ targetName, target, vault, proxyCa });
    }
    const admin = await createPostgresAdmin({ ...context, target });
    return new VaultDbProvider({
      targetName,
      target,
      vault,
      admin,
      maxTtlMs: target.vault?.max_ttl ?? defaultMaxTtlMs(config, targetName),
      logger,
    });
  },
};
