/**
 * `{vault: "kv/data/warden#field"}` secret references (KV version 2), read from the Vault
 * stand-in: one that resolves, one whose field is missing (a configuration error naming the key),
 * and a sealed Vault at start-up. No Vault server is used.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { parseConfig } from '../../../broker/config/load.ts';
import type { ConfigInput } from '../../../broker/config/schema.ts';
import { resolveLocalSecret, resolveSecret } from '../../../broker/config/secrets.ts';
import { createProviders } from '../../../broker/providers/registry.ts';
import { preloadVaultSecrets } from '../../../broker/vault/preload.ts';
import { createSecretResolver } from '../../../broker/vault/secrets.ts';
import { isConfigurationError } from '../../../lib/errors.ts';
import { compilePgProxyTarget } from '../../../proxy/pg/config.ts';
import { startVaultStandin, type VaultStandin } from '../../helpers/vault-standin.ts';

describe('Vault secret references', () => {
  let vault: VaultStandin;

  before(async () => {
    vault = await startVaultStandin();
    vault.addPolicy('warden', { 'kv/data/warden': ['read'] });
    vault.kvPut('warden', { slack_bot_token: 'slack-token-from-vault', admin_password: 'pg-secret' });
  });
  after(async () => {
    await vault?.close();
  });

  /** A Postgres target whose admin password is in Vault. */
  const dbTarget = (extra: Record<string, unknown> = {}) => ({
    kind: 'postgres' as const,
    admin: {
      host: '127.0.0.1',
      database: 'app',
      user: 'warden',
      password: { vault: 'kv/data/warden#admin_password' },
    },
    levels: { read: { grants: ['select' as const] } },
    ...extra,
  });
  const configWith = (extra: Partial<ConfigInput> = {}) =>
    parseConfig(
      {
        vault: { address: vault.address, auth: { method: 'token', token: { env: 'VAULT_TOKEN_FOR_TEST' } } },
        ...extra,
      },
      'test',
    );

  it('parses {vault: "<mount>/data/<path>#<field>"} and refuses other shapes naming the key', () => {
    const config = configWith({
      broker: { store: { kind: 'postgres', url: { vault: 'kv/data/warden#store_url' } } },
    });
    assert.deepEqual(config.broker.store, { kind: 'postgres', url: { vault: 'kv/data/warden#store_url' } });
    assert.throws(
      () => configWith({ broker: { store: { kind: 'postgres', url: { vault: 'kv/warden' } } } }),
      (error: Error & { configPath?: string }) => {
        assert.equal(error.configPath, 'broker.store.url.vault');
        assert.match(error.message, /KV version 2/);
        return true;
      },
    );
    // Vault's own login secrets cannot come from Vault.
    assert.throws(
      () =>
        parseConfig({
          vault: { address: vault.address, auth: { method: 'token', token: { vault: 'kv/data/x#t' } } },
        }),
      /vault\.auth\.token/,
    );
  });

  it('reads a field from KV', async () => {
    const token = vault.addToken(['warden']);
    const resolve = createSecretResolver(configWith(), { VAULT_TOKEN_FOR_TEST: token });
    const secret = await resolve({ vault: 'kv/data/warden#slack_bot_token' }, 'chat.slack.bot_token');
    assert.equal(secret.reveal(), 'slack-token-from-vault');
    assert.equal(String(secret), '[secret]');
  });

  it('a missing field is a configuration error naming the key (and the fields there are, never their values)', async () => {
    const token = vault.addToken(['warden']);
    const resolve = createSecretResolver(configWith(), { VAULT_TOKEN_FOR_TEST: token });
    await assert.rejects(
      resolve({ vault: 'kv/data/warden#teams_secret' }, 'chat.teams.client_secret'),
      (error: Error & { code?: string; configPath?: string }) => {
        assert.equal(error.code, 'ERR_CONFIG_SECRET');
        assert.equal(error.configPath, 'chat.teams.client_secret');
        assert.ok(isConfigurationError(error));
        assert.match(
          error.message,
          /chat\.teams\.client_secret.*the Vault secret kv\/data\/warden has no field "teams_secret" \(its fields: slack_bot_token, admin_password\)/,
        );
        assert.doesNotMatch(error.message, /slack-token-from-vault|pg-secret/);
        return true;
      },
    );
    await assert.rejects(resolve({ vault: 'kv/data/elsewhere#x' }, 'audit.signing_key'), {
      code: 'ERR_VAULT_DENIED',
      message: /audit\.signing_key: .*permission denied/,
    });
  });

  it('a sealed Vault at start-up fails the provider naming the key and the fix', async () => {
    const token = vault.addToken(['warden']);
    const config = configWith({
      targets: { db: dbTarget() },
    });
    vault.sealed = true;
    try {
      await assert.rejects(
        createProviders(config, { env: { VAULT_TOKEN_FOR_TEST: token } }),
        (error: Error & { code?: string }) => {
          assert.equal(error.code, 'ERR_VAULT_SEALED');
          assert.match(
            error.message,
            /^targets\.db\.admin\.password: .*answered 503: Vault is sealed; .*unseal it/,
          );
          return true;
        },
      );
    } finally {
      vault.sealed = false;
    }
  });

  it('without a vault section, or where secrets are read synchronously, a vault reference is refused clearly', async () => {
    await assert.rejects(resolveSecret({ vault: 'kv/data/warden#x' }, 'ssh.ca_key'), {
      code: 'ERR_CONFIG_SECRET',
      message: /needs the vault section/,
    });
    assert.throws(() => resolveLocalSecret({ vault: 'kv/data/warden#x' }, 'ssh.proxy.host_key'), {
      code: 'ERR_CONFIG_SECRET',
      message: /ssh\.proxy\.host_key.*reference it with env: or file:/,
    });
  });

  it('the masking key and the keys read synchronously come from Vault once, at start-up (preload)', async () => {
    const token = vault.addToken(['warden']);
    vault.kvPut('warden', {
      slack_bot_token: 'slack-token-from-vault',
      admin_password: 'pg-secret',
      masking_key: 'a-masking-key-from-vault-32-bytes',
      host_key: 'not-a-real-host-key',
    });
    const env = { VAULT_TOKEN_FOR_TEST: token };
    const proxied = (key: string) =>
      configWith({
        targets: {
          db: dbTarget({
            proxy: {
              listen: '127.0.0.1:0',
              allow_plaintext: true,
              masking: { key, columns: [{ match: 'customers.email', style: 'hash' }] },
            },
          }),
        },
      });
    const config = proxied('vault:kv/data/warden#masking_key');
    const loaded = await preloadVaultSecrets(config, env);
    const target = loaded.config.targets.db!;
    assert.ok(target.kind === 'postgres' && target.proxy);
    const keyRef = String(target.proxy.masking?.key);
    assert.match(keyRef, /^env:WARDEN_VAULT_SECRET_\d+$/);
    assert.deepEqual(target.admin.password, { env: 'WARDEN_VAULT_SECRET_1' });
    assert.equal(loaded.env[keyRef.slice(4)], 'a-masking-key-from-vault-32-bytes');
    assert.equal(loaded.sources.get(keyRef.slice(4)), 'kv/data/warden#masking_key');
    // The proxy compiles its masker (a hash rule: the key is required) from it synchronously.
    const compiled = compilePgProxyTarget('db', target.proxy, { env: loaded.env });
    assert.ok(compiled);
    // What was loaded stays as written; the process environment is not touched.
    const original = config.targets.db!;
    assert.ok(original.kind === 'postgres');
    assert.equal(original.proxy?.masking?.key, 'vault:kv/data/warden#masking_key');
    assert.equal(process.env[keyRef.slice(4)], undefined);

    await assert.rejects(preloadVaultSecrets(proxied('vault:kv/data/warden#nope'), env), {
      code: 'ERR_CONFIG_SECRET',
      message: /targets\.db\.proxy\.masking\.key.*has no field "nope"/,
    });
    await assert.rejects(preloadVaultSecrets(proxied('vault:kv/warden'), env), {
      code: 'ERR_CONFIG_SECRET',
      message: /targets\.db\.proxy\.masking\.key.*vault:<mount>\/data\/<path>#<field>/,
    });
    // Without a vault section nothing is read or changed.
    const plain = parseConfig({}, 'test');
    const same = await preloadVaultSecrets(plain, {});
    assert.equal(same.config, plain);
  });
});
