/**
 * The provider registry: a target's provider is chosen by name (default: its kind's), checked
 * against the target's kind, and validated by its plugin before anything connects.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../../../broker/config/load.ts';
import type { TargetConfig } from '../../../broker/config/schema.ts';
import type { ProviderPlugin } from '../../../broker/providers/plugin.ts';
import type { CredentialProvider } from '../../../broker/providers/provider.ts';
import { createProviders, findProviderPlugin, PROVIDER_PLUGINS } from '../../../broker/providers/registry.ts';

const admin = { host: '127.0.0.1', port: 1, database: 'app', user: 'warden' };
const configOf = (targets: Record<string, unknown>) =>
  parseConfig({ targets, people: [{ id: 'alice', email: 'alice@example.com' }] }, 'test');

describe('provider registry', () => {
  it("lists postgres, ssh-ca and vault, and picks each kind's default", () => {
    assert.deepEqual([...PROVIDER_PLUGINS.keys()].sort(), ['postgres', 'ssh-ca', 'vault']);
    const config = configOf({
      db: {
        kind: 'postgres',
        admin: { ...admin, password: { env: 'P' } },
        levels: { read: { grants: ['select'] } },
      },
      web: { kind: 'ssh', host: 'web', levels: { shell: { principals: ['deploy'] } } },
    });
    assert.equal(findProviderPlugin('db', config.targets.db!).name, 'postgres');
    assert.equal(findProviderPlugin('web', config.targets.web!).name, 'ssh-ca');
  });

  it('refuses an unknown provider and one that cannot mint for the kind, naming the path', () => {
    const config = configOf({
      db: {
        kind: 'postgres',
        provider: 'hsm',
        admin: { ...admin, password: { env: 'P' } },
        levels: { read: { grants: ['select'] } },
      },
      web: { kind: 'ssh', provider: 'postgres', host: 'web', levels: { shell: { principals: ['deploy'] } } },
    });
    assert.throws(() => findProviderPlugin('db', config.targets.db!), {
      code: 'ERR_CONFIG_INVALID',
      message: /^targets\.db\.provider: unknown provider "hsm" \(known: postgres, ssh-ca, vault\)/,
    });
    assert.throws(() => findProviderPlugin('web', config.targets.web!), {
      code: 'ERR_CONFIG_INVALID',
      message: /^targets\.web\.provider: provider "postgres" cannot mint for a ssh target/,
    });
  });

  it('the postgres plugin needs admin.password; the check runs before any provider is created', async () => {
    const config = configOf({
      db: { kind: 'postgres', admin, levels: { read: { grants: ['select'] } } },
    });
    await assert.rejects(createProviders(config, { env: {} }), {
      code: 'ERR_CONFIG_INVALID',
      message: /^targets\.db\.admin\.password: /,
    });
  });

  it('a new provider is one plugin: it gets its target and resolves secrets asynchronously', async () => {
    const seen: string[] = [];
    const fake: ProviderPlugin = {
      name: 'vault',
      targetKinds: ['postgres'],
      validate: () => {},
      async create({ targetName, resolveSecret }) {
        seen.push(targetName, (await resolveSecret({ env: 'VAULT_TOKEN' }, 'x')).reveal());
        return { name: 'vault', close: async () => {} } as unknown as CredentialProvider;
      },
    };
    const config = configOf({
      db: { kind: 'postgres', provider: 'vault', admin, levels: { read: { grants: ['select'] } } },
    });
    const target: TargetConfig = config.targets.db!;
    assert.equal(findProviderPlugin('db', target, new Map([['vault', fake]])).name, 'vault');
    const providers = await createProviders(config, {
      env: { VAULT_TOKEN: 'tok' },
      plugins: new Map([['vault', fake]]),
    });
    assert.equal(providers.get('db')?.name, 'vault');
    assert.deepEqual(seen, ['db', 'tok']);
  });
});
