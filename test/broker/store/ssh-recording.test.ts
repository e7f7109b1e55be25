/** SSH recordings in both stores: binary pieces (migration 7), and text stored by older versions. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { SshSessionRecord } from '../../../broker/model.ts';
import type { SqlStore } from '../../../broker/store/sql-store.ts';
import { openTestStore, type StoreKind } from '../../helpers/broker-fixture.ts';
import { type PgCluster, startPgCluster } from '../../helpers/pg-cluster.ts';

const session = (id: string, recording: string | null = null): SshSessionRecord => ({
  id,
  requestId: 'r1',
  target: 'web-1',
  kind: 'ssh',
  requester: 'alice',
  login: 'deploy',
  client: '127.0.0.1',
  startedAt: 1,
  endedAt: null,
  endReason: null,
  recording,
  meta: {},
});
const end = { endedAt: 2, endReason: 'ended', recording: null, meta: {} };

describe('store: SSH recordings', () => {
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
        await store.insertSshSession(session('s1'));
        const bytes = [
          Buffer.from([0x68, 0, 0xff, 0xe2]),
          Buffer.from([0x82, 0xac, 0x0a]),
          Buffer.alloc(300_000, 7),
        ];
        // Written out of order on purpose: the order is the piece number's.
        for (const seq of [1, 0, 2]) await store.appendSshRecording('s1', seq, bytes[seq]!);
        await store.appendSshRecording('s-other', 0, Buffer.from('x'));
        // A bare Uint8Array (not a Buffer) is stored as bytes too.
        await store.appendSshRecording('s-other', 1, new Uint8Array([1, 2, 3]));
        assert.deepEqual(
          (await store.readSshRecording('s-other')).map((piece) => [...piece]),
          [[0x78], [1, 2, 3]],
        );
        const read = await store.readSshRecording('s1');
        assert.deepEqual(
          read.map((piece) => Buffer.from(piece)),
          bytes,
        );
        await store.finishSshSession('s1', end);
        assert.equal((await store.getSshSession('s1'))!.recording, null);
      });

      it('a session without pieces (a file transfer) reads none', async () => {
        await store.insertSshSession(session('s2'));
        await store.finishSshSession('s2', end);
        assert.deepEqual(await store.readSshRecording('s2'), []);
        assert.equal((await store.getSshSession('s2'))!.recording, null);
      });

      it('recordings stored as text by older versions still read: whole in the row, or in pieces', async () => {
        await store.insertSshSession(session('s3'));
        await store.finishSshSession('s3', { ...end, recording: 'whole\n' });
        assert.equal((await store.getSshSession('s3'))!.recording, 'whole\n');
        await store.insertSshSession(session('s4'));
        await store.kysely
          .insertInto('warden_ssh_recording_chunks')
          .values([
            { session_id: 's4', seq: 1, data: 'b\n' },
            { session_id: 's4', seq: 0, data: 'a\n' },
          ])
          .execute();
        assert.equal((await store.getSshSession('s4'))!.recording, null, 'live: not yet');
        await store.finishSshSession('s4', end);
        assert.equal((await store.getSshSession('s4'))!.recording, 'a\nb\n');
      });

      it('a piece number is written once', async () => {
        await store.appendSshRecording('s5', 0, Buffer.from('a'));
        await assert.rejects(store.appendSshRecording('s5', 0, Buffer.from('again')));
        assert.deepEqual(
          (await store.readSshRecording('s5')).map((piece) => Buffer.from(piece).toString()),
          ['a'],
        );
      });
    });
  }
});
