/**
 * The store on SQL, one code path for SQLite (embedded) and PostgreSQL. Portable on purpose:
 * state changes are compare-and-set updates (`WHERE version = ?`) and leases, so no dialect's
 * row locking is needed; only the audit chain uses a PostgreSQL advisory lock to serialise appends
 * across replicas (SQLite serialises writers by itself).
 *
 * Each aggregate's queries live in `sql/<aggregate>.ts`, the schema in `sql/migrations.ts`; this
 * file opens a dialect and puts the aggregates together.
 */
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely';
import pg from 'pg';
import type { AuditSigner } from '../audit/signing.ts';
import { StoreMissingError } from '../errors.ts';
import { createAuditQueries } from './sql/audit.ts';
import { createChatConversationQueries } from './sql/chat-conversations.ts';
import { createChatMessageQueries } from './sql/chat-messages.ts';
import { createCredentialQueries } from './sql/credentials.ts';
import { migrateSchema } from './sql/migrations.ts';
import { createOnceQueries } from './sql/once.ts';
import { createProxyVerifierQueries } from './sql/proxy-verifiers.ts';
import { createRequestQueries } from './sql/requests.ts';
import { createReviewQueries } from './sql/reviews.ts';
import { createSessionQueries } from './sql/sessions.ts';
import type { Db, Tables } from './sql/tables.ts';
import type { Store, StoreKind } from './store.ts';
import { WalCheckpointer } from './wal-checkpointer.ts';

/** A store on SQL, with raw access for tests that tamper with the audit log on purpose. */
export interface SqlStore extends Store {
  readonly kysely: Db;
  /** The applied schema version; 0 when the database holds no Warden schema. */
  schemaVersion(): Promise<number>;
}

/**
 * One SQL store over a Kysely instance (see {@link openEmbeddedStore} and
 * {@link openPostgresStore}). `beforeClose` runs first in `close` (the embedded store stops its
 * checkpointer there).
 */
export function createSqlStore(
  kind: StoreKind,
  db: Db,
  beforeClose?: () => Promise<void>,
  auditSigner?: AuditSigner,
): SqlStore {
  return {
    kind,
    kysely: db,
    migrate: () => migrateSchema(db, kind),
    async schemaVersion() {
      try {
        const row = await db
          .selectFrom('warden_meta')
          .select('value')
          .where('key', '=', 'schema_version')
          .executeTakeFirst();
        return row ? Number(row.value) : 0;
      } catch {
        return 0;
      }
    },
    async close() {
      await beforeClose?.();
      await db.destroy();
    },
    async ping() {
      await sql`select 1`.execute(db);
    },
    ...createRequestQueries(db),
    ...createCredentialQueries(db),
    ...createAuditQueries(db, kind, auditSigner),
    ...createSessionQueries(db),
    ...createProxyVerifierQueries(db),
    ...createReviewQueries(db),
    ...createOnceQueries(db),
    ...createChatMessageQueries(db),
    ...createChatConversationQueries(db),
  };
}

/** Options of {@link openEmbeddedStore}. */
export interface EmbeddedStoreOptions {
  /**
   * Runs the WAL checkpoints on a worker thread ({@link WalCheckpointer}), for long-running
   * processes that write a lot (`warden serve`, the proxies). Starting the worker costs tens of
   * ms at open and close, so short CLI commands keep SQLite's own checkpoints. Default false.
   */
  backgroundCheckpoints?: boolean;
  /** Told when the background checkpoints fail (the store then checkpoints inline). */
  onCheckpointError?(error: unknown): void;
  /** Signs the head of every audit append (`audit.signing_key`). */
  auditSigner?: AuditSigner;
  /** Refuse a file that does not exist instead of creating it (commands that only read). */
  mustExist?: boolean;
  /**
   * Open without writing anything, anywhere (`warden doctor`): no file created, no mode changed,
   * no WAL set up; every write fails. Implies `mustExist`. See {@link openEmbeddedStore}.
   */
  readOnly?: boolean;
}

/** SQLite's files of a database: the file itself, its write-ahead log and its shared-memory index. */
const SQLITE_FILES = ['', '-wal', '-shm'];

/**
 * Makes sure the store's files are readable by their owner only: a missing directory is made
 * 0700, the database file is created 0600, and files an older version left group- or
 * world-readable are narrowed to 0600. SQLite gives the -wal and -shm files it creates the mode
 * of the database file. An existing directory keeps its mode (it may be shared, like the cwd).
 */
function secureStoreFiles(path: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  closeSync(openSync(path, 'a', 0o600));
  for (const suffix of SQLITE_FILES) {
    const file = `${path}${suffix}`;
    if (existsSync(file) && (statSync(file).mode & 0o077) !== 0) chmodSync(file, 0o600);
  }
}

/** Bytes 18 and 19 of a SQLite file: the write and read format versions (1 legacy, 2 WAL). */
const SQLITE_FORMAT_OFFSETS = [18, 19];

/**
 * A read-only SQLite connection that creates nothing. SQLite opens a WAL database read-only only
 * by creating its `-wal` and `-shm` files when they are missing (no running Warden has the store
 * open): then the file is read into memory instead, marked as a rollback-journal database so that
 * SQLite reads it as it is (every committed page is in the file once the last writer closed). When
 * both files exist a Warden process has the store open, and SQLite reads through them, seeing its
 * latest commits.
 */
function openSqliteReadOnly(path: string): Database.Database {
  if (existsSync(`${path}-wal`) && existsSync(`${path}-shm`)) {
    return new Database(path, { readonly: true, fileMustExist: true });
  }
  const bytes = readFileSync(path);
  if (bytes.length >= 100)
    for (const offset of SQLITE_FORMAT_OFFSETS) if (bytes[offset] === 2) bytes[offset] = 1;
  return new Database(bytes, { readonly: true });
}

/**
 * Opens the embedded store: a SQLite file (WAL), readable by its owner only; or, with
 * `readOnly`, the file as it is, written by nothing.
 */
export function openEmbeddedStore(path: string, options: EmbeddedStoreOptions = {}): SqlStore {
  if (path !== ':memory:') {
    if ((options.mustExist || options.readOnly) && !existsSync(path)) {
      throw new StoreMissingError(`there is no store at ${resolve(path)}`, { path: resolve(path) });
    }
    if (options.readOnly) {
      const db = new Kysely<Tables>({ dialect: new SqliteDialect({ database: openSqliteReadOnly(path) }) });
      return createSqlStore('embedded', db);
    }
    secureStoreFiles(path);
  }
  const database = new Database(path);
  database.pragma('journal_mode = WAL');
  // NORMAL in WAL mode survives a killed process (SIGKILL); only an OS crash may lose the last commits.
  database.pragma('synchronous = NORMAL');
  database.pragma('busy_timeout = 5000');
  // The WAL file shrinks back to this (bytes) when it restarts, after a burst such as a big recording.
  database.pragma(`journal_size_limit = ${64 * 1024 * 1024}`);
  const checkpointer =
    options.backgroundCheckpoints && path !== ':memory:'
      ? new WalCheckpointer(database, path, {
          ...(options.onCheckpointError ? { onError: options.onCheckpointError } : {}),
        })
      : undefined;
  const db = new Kysely<Tables>({ dialect: new SqliteDialect({ database }) });
  return createSqlStore('embedded', db, checkpointer && (() => checkpointer.stop()), options.auditSigner);
}

const INT8_OID = 20;

/** Opens the PostgreSQL store for replicated deployments. */
export function openPostgresStore(
  connectionString: string,
  poolSize = 10,
  options: { auditSigner?: AuditSigner; readOnly?: boolean } = {},
): SqlStore {
  const pool = new pg.Pool({
    connectionString,
    max: poolSize,
    // Read-only: the server refuses every write of these sessions (`warden doctor`).
    ...(options.readOnly ? { options: '-c default_transaction_read_only=on' } : {}),
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        oid === INT8_OID
          ? (v: string) => Number(v)
          : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
    },
  });
  // An idle client losing its server must not crash the process; the next query reconnects.
  pool.on('error', () => {});
  return createSqlStore(
    'postgres',
    new Kysely<Tables>({ dialect: new PostgresDialect({ pool }) }),
    undefined,
    options.auditSigner,
  );
}
