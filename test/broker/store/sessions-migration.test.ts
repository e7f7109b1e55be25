/**
 * Migration 9 (one session model) on both stores: a store of schema 8 holding Postgres sessions
 * with timelines and SSH sessions with every kind of recording (frames, text in the row, text in
 * pieces) reads back, after the migration, as sessions of one table with a protocol column.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import type { AccessRequest } from '../../../broker/model.ts';
import {
  migrateSchema,
  ONE_SESSION_MODEL_VERSION,
  SCHEMA_VERSION,
} from '../../../broker/store/sql/migrations.ts';
import { openEmbeddedStore, openPostgresStore, type SqlStore } from '../../../broker/store/sql-store.ts';
import type { StoreKind } from '../../helpers/broker-fixture.ts';
import { createDatabase, type PgCluster, startPgCluster } from '../../helpers/pg-cluster.ts';

const grant: AccessRequest = {
  id: 'rgrant000001',
  kind: 'access',
  parentId: null,
  requester: 'alice',
  target: 'web-1',
  level: 'shell',
  durationMs: 1_800_000,
  reason: 'migration test',
  state: 'expired',
  rule: 'web-shell',
  decision: { summary: 'auto-approved' } as AccessRequest['decision'],
  breakGlass: false,
  source: 'cli',
  createdAt: 1_000,
  pendingUntil: 2_000,
  decidedAt: 1_000,
  activatedAt: 1_000,
  expiresAt: 9_000,
  endedAt: 9_000,
  endReason: 'expired',
  endedBy: null,
  remindedAt: null,
  expiringNotifiedAt: null,
  error: null,
  version: 3,
  meta: {},
  endState: 'expired',
};

const FRAMES = [Buffer.from([0x57, 0, 0xff]), Buffer.alloc(70_000, 9)];

/** Rows as versions before migration 9 wrote them. */
async function writeSchema8Rows(store: SqlStore): Promise<void> {
  const db = store.kysely;
  await store.insertRequest(grant);
  const ssh = (id: string, requestId: string, recording: string | null, endedAt: number | null) => sql`
    insert into warden_sessions (id, request_id, target, kind, requester, login, client, started_at,
      ended_at, end_reason, recording, meta)
    values (${id}, ${requestId}, 'web-1', 'ssh', 'alice', 'deploy', '10.0.0.7', 2000, ${endedAt},
      ${endedAt === null ? null : 'ended'}, ${recording}, ${JSON.stringify({ channel: 'shell', commands: 2 })})`;
  await ssh('sframes00001', grant.id, null, 3_000).execute(db);
  await ssh('stextrow0001', grant.id, 'whole cast\n', 3_100).execute(db);
  await ssh('stextpiece01', grant.id, null, 3_200).execute(db);
  await ssh('scrashed0001', grant.id, null, null).execute(db);
  await ssh('sorphan00001', 'rgone0000001', null, 3_300).execute(db);
  for (const [seq, data] of FRAMES.entries())
    await sql`insert into warden_ssh_recording_frames (session_id, seq, data)
      values ('sframes00001', ${seq}, ${data})`.execute(db);
  // Text pieces out of order on purpose: their order is their number's.
  for (const [session, seq, data] of [
    ['stextpiece01', 1, 'second\n'],
    ['stextpiece01', 0, 'first\n'],
    ['scrashed0001', 0, 'partial\n'],
  ] as const)
    await sql`insert into warden_ssh_recording_chunks (session_id, seq, data)
      values (${session}, ${seq}, ${data})`.execute(db);
  await sql`
    insert into warden_pg_sessions (id, protocol, grant_id, requester, target, level, client_address,
      started_at, ended_at, end_reason, summary)
    values ('s_pgsession', 'postgres', 'rpg000000001', 'carol', 'app-db', 'read', '127.0.0.1:5555',
      4000, 5000, 'client terminated', ${JSON.stringify({ statements: 2, blocked: 1 })})`.execute(db);
  await sql`
    insert into warden_pg_session_chunks (session_id, first_seq, last_seq, at, events)
    values ('s_pgsession', 1, 2, 4001, ${JSON.stringify([
      [1, 4001, 'connect', { user: 'warden_carol' }],
      [2, 4002, 'blocked', { sql: 'drop table t' }],
    ])})`.execute(db);
}

describe('store migration 9: one session model', () => {
  let cluster: PgCluster;
  before(async () => {
    cluster = await startPgCluster();
  });
  after(async () => {
    await cluster?.stop();
  });

  for (const kind of ['embedded', 'postgres'] as StoreKind[]) {
    describe(kind, () => {
      let store: SqlStore;
      let dir: string | undefined;
      before(async () => {
        if (kind === 'embedded') {
          dir = mkdtempSync(join(tmpdir(), 'warden-migrate-'));
          store = openEmbeddedStore(join(dir, 'warden.db'));
        } else {
          store = openPostgresStore(cluster.urlFor(await createDatabase(cluster, 'migrate')));
        }
        await migrateSchema(store.kysely, store.kind, ONE_SESSION_MODEL_VERSION - 1);
        await writeSchema8Rows(store);
        await store.migrate();
      });
      after(async () => {
        await store?.close();
        if (dir) rmSync(dir, { recursive: true, force: true });
      });

      it('keeps every session of both kinds in one table, newest first', async () => {
        const listed = await store.listSessions({});
        // Started at the same time, the SSH sessions come in id order, last first.
        assert.deepEqual(
          listed.map((s) => [s.id, s.protocol]),
          [
            ['s_pgsession', 'postgres'],
            ['stextrow0001', 'ssh'],
            ['stextpiece01', 'ssh'],
            ['sorphan00001', 'ssh'],
            ['sframes00001', 'ssh'],
            ['scrashed0001', 'ssh'],
          ],
        );
        assert.deepEqual(
          (await store.listSessions({ protocol: 'ssh', grantId: grant.id })).map((s) => s.id).sort(),
          ['scrashed0001', 'sframes00001', 'stextpiece01', 'stextrow0001'],
        );
      });

      it('maps an SSH session: its grant, its grant level, its account and client, its facts', async () => {
        assert.deepEqual(await store.getSession('sframes00001'), {
          id: 'sframes00001',
          protocol: 'ssh',
          grantId: grant.id,
          requester: 'alice',
          target: 'web-1',
          level: 'shell',
          login: 'deploy',
          clientAddress: '10.0.0.7',
          startedAt: 2_000,
          endedAt: 3_000,
          endReason: 'ended',
          summary: { channel: 'shell', commands: 2 },
        });
        // A session whose grant is gone keeps everything but the level, which it never had.
        assert.equal((await store.getSession('sorphan00001'))!.level, '');
        assert.equal((await store.getSession('scrashed0001'))!.endedAt, null);
      });

      it('keeps a Postgres session and its timeline', async () => {
        assert.deepEqual(await store.getSession('s_pgsession'), {
          id: 's_pgsession',
          protocol: 'postgres',
          grantId: 'rpg000000001',
          requester: 'carol',
          target: 'app-db',
          level: 'read',
          login: '',
          clientAddress: '127.0.0.1:5555',
          startedAt: 4_000,
          endedAt: 5_000,
          endReason: 'client terminated',
          summary: { statements: 2, blocked: 1 },
        });
        assert.deepEqual(
          (await store.listSessionEvents('s_pgsession')).map((e) => [e.seq, e.kind, e.data]),
          [
            [1, 'connect', { user: 'warden_carol' }],
            [2, 'blocked', { sql: 'drop table t' }],
          ],
        );
      });

      it('keeps every recording: frames byte for byte, text in the row, text pieces joined in order', async () => {
        assert.deepEqual(
          (await store.readSessionFrames('sframes00001')).map((piece) => Buffer.from(piece)),
          FRAMES,
        );
        assert.equal(await store.readLegacyRecording('sframes00001'), null);
        assert.equal(await store.readLegacyRecording('stextrow0001'), 'whole cast\n');
        assert.equal(await store.readLegacyRecording('stextpiece01'), 'first\nsecond\n');
        // Pieces of a session that never ended are not lost either.
        assert.equal(await store.readLegacyRecording('scrashed0001'), 'partial\n');
      });

      it('drops the old tables, records the version, and takes new sessions of both kinds', async () => {
        for (const table of ['warden_pg_sessions', 'warden_pg_session_chunks', 'warden_ssh_recording_chunks'])
          await assert.rejects(sql`select 1 from ${sql.table(table)}`.execute(store.kysely), table);
        const version = await store.kysely
          .selectFrom('warden_meta')
          .select('value')
          .where('key', '=', 'schema_version')
          .executeTakeFirstOrThrow();
        assert.equal(Number(version.value), SCHEMA_VERSION);
        await store.migrate();
        const fresh = {
          id: 'snew00000001',
          protocol: 'ssh' as const,
          grantId: grant.id,
          requester: 'alice',
          target: 'web-1',
          level: 'shell',
          login: 'deploy',
          clientAddress: '10.0.0.8',
          startedAt: 10_000,
          endedAt: null,
          endReason: null,
          summary: {},
        };
        await store.insertSession(fresh);
        await assert.rejects(store.insertSession(fresh), 'a session id is written once');
        await store.appendSessionFrames('snew00000001', 0, Buffer.from('x'));
        await assert.rejects(store.appendSessionFrames('snew00000001', 0, Buffer.from('y')));
        assert.equal((await store.listSessions({ limit: 1 }))[0]!.id, 'snew00000001');
      });
    });
  }
});
