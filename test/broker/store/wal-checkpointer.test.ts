import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { sql } from 'kysely';
import { openEmbeddedStore, type SqlStore } from '../../../broker/store/sql-store.ts';
import { type CheckpointResult, WalCheckpointer } from '../../../broker/store/wal-checkpointer.ts';

/** An open WAL database with a table of blobs. */
function openDatabase(path: string) {
  const database = new Database(path);
  database.pragma('journal_mode = WAL');
  database.exec('create table if not exists t (id integer primary key, data blob not null)');
  return database;
}

describe('WalCheckpointer', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'warden-wal-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('takes the checkpoints off the writing connection and copies every written page', async () => {
    const path = join(dir, 'a.db');
    const database = openDatabase(path);
    const checkpointer = new WalCheckpointer(database, path, { intervalMs: 20 });
    try {
      assert.equal(database.pragma('wal_autocheckpoint', { simple: true }), 0);
      const done = new Promise<CheckpointResult>((resolve) => {
        const stop = checkpointer.onCheckpoint((result) => {
          if (result.checkpointed < result.log) return;
          stop();
          resolve(result);
        });
      });
      // 8 MiB: past the 1 000 pages at which SQLite would checkpoint on this connection.
      const insert = database.prepare('insert into t (data) values (?)');
      for (let i = 0; i < 32; i++) insert.run(Buffer.alloc(256 * 1024, i));
      const result = await done;
      assert.ok(result.log > 1_000, `${result.log} frames`);
      assert.equal(checkpointer.running, true);
    } finally {
      await checkpointer.stop();
      database.close();
    }
    assert.equal(checkpointer.running, false);
    // The last connection closed on a checkpointed WAL: SQLite removed it, and the data is whole.
    assert.equal(existsSync(`${path}-wal`), false);
    const reopened = new Database(path, { readonly: true });
    assert.equal(reopened.prepare('select count(*) from t').pluck().get(), 32);
    reopened.close();
  });

  it('leaves a few waiting pages alone (a checkpoint syncs the disk twice) until a thousand wait', async () => {
    const path = join(dir, 'c.db');
    const database = openDatabase(path);
    const checkpointer = new WalCheckpointer(database, path, { intervalMs: 20, maxDelayMs: 60_000 });
    const seen: CheckpointResult[] = [];
    checkpointer.onCheckpoint((result) => seen.push(result));
    try {
      const insert = database.prepare('insert into t (data) values (?)');
      for (let i = 0; i < 10; i++) insert.run(Buffer.alloc(1_000, i));
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(seen.length, 0, 'checkpointed a handful of pages');
      for (let i = 0; i < 20; i++) insert.run(Buffer.alloc(256 * 1024, i));
      while (seen.length === 0) await new Promise((resolve) => setTimeout(resolve, 20));
      assert.ok(seen[0]!.checkpointed > 1_000, `${seen[0]!.checkpointed} frames`);
    } finally {
      await checkpointer.stop();
      database.close();
    }
  });

  it('a worker that cannot open the database reports it and gives the connection its checkpoints back', async () => {
    const path = join(dir, 'b.db');
    const database = openDatabase(path);
    const errors: unknown[] = [];
    let reported: () => void = () => {};
    const failed = new Promise<void>((resolve) => (reported = resolve));
    const checkpointer = new WalCheckpointer(database, join(dir, 'missing', 'b.db'), {
      onError: (error) => {
        errors.push(error);
        reported();
      },
    });
    assert.equal(database.pragma('wal_autocheckpoint', { simple: true }), 0);
    await failed;
    assert.equal(checkpointer.running, false);
    await checkpointer.stop();
    assert.match(String(errors[0]), /WAL checkpointer stopped, checkpoints run inline again/);
    assert.equal(database.pragma('wal_autocheckpoint', { simple: true }), 1000);
    database.close();
  });

  it('the embedded store checkpoints in the background when asked, and stops the worker on close', async () => {
    const path = join(dir, 'store', 'warden.db');
    const autocheckpoint = async (store: SqlStore) =>
      (await sql<{ wal_autocheckpoint: number }>`pragma wal_autocheckpoint`.execute(store.kysely)).rows[0]!
        .wal_autocheckpoint;
    const store = openEmbeddedStore(path, { backgroundCheckpoints: true });
    await store.migrate();
    assert.equal(await autocheckpoint(store), 0, 'the worker checkpoints, not the connection');
    await store.appendSessionFrames('s1', 0, Buffer.alloc(1024 * 1024, 1));
    await store.close();
    assert.equal(existsSync(`${path}-wal`), false);
    // By default (CLI commands), SQLite checkpoints as it always does, and no worker starts.
    const reopened = openEmbeddedStore(path);
    assert.equal(await autocheckpoint(reopened), 1000);
    const [piece] = await reopened.readSessionFrames('s1');
    assert.equal(piece!.length, 1024 * 1024);
    await reopened.close();
  });
});
