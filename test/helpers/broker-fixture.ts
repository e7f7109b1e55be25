/**
 * A broker wired to a real PostgreSQL target (and, for the `postgres` store kind, a store
 * database on the same server), with a small directory and policy for tests. The target's admin
 * is the README's: a non-superuser CREATEROLE role set up with the README's SQL (see
 * `target-admin.ts`).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pg from 'pg';
import { type BrokerApp, createBrokerApp } from '../../broker/app.ts';
import { type Config, parseConfig } from '../../broker/config/load.ts';
import type { ConfigInput } from '../../broker/config/schema.ts';
import type { BrokerEvent, PostgresIssuedCredential } from '../../broker/events/events.ts';
import { createLogger } from '../../broker/log.ts';
import { openEmbeddedStore, openPostgresStore } from '../../broker/store/sql-store.ts';
import type { Store } from '../../broker/store/store.ts';
import { createDatabase, execSql, type PgCluster } from './pg-cluster.ts';
import { prepareTargetAdmin, TEST_ADMIN_USER } from './target-admin.ts';

export { TEST_ADMIN_USER } from './target-admin.ts';

export type StoreKind = 'embedded' | 'postgres';

export const TARGET_ADMIN_ENV = 'WARDEN_TEST_TARGET_PASSWORD';

/** The test organisation: alice (engineer, managed by maria), bob (dba), carol (on call), sam (sre), root (admin). */
export function buildTestConfig(
  cluster: PgCluster,
  database: string,
  overrides: Partial<ConfigInput> = {},
): ConfigInput {
  return {
    broker: { sweep_interval: '1s', expiring_soon: '5m' },
    targets: {
      'app-db': {
        kind: 'postgres',
        admin: {
          host: cluster.host,
          port: cluster.port,
          database,
          user: TEST_ADMIN_USER,
          password: { env: TARGET_ADMIN_ENV },
        },
        levels: {
          read: { grants: ['select'] },
          write: { grants: ['select', 'insert', 'update', 'delete'] },
        },
        connection_limit: 3,
      },
    },
    people: [
      { id: 'alice', email: 'alice@example.com', slack: 'UALICE', manager: 'maria', groups: ['engineering'] },
      { id: 'maria', email: 'maria@example.com', slack: 'UMARIA', groups: ['engineering', 'managers'] },
      { id: 'bob', email: 'bob@example.com', slack: 'UBOB', manager: 'maria', groups: ['dba'] },
      { id: 'dana', email: 'dana@example.com', slack: 'UDANA', manager: 'maria', groups: ['dba'] },
      { id: 'carol', email: 'carol@example.com', manager: 'maria', groups: ['oncall'] },
      { id: 'sam', email: 'sam@example.com', manager: 'maria', groups: ['sre'] },
      { id: 'root', email: 'root@example.com', groups: ['security'], admin: true },
    ],
    rules: [
      {
        name: 'app-read',
        targets: ['app-db'],
        levels: ['read'],
        duration: { default: '30m', max: '2h' },
        approvers: ['manager', { group: 'dba' }],
        approvals: 1,
        auto_approve: { groups: ['oncall'] },
        break_glass: { groups: ['sre'] },
        // Extensions are approved by default; this rule opts out (tests of the unapproved path).
        extend: { allowed: true, needs_approval: false },
      },
      {
        name: 'app-write',
        targets: ['app-db'],
        levels: ['write'],
        duration: { default: '15m', max: '1h' },
        reason: { required: true, pattern: '^(INC|CHG)-\\d+', hint: 'start with a ticket id like INC-123' },
        approvers: ['manager', { group: 'dba' }],
        approvals: 'every',
      },
    ],
    ...overrides,
  };
}

/** Captures every log line, so tests can check that no secret was written. */
export class LogCapture extends Writable {
  readonly lines: string[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
    done();
  }
}

export interface BrokerFixture {
  app: BrokerApp;
  config: Config;
  events: BrokerEvent[];
  logs: LogCapture;
  store: Store;
  env: Record<string, string>;
  close(): Promise<void>;
}

/** Opens a fresh store of the given kind. */
export async function openTestStore(
  kind: StoreKind,
  cluster: PgCluster,
): Promise<{ store: Store; cleanup: () => void }> {
  if (kind === 'embedded') {
    const dir = mkdtempSync(join(tmpdir(), 'warden-store-'));
    const store = openEmbeddedStore(join(dir, 'warden.db'));
    await store.migrate();
    return { store, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
  }
  const db = await createDatabase(cluster, 'store');
  const store = openPostgresStore(cluster.urlFor(db));
  await store.migrate();
  return { store, cleanup: () => {} };
}

/** Creates a database whose admin role is set up as the README says (see `target-admin.ts`). */
export async function createTargetDatabase(cluster: PgCluster, prefix = 'app'): Promise<string> {
  const database = await createDatabase(cluster, prefix);
  await prepareTargetAdmin(cluster, database);
  return database;
}

/**
 * Creates an app database with a table and starts a broker on it. `overrides` may be a function
 * of the database's name (a target of the test's own that points at it).
 */
export async function startBrokerFixture(
  kind: StoreKind,
  cluster: PgCluster,
  overrides: Partial<ConfigInput> | ((database: string) => Partial<ConfigInput>) = {},
): Promise<BrokerFixture> {
  const database = await createTargetDatabase(cluster);
  await execSql(
    cluster,
    database,
    "CREATE TABLE invoices (id serial PRIMARY KEY, customer text NOT NULL, amount int NOT NULL); INSERT INTO invoices (customer, amount) VALUES ('acme', 100), ('globex', 250);",
  );
  const config = parseConfig(
    buildTestConfig(cluster, database, typeof overrides === 'function' ? overrides(database) : overrides),
    'test',
  );
  const env = { [TARGET_ADMIN_ENV]: cluster.password };
  const logs = new LogCapture();
  const logger = createLogger({ level: 'debug', destination: logs });
  const { store, cleanup } = await openTestStore(kind, cluster);
  const app = await createBrokerApp(config, { logger, env, store });
  const events: BrokerEvent[] = [];
  app.broker.events.subscribe((e) => {
    events.push(e);
  });
  return {
    app,
    config,
    events,
    logs,
    store,
    env,
    async close() {
      await app.close();
      await store.close();
      cleanup();
    },
  };
}

/** Logs in with a minted Postgres credential (connection errors after the login are swallowed). */
export async function loginWith(credential: PostgresIssuedCredential): Promise<pg.Client> {
  const client = new pg.Client({
    host: credential.host,
    port: credential.port,
    database: credential.database,
    user: credential.user,
    password: credential.password.reveal(),
  });
  client.on('error', () => {});
  await client.connect();
  return client;
}

/** Waits until `check` returns a truthy value (polling), or fails after `timeoutMs`. */
export async function waitFor<T>(
  check: () => Promise<T> | T,
  timeoutMs = 10_000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Waits until `warden serve` at `url` answers `/v1/health` (20 s at most). */
export async function waitForHealth(url: string): Promise<void> {
  await waitFor(
    async () => {
      try {
        return (await fetch(`${url}/v1/health`)).ok;
      } catch {
        return false;
      }
    },
    20_000,
    'warden serve to answer',
  );
}
