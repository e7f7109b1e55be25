/**
 * Time from the approving call to a successful login with the new role (connect + SELECT 1).
 * Reference in the same run: the same login with an existing role, directly.
 */

import pg from 'pg';
import type { PostgresIssuedCredential } from '../broker/events/events.ts';
import { PostgresCredential } from '../broker/providers/postgres/credential.ts';
import { startBrokerFixture } from '../test/helpers/broker-fixture.ts';
import { execSql, startPgCluster } from '../test/helpers/pg-cluster.ts';
import { note, summarize } from './_stats.ts';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 200);

async function login(credential: {
  host: string;
  port: number;
  database: string;
  user: string;
  password: string;
}): Promise<void> {
  const client = new pg.Client(credential);
  await client.connect();
  await client.query('SELECT 1');
  await client.end();
}

export async function run(): Promise<Record<string, number>> {
  const cluster = await startPgCluster();
  const fx = await startBrokerFixture('embedded', cluster);
  const broker = fx.app.broker;
  try {
    const credentials = new Map<string, PostgresIssuedCredential>();
    broker.events.subscribe((e) => {
      if (e.type === 'grant.active' && e.credential instanceof PostgresCredential)
        credentials.set(e.request.id, e.credential);
    });
    const target = fx.config.targets['app-db']!;
    if (target.kind !== 'postgres') throw new Error('app-db is a postgres target');
    const database = target.admin.database;
    await execSql(cluster, 'postgres', "CREATE ROLE bench_ref LOGIN PASSWORD 'bench-ref-password'");
    const reference = {
      host: cluster.host,
      port: cluster.port,
      database,
      user: 'bench_ref',
      password: 'bench-ref-password',
    };
    note(`${ROUNDS} approvals`);
    const approvalMs: number[] = [];
    const referenceMs: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const request = await broker.request({
        requester: 'alice',
        target: 'app-db',
        duration: '10m',
        reason: `bench ${i}`,
        source: 'api',
      });
      const start = performance.now();
      await broker.approve(request.id, { id: 'maria', admin: false });
      const credential = credentials.get(request.id)!;
      await login({ ...credential, password: credential.password.reveal() });
      approvalMs.push(performance.now() - start);
      const refStart = performance.now();
      await login(reference);
      referenceMs.push(performance.now() - refStart);
      await broker.revoke(request.id, { id: 'alice', admin: false });
    }
    const a = summarize(approvalMs);
    const r = summarize(referenceMs);
    return {
      p50_ms: a.p50,
      p99_ms: a.p99,
      reference_login_p50_ms: r.p50,
      reference_login_p99_ms: r.p99,
      rounds: ROUNDS,
    };
  } finally {
    await fx.close();
    await cluster.stop();
  }
}
