/**
 * 200 grants through the vault provider against the Vault stand-in (`test/helpers/vault-standin.ts`,
 * its database engine on a real PostgreSQL; no Vault server is used):
 * - `mint_*`: from the request (auto-approved, so approval is immediate) to a usable credential
 *   (the lease issued and renewed to the grant's duration, the credential returned);
 * - `revoke_*`: from the grants' expiry (all within one second) to the lease revoked, the role gone
 *   and, for the grants holding a live session, that session ended.
 * Reference in the same run: the same figures for the native Postgres provider on the same server.
 * The stand-in's own lease expiry is off, so every revocation measured is Warden's.
 */

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { ConfigInput } from '../broker/config/schema.ts';
import type { PostgresIssuedCredential } from '../broker/events/events.ts';
import { PostgresCredential } from '../broker/providers/postgres/credential.ts';
import { parseLeaseHandle } from '../broker/providers/vault/lease.ts';
import { type BrokerFixture, buildTestConfig, startBrokerFixture } from '../test/helpers/broker-fixture.ts';
import { type PgCluster, startPgCluster } from '../test/helpers/pg-cluster.ts';
import { startVaultStandin, type VaultStandin } from '../test/helpers/vault-standin.ts';
import { mintGrantsExpiringTogether, openWatchedSessions } from './_sessions.ts';
import { note, summarize } from './_stats.ts';

const GRANTS = Number(process.env.BENCH_GRANTS ?? 200);
const SESSIONS = Math.min(GRANTS, 50);
const CONCURRENCY = 4;

function configFor(
  cluster: PgCluster,
  vault: VaultStandin,
  tokenFile: string,
): (database: string) => Partial<ConfigInput> {
  return (database) => {
    const native = buildTestConfig(cluster, database).targets!['app-db']!;
    if (native.kind !== 'postgres') throw new Error('the test target is postgres');
    const read = { read: { grants: ['select' as const] } };
    return {
      targets: {
        'app-db': { ...native, levels: read },
        'vault-db': {
          ...native,
          provider: 'vault',
          role_prefix: 'wv_',
          levels: read,
          vault: { manage_roles: true, connection: 'app' },
        },
      },
      vault: { address: vault.address, auth: { method: 'token', token: { file: tokenFile } } },
      rules: [
        {
          name: 'bench',
          targets: ['app-db', 'vault-db'],
          duration: { default: '30m', max: '2h' },
          approvers: [{ group: 'dba' }],
          auto_approve: { groups: ['oncall'] },
        },
      ],
    };
  };
}

interface Phase {
  mint: number[];
  revoke: number[];
}

/** Mints `GRANTS` grants on `target`, all expiring within one second, and times both ends. */
async function runPhase(
  fx: BrokerFixture,
  monitor: pg.Client,
  target: string,
  isGone: (user: string, handle: string) => Promise<boolean> | boolean,
): Promise<Phase> {
  const broker = fx.app.broker;
  const credentials = new Map<string, PostgresIssuedCredential>();
  const unsubscribe = broker.events.subscribe((e) => {
    if (e.type === 'grant.active' && e.credential instanceof PostgresCredential)
      credentials.set(e.request.id, e.credential);
  });
  const lead = Math.max(20_000, GRANTS * 80);
  const expiryBase = Date.now() + lead;
  note(`${target}: minting ${GRANTS} grants, all expiring within one second in ${Math.round(lead / 1000)} s`);
  const minted = await mintGrantsExpiringTogether(broker, {
    target,
    count: GRANTS,
    concurrency: CONCURRENCY,
    expiryBase,
  });
  unsubscribe();
  const mint = minted.map((m) => m.ms);
  const grants = minted.map(({ grant }) => ({
    id: grant.id,
    user: credentials.get(grant.id)!.user,
    expiresAt: grant.expiresAt!,
  }));
  note(`${target}: opening ${SESSIONS} live sessions`);
  const { clients, ended } = await openWatchedSessions(
    grants.slice(0, SESSIONS).map((grant) => credentials.get(grant.id)!),
  );
  const handles = new Map<string, string>();
  for (const record of await fx.store.listCredentials({ target })) {
    const grant = grants.find((g) => g.id === record.requestId);
    if (grant) handles.set(grant.user, record.handle);
  }
  note(`${target}: waiting for expiry`);
  const gone = new Map<string, number>();
  const remaining = new Set(grants.map((g) => g.user));
  const deadline = expiryBase + 60_000;
  while (remaining.size > 0 && Date.now() < deadline) {
    const present = new Set(
      (await monitor.query<{ rolname: string }>('SELECT rolname FROM pg_roles')).rows.map((r) => r.rolname),
    );
    const now = Date.now();
    for (const user of remaining) {
      if (!present.has(user) && (await isGone(user, handles.get(user) ?? ''))) {
        gone.set(user, now);
        remaining.delete(user);
      }
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  if (remaining.size > 0)
    throw new Error(`${target}: ${remaining.size} credentials were still there a minute after expiry`);
  if (ended.size < clients.length)
    throw new Error(`${target}: ${clients.length - ended.size} sessions survived their grant`);
  return {
    mint,
    revoke: grants.map((g) => Math.max(gone.get(g.user)!, ended.get(g.user) ?? 0) - g.expiresAt),
  };
}

export async function run(): Promise<Record<string, number>> {
  const cluster = await startPgCluster({ max_connections: 300 });
  const vault = await startVaultStandin();
  vault.autoExpire = false;
  const dir = mkdtempSync(join(tmpdir(), 'warden-bench-vault-'));
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, vault.rootToken, { mode: 0o600 });
  let fx: BrokerFixture | undefined;
  const monitor = new pg.Client({ connectionString: cluster.url });
  try {
    fx = await startBrokerFixture('embedded', cluster, configFor(cluster, vault, tokenFile));
    const target = fx.config.targets['vault-db']!;
    if (target.kind !== 'postgres') throw new Error('postgres target');
    vault.configureDatabase('app', cluster.urlFor(target.admin.database));
    await monitor.connect();
    const native = await runPhase(fx, monitor, 'app-db', () => true);
    const live = () => new Set(vault.liveLeases());
    let leases = live();
    let seen = 0;
    const viaVault = await runPhase(fx, monitor, 'vault-db', (_user, handle) => {
      // One look at the stand-in's leases per poll round (the first credential asked re-reads them).
      if (seen++ % GRANTS === 0) leases = live();
      const leaseId = parseLeaseHandle(handle)?.leaseId;
      return leaseId !== undefined && !leases.has(leaseId);
    });
    const mint = summarize(viaVault.mint);
    const revoke = summarize(viaVault.revoke);
    const nativeMint = summarize(native.mint);
    const nativeRevoke = summarize(native.revoke);
    return {
      mint_p50_ms: mint.p50,
      mint_p99_ms: mint.p99,
      revoke_p50_ms: revoke.p50,
      revoke_p99_ms: revoke.p99,
      revoke_max_ms: revoke.max,
      grants: GRANTS,
      sessions: SESSIONS,
      native_mint_p99_ms: nativeMint.p99,
      native_revoke_p99_ms: nativeRevoke.p99,
      native_revoke_max_ms: nativeRevoke.max,
    };
  } finally {
    await monitor.end().catch(() => {});
    await fx?.close();
    await vault.close();
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
