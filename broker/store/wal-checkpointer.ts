/**
 * Checkpoints the embedded store's write-ahead log from a worker thread, with a connection of its
 * own, so the event loop never waits for one.
 *
 * better-sqlite3 is synchronous: with SQLite's automatic checkpoints, the write that crosses 1 000
 * WAL pages also copies those pages into the database file and syncs it, on the event loop. A
 * session recording written at network speed crossed that line every few milliseconds, and the
 * checkpoints took about half the time the store cost the SSH proxy. A checkpoint is safe from any
 * connection, and a PASSIVE one never blocks writers or readers, so the worker takes them over and
 * the event loop only appends to the WAL.
 *
 * Should the worker fail or exit, the main connection gets its automatic checkpoints back, so the
 * WAL never grows without bound.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type BetterSqlite3 from 'better-sqlite3';

/** Options of {@link WalCheckpointer}. */
export interface WalCheckpointerOptions {
  /** Milliseconds between two looks at the WAL. Default 200. */
  intervalMs?: number;
  /** WAL frames (pages) waiting from which a checkpoint runs, as SQLite's own default. Default 1 000. */
  pages?: number;
  /** Longest time (ms) fewer frames wait for their checkpoint. Default 5 000. */
  maxDelayMs?: number;
  /** Told about a checkpoint or worker failure (the main connection checkpoints again by then). */
  onError?(error: unknown): void;
}

/** What the worker reports after each checkpoint that moved pages. */
export interface CheckpointResult {
  /** Frames in the WAL. */
  log: number;
  /** Frames copied into the database so far. */
  checkpointed: number;
}

/** SQLite's default `wal_autocheckpoint` (pages), restored when the worker is gone. */
const AUTOCHECKPOINT_PAGES = 1000;

/**
 * The worker, plain JavaScript: a worker thread does not inherit the main thread's TypeScript loader.
 * It checkpoints as SQLite would (once `pages` frames wait), or after `maxDelayMs` when fewer do.
 * Frames waiting are read from the wal-index header in the `-shm` file (mxFrame at byte 16,
 * nBackfill at byte 96: https://www.sqlite.org/walformat.html), a 100-byte read that syncs nothing,
 * where a checkpoint on every tick would sync the disk twice even for a handful of pages.
 */
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { openSync, readSync, closeSync } = require('node:fs');
const Database = require(workerData.driver);
const db = new Database(workerData.path, { fileMustExist: true });
db.pragma('busy_timeout = 0');
const header = Buffer.alloc(100);
let shm;
let last = Date.now();
function waiting() {
  try {
    shm ??= openSync(workerData.path + '-shm', 'r');
    if (readSync(shm, header, 0, 100, 0) < 100) return 0;
  } catch {
    return workerData.pages;
  }
  const frames = header.readUInt32LE(16);
  const backfilled = header.readUInt32LE(96);
  return frames >= backfilled ? frames - backfilled : frames;
}
function checkpoint(force) {
  const frames = waiting();
  if (!force && frames < workerData.pages && (frames === 0 || Date.now() - last < workerData.maxDelayMs)) return;
  last = Date.now();
  try {
    const [row] = db.pragma('wal_checkpoint(PASSIVE)');
    if (row.checkpointed > 0) parentPort.postMessage({ log: row.log, checkpointed: row.checkpointed });
  } catch (error) {
    parentPort.postMessage({ error: String(error && error.message || error) });
  }
}
const timer = setInterval(() => checkpoint(false), workerData.intervalMs);
parentPort.on('message', (message) => {
  if (message !== 'stop') return;
  clearInterval(timer);
  checkpoint(true);
  if (shm !== undefined) closeSync(shm);
  db.close();
  parentPort.postMessage('stopped');
  parentPort.close();
});
`;

/** Runs the WAL checkpoints of the SQLite file `path`, whose main connection is `database`. */
export class WalCheckpointer {
  readonly #database: BetterSqlite3.Database;
  readonly #worker: Worker;
  readonly #listeners = new Set<(result: CheckpointResult) => void>();
  #stopped: Promise<void> | undefined;
  #gone = false;

  constructor(database: BetterSqlite3.Database, path: string, options: WalCheckpointerOptions = {}) {
    this.#database = database;
    database.pragma('wal_autocheckpoint = 0');
    this.#worker = new Worker(WORKER, {
      eval: true,
      workerData: {
        driver: createRequire(import.meta.url).resolve('better-sqlite3'),
        path,
        intervalMs: options.intervalMs ?? 200,
        pages: options.pages ?? AUTOCHECKPOINT_PAGES,
        maxDelayMs: options.maxDelayMs ?? 5_000,
      },
    });
    // A checkpointer must not keep a process alive that is otherwise done.
    this.#worker.unref();
    this.#worker.on('message', (message: CheckpointResult | { error: string } | 'stopped') => {
      if (message === 'stopped') return;
      if ('error' in message) options.onError?.(new Error(`WAL checkpoint failed: ${message.error}`));
      else for (const listener of this.#listeners) listener(message);
    });
    this.#worker.on('error', (error) => {
      this.#fallBack();
      options.onError?.(
        new Error(`WAL checkpointer stopped, checkpoints run inline again: ${error.message}`),
      );
    });
    this.#worker.on('exit', () => this.#fallBack());
  }

  /** Calls `listener` after each checkpoint that copied pages; returns a function that stops it. */
  onCheckpoint(listener: (result: CheckpointResult) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Whether the worker still runs the checkpoints (false once it failed or was stopped). */
  get running(): boolean {
    return !this.#gone;
  }

  /** Stops the worker after a last checkpoint. Resolves once it closed its connection. */
  stop(): Promise<void> {
    this.#stopped ??= new Promise<void>((resolve) => {
      if (this.#gone) return resolve();
      this.#worker.once('exit', () => resolve());
      // Waited for now: an unreferenced worker would let the process end before it is done.
      this.#worker.ref();
      this.#worker.postMessage('stop');
    });
    return this.#stopped;
  }

  #fallBack(): void {
    if (this.#gone) return;
    this.#gone = true;
    if (this.#database.open) this.#database.pragma(`wal_autocheckpoint = ${AUTOCHECKPOINT_PAGES}`);
  }
}
