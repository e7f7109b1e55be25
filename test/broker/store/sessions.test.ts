/**
 * Proxied sessions of every protocol in both stores: one table, timelines (Postgres) and recording
 * frames (SSH, binary pieces), and the text recordings older versions stored.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { SessionRecord } from '../../../broker/ports/proxy.ts';
import type { SqlStore } from '../../../broker/store/sql-store.ts';
import { openTestStore, type StoreKind } from '../../helpers/broker-fixture.ts';
import { type PgCluster, startPgCluster } from '../../helpers/pg-cluster.ts';

const session = (id: string, patch: Partial<SessionRecord> = {}): SessionRecord => ({
  id,
  protocol: 'ssh',
  grantId: 'r1',
  requester: 'alice',
  target: 'web-1',
  level: 'shell',
  login: 'deploy',
  clientAddress: '127.0.0.1',
  startedAt: 1,
  endedAt: null,
  endReason: null,
  summary: { channel: 'shell' },
  ...patch,
});
const end = { endedAt: 2, endReason: 'ended', summary: { channel: 'shell', commands: 3 } };

describe('store: sessions', () => {
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
      let cleanup: () => void;
      before(async () => {
        const opened = await openTestStore(kind, cluster);
        store = opened.store as SqlStore;
        cleanup = opened.cleanup;
      });
      after(async () => {
        await store?.close();
        cleanup?.();
      });

      it('pieces read back in piece order, byte for byte (NUL, 0xff, a cut UTF-8 character)', async () => {
        await store.insertSession(session('s1'));
        const bytes = [
          Buffer.from([0x68, 0, 0xff, 0xe2]),
          Buffer.from([0x82, 0xac, 0x0a]),
          Buffer.alloc(300_000, 7),
        ];
        // Written out of order on purpose: the order is the piece number's.
        for (const seq of [1, 0, 2]) await store.appendSessionFrames('s1', seq, bytes[seq]!);
        await store.appendSessionFrames('s-other', 0, Buffer.from('x'));
        // A bare Uint8Array (not a Buffer) is stored as bytes too.
        await store.appendSessionFrames('s-other', 1, new Uint8Array([1, 2, 3]));
        assert.deepEqual(
          (await store.readSessionFrames('s-other')).map((piece) => [...piece]),
          [[0x78], [1, 2, 3]],
        );
        const read = await store.readSessionFrames('s1');
        assert.deepEqual(
          read.map((piece) => Buffer.from(piece)),
          bytes,
        );
        await store.endSession('s1', end);
        assert.deepEqual(await store.getSession('s1'), { ...session('s1'), ...end });
        assert.equal(await store.readLegacyRecording('s1'), null);
      });

      it('a session without pieces (a file transfer) reads none', async () => {
        await store.insertSession(session('s2'));
        await store.endSession('s2', end);
        assert.deepEqual(await store.readSessionFrames('s2'), []);
        assert.equal(await store.readLegacyRecording('s2'), null);
      });

      it('a recording stored as text by an older version still reads', async () => {
        await store.insertSession(session('s3'));
        await store.endSession('s3', end);
        await store.kysely
          .updateTable('warden_sessions')
          .set({ recording: 'whole\n' })
          .where('id', '=', 's3')
          .execute();
        assert.equal(await store.readLegacyRecording('s3'), 'whole\n');
        assert.equal(await store.readLegacyRecording('s-none'), null);
      });

      it('a piece number is written once', async () => {
        await store.appendSessionFrames('s5', 0, Buffer.from('a'));
        await assert.rejects(store.appendSessionFrames('s5', 0, Buffer.from('again')));
        assert.deepEqual(
          (await store.readSessionFrames('s5')).map((piece) => Buffer.from(piece).toString()),
          ['a'],
        );
      });

      it('a timeline reads back in order across chunks', async () => {
        await store.insertSession(
          session('p1', { protocol: 'postgres', login: 'warden_carol_r2', summary: {} }),
        );
        await store.appendSessionEvents([
          { sessionId: 'p1', seq: 1, at: 10, kind: 'connect', data: { user: 'u' } },
          { sessionId: 'p1', seq: 2, at: 11, kind: 'statement', data: { sql: 'select 1' } },
        ]);
        await store.appendSessionEvents([
          { sessionId: 'p1', seq: 3, at: 12, kind: 'blocked', data: { sql: 'drop' } },
        ]);
        assert.deepEqual(
          (await store.listSessionEvents('p1')).map((e) => [e.seq, e.kind]),
          [
            [1, 'connect'],
            [2, 'statement'],
            [3, 'blocked'],
          ],
        );
      });

      it('lists every protocol newest first, filtered by protocol, grant, target and requester', async () => {
        await store.insertSession(session('l-ssh', { grantId: 'rl', startedAt: 100 }));
        await store.insertSession(
          session('l-pg', { grantId: 'rl', startedAt: 200, protocol: 'postgres', target: 'app-db' }),
        );
        await store.insertSession(session('l-bob', { grantId: 'rm', startedAt: 300, requester: 'bob' }));
        const ids = async (filter: Parameters<SqlStore['listSessions']>[0]) =>
          (await store.listSessions(filter)).map((s) => s.id);
        assert.deepEqual(await ids({ grantId: 'rl' }), ['l-pg', 'l-ssh']);
        assert.deepEqual(await ids({ grantId: 'rl', protocol: 'ssh' }), ['l-ssh']);
        assert.deepEqual(await ids({ grantId: 'rl', target: 'app-db' }), ['l-pg']);
        assert.deepEqual(await ids({ requester: 'bob' }), ['l-bob']);
        assert.deepEqual(await ids({ limit: 1 }), ['l-bob']);
      });
    });
  }
});
