/**
 * The demo's target database: the machine's PostgreSQL 15 when it has one, else PGlite (PostgreSQL
 * compiled to WebAssembly) served on a TCP port by pglite-socket. Either way it lives under the
 * demo's directory and holds a small `customers` table.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import pg from 'pg';
import { DemoError } from './errors.ts';
import { createDatabase, hasLocalPostgres, startPgCluster } from './local-postgres.ts';

/** Rows of the demo's `customers` table: name, email, card number. */
export const DEMO_CUSTOMERS = [
  ['Ada Lovelace', 'ada@example.com', '4242 4242 4242 4242'],
  ['Grace Hopper', 'grace@example.com', '5555 5555 5555 4444'],
  ['Alan Turing', 'alan@example.org', '3782 822463 10005'],
  ['Katherine Johnson', 'katherine@example.net', '6011 1111 1111 1117'],
] as const;

/** Which database the demo runs: `auto` picks `local` when the binaries are there. */
export type DemoDatabaseChoice = 'auto' | 'local' | 'embedded';

export const DEMO_DATABASE_CHOICES: readonly DemoDatabaseChoice[] = ['auto', 'local', 'embedded'];

/** A running demo database and the superuser Warden administers it with. */
export interface DemoDatabase {
  kind: 'local' | 'embedded';
  /** What to call it in messages (`PostgreSQL 15`, `PGlite ...`). */
  label: string;
  host: string;
  port: number;
  database: string;
  user: string;
  password: string;
  stop(): Promise<void>;
}

const SEED_SQL = `CREATE TABLE customers (
  id serial PRIMARY KEY,
  name text NOT NULL,
  email text NOT NULL UNIQUE,
  card_number text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
)`;

/**
 * Resolves the choice (flag or `WARDEN_DEMO_DB`) against what the machine has.
 * @throws DemoError `ERR_DEMO_OPTION_INVALID` for an unknown choice.
 */
export function chooseDemoDatabase(
  requested: string | undefined,
  localAvailable: boolean,
): 'local' | 'embedded' {
  const choice = (requested ?? 'auto').trim().toLowerCase();
  if (!(DEMO_DATABASE_CHOICES as readonly string[]).includes(choice)) {
    throw new DemoError(
      'ERR_DEMO_OPTION_INVALID',
      `--demo-db "${choice.slice(0, 32)}" is not one of ${DEMO_DATABASE_CHOICES.join(', ')}`,
    );
  }
  if (choice === 'auto') return localAvailable ? 'local' : 'embedded';
  return choice as 'local' | 'embedded';
}

async function seed(db: Omit<DemoDatabase, 'stop' | 'kind' | 'label'>, newPassword: string): Promise<void> {
  const client = new pg.Client({
    host: db.host,
    port: db.port,
    database: db.database,
    user: db.user,
    password: db.password,
  });
  await client.connect();
  try {
    await client.query(SEED_SQL);
    for (const [name, email, card] of DEMO_CUSTOMERS) {
      await client.query('INSERT INTO customers (name, email, card_number) VALUES ($1, $2, $3)', [
        name,
        email,
        card,
      ]);
    }
    // The cluster's initial superuser password is public (it is in the source); replace it.
    await client.query(`ALTER ROLE ${db.user} PASSWORD ${pg.escapeLiteral(newPassword)}`);
  } finally {
    await client.end();
  }
}

async function startLocal(dir: string): Promise<DemoDatabase> {
  const cluster = await startPgCluster({}, { root: join(dir, 'postgres') });
  try {
    const database = await createDatabase(cluster, 'demo');
    const password = randomBytes(18).toString('base64url');
    const base = {
      host: cluster.host,
      port: cluster.port,
      database,
      user: cluster.user,
      password: cluster.password,
    };
    await seed(base, password);
    return { ...base, kind: 'local', label: 'PostgreSQL 15', password, stop: () => cluster.stop() };
  } catch (error) {
    await cluster.stop();
    throw error;
  }
}

/** The two PGlite modules, loaded only when the fallback is used. */
interface PgliteModules {
  PGlite: { create(options: { dataDir: string }): Promise<{ close(): Promise<void> }> };
  PGLiteSocketServer: new (options: {
    db: unknown;
    port: number;
    host: string;
    maxConnections?: number;
  }) => { start(): Promise<void>; stop(): Promise<void>; getServerConn?(): string };
}

async function loadPglite(): Promise<PgliteModules> {
  try {
    const [core, socket] = await Promise.all([
      import('@electric-sql/pglite'),
      import('@electric-sql/pglite-socket'),
    ]);
    return {
      PGlite: core.PGlite as unknown as PgliteModules['PGlite'],
      PGLiteSocketServer: socket.PGLiteSocketServer as unknown as PgliteModules['PGLiteSocketServer'],
    };
  } catch (error) {
    throw new DemoError(
      'ERR_DEMO_NO_DATABASE',
      'no PostgreSQL 15 on this machine and the embedded one (PGlite) is not installed: ' +
        'install postgresql-15 (apt-get install postgresql-15) or run npm install',
      { cause: error },
    );
  }
}

async function startEmbedded(dir: string, port: number): Promise<DemoDatabase> {
  const { PGlite, PGLiteSocketServer } = await loadPglite();
  let db: { close(): Promise<void> } | undefined;
  let server: { start(): Promise<void>; stop(): Promise<void> } | undefined;
  try {
    db = await PGlite.create({ dataDir: join(dir, 'pglite') });
    server = new PGLiteSocketServer({ db, port, host: '127.0.0.1', maxConnections: 20 });
    await server.start();
    // PGlite has one user and checks no password: any value logs in.
    const base = { host: '127.0.0.1', port, database: 'postgres', user: 'postgres', password: 'pglite' };
    const password = randomBytes(18).toString('base64url');
    await seed(base, password);
    const running = { db, server };
    return {
      ...base,
      kind: 'embedded',
      label: 'PGlite (embedded PostgreSQL)',
      password,
      async stop() {
        await running.server.stop();
        await running.db.close();
      },
    };
  } catch (error) {
    await server?.stop().catch(() => {});
    await db?.close().catch(() => {});
    if (error instanceof DemoError) throw error;
    throw new DemoError(
      'ERR_DEMO_DATABASE_FAILED',
      `the embedded PostgreSQL (PGlite) did not start (${(error as Error).message}); install postgresql-15 instead`,
      { cause: error },
    );
  }
}

/**
 * Starts the demo database under `dir`.
 * @param port where the embedded server listens (a local cluster picks its own free port).
 * @throws DemoError `ERR_DEMO_NO_DATABASE` or `ERR_DEMO_DATABASE_FAILED` with what to install.
 */
export async function startDemoDatabase(
  dir: string,
  kind: 'local' | 'embedded',
  port: number,
): Promise<DemoDatabase> {
  if (kind === 'local') {
    if (!hasLocalPostgres()) {
      throw new DemoError(
        'ERR_DEMO_NO_DATABASE',
        'PostgreSQL 15 is not installed here (no /usr/lib/postgresql/15/bin/postgres): ' +
          'install postgresql-15, or use --demo-db embedded',
      );
    }
    return startLocal(dir);
  }
  return startEmbedded(dir, port);
}
