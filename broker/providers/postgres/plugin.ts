/** The native PostgreSQL provider as a plugin: a CREATEROLE admin mints a role per grant. */
import type { PostgresTargetConfig } from '../../config/schema.ts';
import { ConfigError } from '../../errors.ts';
import type { ProviderPlugin } from '../plugin.ts';
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
  async create({ targetName, target, path, resolveSecret, env, logger }) {
    return new PostgresProvider({
      targetName,
      target,
      adminPassword: await resolveSecret(target.admin.password!, `${path}.admin.password`),
      tls: await resolvePgTls(targetName, target, target.admin.host, env),
      ...(logger ? { logger } : {}),
    });
  },
};
