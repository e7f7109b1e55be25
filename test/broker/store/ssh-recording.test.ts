import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { SshSessionRecord } from '../../../broker/model.ts';
import { openEmbeddedStore, type SqlStore } from '../../../broker/store/sql-store.ts';

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

describe('store: SSH recordings in pieces', () => {
  let dir: string;
  let store: SqlStore;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-store-'));
    store = openEmbeddedStore(join(dir, 'warden.db'));
    await store.migrate();
  });
  after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('an ended session reads its pieces joined in order; a live one has no recording yet', async () => {
    await store.insertSshSession(session('s1'));
    // Written out of order on purpose: the order is the piece number's.
    for (const [seq, text] of [
      [1, 'b\n'],
      [0, 'a\n'],
      [2, 'c\n'],
    ] as const) {
      await store.appendSshRecording('s1', seq, text);
    }
    await store.appendSshRecording('s-other', 0, 'x\n');
    assert.equal((await store.getSshSession('s1'))!.recording, null);
    await store.finishSshSession('s1', end);
    assert.equal((await store.getSshSession('s1'))!.recording, 'a\nb\nc\n');
  });

  it('a session without pieces (a file transfer) has none; a whole recording stored in its row still reads', async () => {
    await store.insertSshSession(session('s2'));
    await store.finishSshSession('s2', end);
    assert.equal((await store.getSshSession('s2'))!.recording, null);
    await store.insertSshSession(session('s3'));
    await store.finishSshSession('s3', { ...end, recording: 'whole\n' });
    assert.equal((await store.getSshSession('s3'))!.recording, 'whole\n');
  });

  it('a piece number is written once', async () => {
    await store.appendSshRecording('s4', 0, 'a\n');
    await assert.rejects(store.appendSshRecording('s4', 0, 'again\n'));
  });
});
