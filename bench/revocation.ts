/**
 * 1,000 grants expiring within the same second: for each, the time from its expiry to the moment
 * its role is gone from pg_roles and (for the grants holding a live session) that session ended.
 * Reference in the same run: the time to drop one role directly with a plain DROP ROLE.
 */

import pg from 'pg';
import type { PostgresIssuedCredential } from '../broker/events/events.ts';
import { PostgresCredential } from '../broker/providers/postgres/credential.ts';
import { startBrokerFixture } from '../test/helpers/broker-fixture.ts';
import { execSql, startPgCluster } from '../test/helpers/pg-cluster.ts';
import { mintGrantsExpiringTogether, openWatchedSessions } from './_sessions.ts';
import { note, summarize } from './_stats.ts';

const GRANTS = Number(process.env.BENCH_GRANTS ?? 1000);
const SESSIONS = Math.min(GRANTS, 150);
const CONCURRENCY = 8;

export async function run(): Promise<Record<string, number>> {
  const cluster = await startPgCluster({ max_connections: 400 });
  const fx = await startBrokerFixture('embedded', cluster);
  const broker = fx.app.broker;
  const monitor = new pg.Client({ connectionString: cluster.url });
  await monitor.connect();
  try {
    // Reference: one plain DROP ROLE on this server.
    const refStart = performance.now();
    await execSql(cluster, 'postgres', 'CREATE ROLE bench_ref LOGIN');
    const refCreated = performance.now();
    await execSql(cluster, 'postgres', 'DROP ROLE bench_ref');
    const dropRefMs = performance.now() - refCreated;
    void refStart;

    const credentials = new Map<string, PostgresIssuedCredential>();
    broker.events.subscribe((e) => {
      if (e.type === 'grant.active' && e.credential instanceof PostgresCredential)
        credentials.set(e.request.id, e.credential);
    });
    // Every grant expires inside the same second, `lead` ms from now.
    const lead = Math.max(30_000, GRANTS * 60);
    const expiryBase = Date.now() + lead;
    note(`minting ${GRANTS} grants, all expiring within one second in ${Math.round(lead / 1000)} s`);
    const expiries = new Map<string, number>();
    for (const { grant } of await mintGrantsExpiringTogether(broker, {
      target: 'app-db',
      count: GRANTS,
      concurrency: CONCURRENCY,
      expiryBase,
    }))
      expiries.set(credentials.get(grant.id)!.user, grant.expiresAt!);
    note(`opening ${SESSIONS} live sessions`);
    const { clients, ended: sessionEnded } = await openWatchedSessions(
      [...credentials.values()].slice(0, SESSIONS),
    );
    if (Date.now() > expiryBase) throw new Error('setup took longer than the lead time; raise it');
    note('waiting for expiry');
    const gone = new Map<string, number>();
    const remaining = new Set(expiries.keys());
    const deadline = expiryBase + 60_000;
    while (remaining.size > 0 && Date.now() < deadline) {
      const res = await monitor.query<{ rolname: string }>(
        "SELECT rolname FROM pg_roles WHERE starts_with(rolname, 'warden_') AND NOT starts_with(rolname, 'warden__')",
      );
      const now = Date.now();
      const present = new Set(res.rows.map((r) => r.rolname));
      for (const name of remaining) {
        if (!present.has(name)) {
          gone.set(name, now);
          remaining.delete(name);
        }
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    if (remaining.size > 0)
      throw new Error(`${remaining.size} roles were still present a minute after expiry`);
    const samples = [...expiries].map(([name, expiresAt]) => {
      const done = Math.max(gone.get(name)!, sessionEnded.get(name) ?? 0);
      return done - expiresAt;
    });
    const unterminated = clients.length - sessionEnded.size;
    if (unterminated > 0) throw new Error(`${unterminated} sessions survived their grant`);
    const s = summarize(samples);
    return {
      p50_ms: s.p50,
      p99_ms: s.p99,
      max_ms: s.max,
      grants: GRANTS,
      sessions: SESSIONS,
      drop_role_reference_ms: Math.round(dropRefMs * 100) / 100,
    };
  } finally {
    await monitor.end();
    await fx.close();
    await cluster.stop();
  }
}
