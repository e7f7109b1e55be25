/** The vault plugin's checks of a target's settings: each names the key to fix, before anything connects. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../../../../broker/config/load.ts';
import { createProviders } from '../../../../broker/providers/registry.ts';
import { formatLeaseHandle, parseLeaseHandle } from '../../../../broker/providers/vault/lease.ts';
import { buildManagedRoleStatements } from '../../../../broker/providers/vault/vault-db-provider.ts';

const admin = { host: '127.0.0.1', port: 1, database: 'app', user: 'warden', password: { env: 'P' } };
const vault = { address: 'http://127.0.0.1:1', auth: { method: 'token', token: { env: 'T' } } };
const configOf = (targets: Record<string, unknown>, withVault = true) =>
  parseConfig({ targets, ...(withVault ? { vault } : {}) }, 'test');

describe('vault plugin', () => {
  const cases: [string, Record<string, unknown>, RegExp][] = [
    [
      'a level without a Vault role (roles not managed)',
      { kind: 'postgres', provider: 'vault', admin, levels: { read: { grants: ['select'] } } },
      /^targets\.db\.levels\.read\.vault_role: name the Vault database role/,
    ],
    [
      'managed roles without the engine connection',
      {
        kind: 'postgres',
        provider: 'vault',
        admin,
        levels: { read: { grants: ['select'] } },
        vault: { manage_roles: true },
      },
      /^targets\.db\.vault\.connection: manage_roles needs the database connection/,
    ],
    [
      'managed roles with custom creation statements',
      {
        kind: 'postgres',
        provider: 'vault',
        admin,
        levels: { read: { creation_statements: ['CREATE ROLE {{name}}'] } },
        vault: { manage_roles: true, connection: 'app' },
      },
      /^targets\.db\.levels\.read\.creation_statements: with vault\.manage_roles/,
    ],
    [
      'no admin password (sessions are ended through the admin)',
      {
        kind: 'postgres',
        provider: 'vault',
        admin: { ...admin, password: undefined },
        levels: { read: { vault_role: 'ro' } },
      },
      /^targets\.db\.admin\.password: the vault provider ends the sessions/,
    ],
    [
      'an SSH level without a signing role',
      { kind: 'ssh', provider: 'vault', host: 'web', levels: { shell: { principals: ['deploy'] } } },
      /^targets\.db\.levels\.shell\.vault_role: name the Vault SSH role/,
    ],
  ];
  for (const [what, target, message] of cases) {
    it(`refuses ${what}`, async () => {
      await assert.rejects(createProviders(configOf({ db: target }), { env: { P: 'x', T: 't' } }), {
        code: 'ERR_CONFIG_INVALID',
        message,
      });
    });
  }

  it('refuses a vault target without the vault section', async () => {
    const config = configOf(
      { db: { kind: 'postgres', provider: 'vault', admin, levels: { read: { vault_role: 'ro' } } } },
      false,
    );
    await assert.rejects(createProviders(config, { env: { P: 'x' } }), {
      code: 'ERR_CONFIG_INVALID',
      message: /^targets\.db\.provider: provider vault needs the vault section/,
    });
  });

  it('a handle holds the username and the lease id', () => {
    const handle = formatLeaseHandle('v-token-ro-abc-1700000000', 'database/creds/ro/AbC123');
    assert.deepEqual(parseLeaseHandle(handle), {
      username: 'v-token-ro-abc-1700000000',
      leaseId: 'database/creds/ro/AbC123',
    });
    assert.equal(parseLeaseHandle('serial:42'), undefined);
    assert.equal(parseLeaseHandle('name@'), undefined);
  });

  it("managed role statements quote in Vault's style and only add memberships", () => {
    const statements = buildManagedRoleStatements({
      inherit: ['report"ers'],
      levelRole: 'warden__read',
      markerRole: 'warden___minted',
      connectionLimit: 3,
      maskedSearchPath: false,
    });
    assert.deepEqual(statements.creation.slice(1), [
      'GRANT "report""ers" TO "{{name}}"',
      'GRANT "warden__read" TO "{{name}}"',
      'GRANT "warden___minted" TO "{{name}}"',
    ]);
    assert.match(
      statements.creation[0]!,
      /PASSWORD '\{\{password\}\}' VALID UNTIL '\{\{expiration\}\}' CONNECTION LIMIT 3$/,
    );
    assert.deepEqual(statements.revocation, ['DROP OWNED BY "{{name}}"', 'DROP ROLE IF EXISTS "{{name}}"']);
  });
});
