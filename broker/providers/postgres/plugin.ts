/** The native PostgreSQL provider as a plugin: a CREATEROLE admin mints a role per grant. */
import type { PostgresTargetConfig } from '../../config/schema.ts';
import { ConfigError } from '../../errors.ts';
import type { ProviderContext, ProviderPlugin } from '../plugin.ts';
import { findMaskingFragment, resolveMaskingKeyBytes } from './masking-views.ts';
import { PostgresProvider } from './postgres-provider.ts';
import { resolvePgTls } from './tls.ts';

export const postgresPlugin: ProviderPlugin<PostgresTargetConfig> = {
  name: 'postgres',
  targetKinds: ['postgres'],
  validate(target, path) {
    if (!target.admin.password) {
      throw new ConfigError(
        `${path}.admin.password`,
        'the postgres provider logs in as the admin: give its password (env: or file:)',
      );
    }
  },
  create: (context) => createPostgresAdmin(context),
};

/**
 * The native provider of a target: its admin connection, TLS and masking key. The Vault provider
 * uses one as its admin (ending sessions, level roles).
 */
export async function createPostgresAdmin({
  targetName,
  target,
  path,
  resolveSecret,
  env,
  logger,
}: ProviderContext<PostgresTargetConfig>): Promise<PostgresProvider> {
  // The key the database's `hash` columns are keyed with (`masking-views.ts`).
  const maskingKey = resolveMaskingKeyBytes(
    findMaskingFragment(target),
    `${path}.${target.masking ? 'masking' : 'proxy.masking'}.key`,
    env,
  );
  return new PostgresProvider({
    targetName,
    target,
    adminPassword: await resolveSecret(target.admin.password!, `${path}.admin.password`),
    tls: await resolvePgTls(targetName, target, target.admin.host, env),
    ...(maskingKey ? { maskingKey } : {}),
    ...(logger ? { logger } : {}),
  });
}
