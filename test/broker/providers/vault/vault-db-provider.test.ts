/**
 * The vault provider on a Postgres target, through `node-vault`, against the Vault stand-in
 * (`test/helpers/vault-standin.ts`) whose database engine runs its statements on a real
 * PostgreSQL 15, and the README's non-superuser CREATEROLE admin. No Vault server is used.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import type { ConfigInput } from '../../../../broker/config/schema.ts';
import type { PostgresIssuedCredential } from '../../../../broker/events/events.ts';
import type { AccessRequest } from '../../../../broker/model.ts';
import { PostgresCredential } from '../../../../broker/providers/postgres/credential.ts';
import { parseLeaseHandle } from '../../../../broker/providers/vault/lease.ts';
import { compilePgProxyTarget } from '../../../../proxy/pg/config.ts';
import { PgProxyServer } from '../../../../proxy/pg/server.ts';
import {
  type BrokerFixture,
  buildTestConfig,
  loginWith,
  startBrokerFixture,
  waitFor,
} from '../../../helpers/broker-fixture.ts';
import { freePort, type PgCluster, startPgCluster } from '../../../helpers/pg-cluster.ts';
import { runPsql } from '../../../helpers/psql.ts';
import { startVaultStandin, type VaultStandin } from '../../../helpers/vault-standin.ts';

const CAROL = { id: 'carol', admin: false };

/** A `provider: vault` app-db whose Vault roles Warden writes (`manage_roles`), carol auto-approved. */
function vaultConfig(
  cluster: PgCluster,
  vault: VaultStandin,
  tokenFile: string,
  vaultSettings: Record<string, unknown> = {},
  proxy?: { listen: string; allow_plaintext?: boolean; record_rows?: boolean },
): (database: string) => Partial<ConfigInput> {
  return (database) => {
    const base = buildTestConfig(cluster, database).targets!['app-db']!;
    if (base.kind !== 'postgres') throw new Error('the test target is postgres');
    return {
      targets: {
        'app-db': {
          ...base,
          provider: 'vault',
          levels: { read: { grants: ['select'] } },
          vault: { manage_roles: true, connection: 'app', max_ttl: '2m', ...vaultSettings },
          ...(proxy ? { proxy } : {}),
        },
      },
      vault: { address: vault.address, auth: { method: 'token', token: { file: tokenFile } }, timeout: '2s' },
      rules: [
        {
          name: 'read',
          targets: ['app-db'],
          duration: { default: '30s', max: '1h' },
          approvers: [{ group: 'dba' }],
          auto_approve: { groups: ['oncall'] },
          extend: { allowed: true, needs_approval: false },
        },
      ],
    };
  };
}

/** A grant for carol (auto-approved) of `duration` on app-db. */
function requestGrant(fx: BrokerFixture, duration: number | string, reason: string): Promise<AccessRequest> {
  return fx.app.broker.request({ requester: 'carol', target: 'app-db', duration, reason, source: 'api' });
}

function credentialOf(fx: BrokerFixture, request: AccessRequest): PostgresIssuedCredential {
  const event = fx.events.find((e) => e.type === 'grant.active' && e.request.id === request.id);
  if (event?.type !== 'grant.active' || !(event.credential instanceof PostgresCredential)) {
    throw new Error(`grant ${request.id} did not activate: ${request.state} ${request.error ?? ''}`);
  }
  return event.credential;
}

async function roleExists(cluster: PgCluster, name: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: cluster.urlFor('postgres') });
  await client.connect();
  try {
    return (await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [name])).rowCount === 1;
  } finally {
    await client.end();
  }
}

describe('vault provider: Postgres through the database secrets engine', () => {
  let cluster: PgCluster;
  let vault: VaultStandin;
  let dir: string;
  let tokenFile: string;

  before(async () => {
    cluster = await startPgCluster();
    vault = await startVaultStandin();
    dir = mkdtempSync(join(tmpdir(), 'warden-vault-'));
    tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, `${vault.rootToken}\n`, { mode: 0o600 });
  });
  after(async () => {
    await vault?.close();
    await cluster?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function start(
    settings: Record<string, unknown> = {},
    proxy?: { listen: string; allow_plaintext?: boolean; record_rows?: boolean },
  ): Promise<BrokerFixture> {
    const fx = await startBrokerFixture(
      'embedded',
      cluster,
      vaultConfig(cluster, vault, tokenFile, settings, proxy),
    );
    const target = fx.config.targets['app-db']!;
    if (target.kind !== 'postgres') throw new Error('postgres target');
    vault.configureDatabase('app', cluster.urlFor(target.admin.database));
    return fx;
  }

  it('full flow: a Vault credential logs in, and at expiry its lease is revoked, its role gone and its session cut', async () => {
    const fx = await start();
    try {
      const grant = await requestGrant(fx, 3000, 'INC-1 vault flow');
      assert.equal(grant.state, 'active', grant.error ?? '');
      const credential = credentialOf(fx, grant);
      const [record] = await fx.store.listCredentials({ requestId: grant.id });
      const handle = parseLeaseHandle(record!.handle);
      assert.ok(handle, `the handle holds the lease: ${record!.handle}`);
      assert.equal(handle.username, credential.user);
      assert.match(handle.leaseId, /^database\/creds\/warden-app-db-read\//);
      assert.ok(vault.liveLeases().includes(handle.leaseId));
      // The lease's TTL is the grant's duration (Vault's role default is 5 minutes).
      const client = await loginWith(credential);
      const rows = await client.query('SELECT customer FROM invoices ORDER BY id');
      assert.deepEqual(
        rows.rows.map((r) => r.customer),
        ['acme', 'globex'],
      );
      let endedAt = 0;
      client.on('error', () => {
        endedAt ||= Date.now();
      });
      client.on('end', () => {
        endedAt ||= Date.now();
      });
      await waitFor(() => endedAt > 0, 10_000, 'the session to be cut');
      assert.ok(
        endedAt - grant.expiresAt! < 1000,
        `session cut ${endedAt - grant.expiresAt!} ms after expiry (within a second)`,
      );
      await waitFor(
        async () => (await fx.store.getRequest(grant.id))?.state === 'expired',
        10_000,
        'expired',
      );
      assert.ok(!vault.liveLeases().includes(handle.leaseId), 'the lease is revoked');
      assert.equal(await roleExists(cluster, credential.user), false, 'the role is gone');
      assert.ok(vault.count(/^sys\/leases\/revoke$/) >= 1, 'Warden revoked the lease itself');
      const audit = (await fx.store.readAudit({ limit: 1000 })).filter((e) => e.subject === grant.id);
      const revoked = audit.find((e) => e.action === 'credential.revoked');
      assert.equal(revoked?.data.lease_id, handle.leaseId);
      assert.equal(revoked?.data.sessions_ended, true);
      assert.doesNotMatch(fx.logs.lines.join('\n'), new RegExp(credential.password.reveal()));
      assert.doesNotMatch(fx.logs.lines.join('\n'), new RegExp(vault.rootToken));
    } finally {
      await fx.close();
    }
  });

  it('full flow through the proxy: psql with the proxy login, the session cut at expiry, the lease revoked and the role gone', async () => {
    const port = await freePort();
    const fx = await start({}, { listen: `127.0.0.1:${port}`, allow_plaintext: true, record_rows: false });
    const target = fx.config.targets['app-db']!;
    assert.ok(target.kind === 'postgres' && target.proxy);
    const server = new PgProxyServer({
      target: compilePgProxyTarget('app-db', target.proxy, { env: fx.env }),
      ports: fx.app.proxyPorts,
    });
    await server.listen(port, '127.0.0.1');
    try {
      const grant = await requestGrant(fx, 4000, 'INC-1b vault through the proxy');
      assert.equal(grant.state, 'active', grant.error ?? '');
      const login = credentialOf(fx, grant);
      assert.equal(login.port, port, 'the person is given the proxy, not the database');
      const [record] = await fx.store.listCredentials({ requestId: grant.id });
      const handle = parseLeaseHandle(record!.handle)!;
      assert.notEqual(login.password.reveal(), '', 'a proxy password');
      const psql = await runPsql(
        { ...login, password: login.password.reveal() },
        'SELECT customer FROM invoices ORDER BY id',
      );
      assert.ok(psql.ok, psql.stderr);
      assert.equal(psql.stdout, 'acme\nglobex');
      const sessions = await fx.store.listSessions({});
      assert.ok(
        sessions.some((s) => s.grantId === grant.id && s.protocol === 'postgres'),
        'the proxied session is recorded against the grant',
      );
      const client = await loginWith(login);
      let endedAt = 0;
      const mark = () => {
        endedAt ||= Date.now();
      };
      client.on('error', mark);
      client.on('end', mark);
      await waitFor(() => endedAt > 0, 15_000, 'the proxied session to be cut');
      assert.ok(endedAt - grant.expiresAt! < 1000, `cut ${endedAt - grant.expiresAt!} ms after expiry`);
      await waitFor(
        async () => (await fx.store.getRequest(grant.id))?.state === 'expired',
        10_000,
        'expired',
      );
      assert.ok(!vault.liveLeases().includes(handle.leaseId), 'the lease is revoked');
      assert.equal(await roleExists(cluster, handle.username), false, 'the role is gone');
      const again = await runPsql({ ...login, password: login.password.reveal() }, 'SELECT 1');
      assert.equal(again.ok, false, 'the proxy login no longer works');
    } finally {
      await server.close();
      await fx.close();
    }
  });

  it("extending past the Vault role's max_ttl is refused with a clear message, and the grant keeps its expiry", async () => {
    const fx = await start();
    try {
      const grant = await requestGrant(fx, 60_000, 'INC-2 extend');
      assert.equal(grant.state, 'active', grant.error ?? '');
      await assert.rejects(
        fx.app.broker.extend(grant.id, CAROL, '5m'),
        (error: Error & { code?: string }) => {
          assert.equal(error.code, 'ERR_PROVIDER_FAILED');
          assert.match(
            error.message,
            /Vault caps leases of database\/roles\/warden-app-db-read at its max_ttl/,
          );
          assert.match(error.message, /targets\.app-db\.vault\.max_ttl/);
          return true;
        },
      );
      assert.equal((await fx.store.getRequest(grant.id))?.expiresAt, grant.expiresAt);
      // Within max_ttl, the extension renews the lease.
      const extended = await fx.app.broker.extend(grant.id, CAROL, '30s');
      assert.equal(extended.expiresAt, grant.expiresAt! + 30_000);
      await fx.app.broker.revoke(grant.id, CAROL);
    } finally {
      await fx.close();
    }
  });

  it('a grant longer than max_ttl fails at mint, and its lease is revoked at once', async () => {
    const fx = await start();
    try {
      const before = vault.liveLeases().length;
      const grant = await requestGrant(fx, '30m', 'INC-3 too long');
      assert.equal(grant.state, 'failed');
      assert.match(grant.error ?? '', /max_ttl: \d+ s left, the grant needs 1800 s/);
      assert.equal(vault.liveLeases().length, before, 'no lease left behind');
    } finally {
      await fx.close();
    }
  });

  it('Vault down at expiry: the role stops logging in at once, the grant shows the failure, and a retry revokes the lease', async () => {
    const fx = await start();
    try {
      const grant = await requestGrant(fx, 2500, 'INC-4 vault down');
      assert.equal(grant.state, 'active', grant.error ?? '');
      const credential = credentialOf(fx, grant);
      const client = await loginWith(credential);
      let ended = false;
      client.on('end', () => {
        ended = true;
      });
      vault.autoExpire = false;
      await vault.setDown(true);
      const failed = await waitFor(
        async () => {
          const g = await fx.store.getRequest(grant.id);
          return g?.state === 'revocation_failed' ? g : undefined;
        },
        15_000,
        'revocation_failed',
      );
      assert.match(
        failed!.error ?? '',
        /revocation failed .*Vault at http:\/\/127\.0\.0\.1:\d+ is unreachable/,
      );
      assert.match(failed!.error ?? '', /can no longer log in and its sessions were ended/);
      await waitFor(() => ended, 5000, 'the session to be cut while Vault is down');
      await assert.rejects(loginWith(credential), /password authentication failed|not permitted to log in/);
      await vault.setDown(false);
      await waitFor(
        async () => (await fx.store.getRequest(grant.id))?.state === 'expired',
        20_000,
        'expired',
      );
      assert.equal(await roleExists(cluster, credential.user), false);
      assert.equal(vault.liveLeases().filter((l) => l.includes(credential.user)).length, 0);
      const leaseId = parseLeaseHandle(
        (await fx.store.listCredentials({ requestId: grant.id }))[0]!.handle,
      )!.leaseId;
      assert.ok(!vault.liveLeases().includes(leaseId));
    } finally {
      vault.autoExpire = true;
      await vault.setDown(false);
      await fx.close();
    }
  });

  it("Vault's revocation that leaves the role (statements that do not drop it) is finished by Warden for a managed role", async () => {
    const fx = await start();
    try {
      const grant = await requestGrant(fx, 60_000, 'INC-5 stubborn');
      const credential = credentialOf(fx, grant);
      // Rewrite the Vault role as a DBA might: revocation that forgets DROP ROLE.
      const role = await fetch(`${vault.address}/v1/database/roles/warden-app-db-read`, {
        headers: { 'x-vault-token': vault.rootToken },
      }).then((r) => r.json() as Promise<{ data: Record<string, unknown> }>);
      await fetch(`${vault.address}/v1/database/roles/warden-app-db-read`, {
        method: 'POST',
        headers: { 'x-vault-token': vault.rootToken, 'content-type': 'application/json' },
        body: JSON.stringify({ ...role.data, revocation_statements: ['SELECT 1'] }),
      });
      // The lease was issued under the old statements; the stand-in, like Vault, reads them at revocation.
      await fx.app.broker.revoke(grant.id, CAROL);
      await waitFor(
        async () => (await fx.store.getRequest(grant.id))?.state === 'revoked',
        10_000,
        'revoked',
      );
      assert.equal(await roleExists(cluster, credential.user), false);
      const audit = (await fx.store.readAudit({ limit: 1000 })).filter((e) => e.subject === grant.id);
      assert.equal(audit.find((e) => e.action === 'credential.revoked')?.data.role_removed_by, 'warden');
    } finally {
      await fx.close();
    }
  });

  it('malformed Vault answers at mint fail the grant with a clear error, and nothing crashes', async () => {
    const fx = await start();
    try {
      for (const mode of ['not-json', 'truncated', 'wrong-shape', 'status-500'] as const) {
        vault.misbehave(/^database\/creds\//, mode);
        const grant = await requestGrant(fx, 30_000, `INC-6 ${mode}`);
        assert.equal(grant.state, 'failed', mode);
        assert.match(
          grant.error ?? '',
          mode === 'status-500'
            ? /answered 500: internal error/
            : /minting a credential from database\/creds\/warden-app-db-read: Vault at .* answered (something that is not a JSON object|without lease_id)/,
          mode,
        );
      }
      const ok = await requestGrant(fx, 30_000, 'INC-6 after');
      assert.equal(ok.state, 'active');
      await fx.app.broker.revoke(ok.id, CAROL);
    } finally {
      await fx.close();
    }
  });

  it('start-up reconciliation revokes leases no live grant holds, by prefix where configured', async () => {
    const fx = await start({ revoke_prefix: true });
    const grant = await requestGrant(fx, 60_000, 'INC-7 leftover');
    const credential = credentialOf(fx, grant);
    const [record] = await fx.store.listCredentials({ requestId: grant.id });
    const leaseId = parseLeaseHandle(record!.handle)!.leaseId;
    // A broker that lost the grant (its record gone, as after a crash between mint and record).
    await fx.store.updateCredential(record!.id, { state: 'revoked', revokedAt: Date.now() });
    const before = vault.count(/revoke-prefix/);
    await fx.app.broker.reconcile();
    assert.equal(vault.count(/revoke-prefix/), before + 1);
    assert.ok(!vault.liveLeases().includes(leaseId));
    assert.equal(await roleExists(cluster, credential.user), false);
    await fx.close();
  });
});
