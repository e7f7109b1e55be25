/**
 * Starts a real PostgreSQL 15 server (the demo target, tests, benchmarks), on 127.0.0.1 and a free port, in a
 * temporary directory. PostgreSQL refuses to run as root, so as root the server runs as `postgres`.
 * The first call initialises a template cluster (initdb is the slow part); later calls copy it.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

export interface PgCluster {
  host: string;
  port: number;
  /** Superuser name and password, and a URL for the `postgres` database. */
  user: string;
  password: string;
  url: string;
  dataDir: string;
  /** Connection URL to a given database as the superuser. */
  urlFor(database: string): string;
  /** Stops the server (fast shutdown: sessions are cut) and starts it again on the same port. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

const BIN = process.env.WARDEN_PG_BIN ?? '/usr/lib/postgresql/15/bin';
const SUPERUSER_PASSWORD = 'warden-test-superuser';
const isRoot = process.getuid?.() === 0;

function pgUser(): { uid: number; gid: number } | undefined {
  if (!isRoot) return undefined;
  const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
  return { uid, gid };
}

function run(cmd: string, args: string[]): void {
  const full = isRoot ? ['-u', 'postgres', '--', cmd, ...args] : args;
  execFileSync(isRoot ? 'runuser' : cmd, full, { stdio: 'pipe' });
}

function ownForPostgres(path: string): void {
  const owner = pgUser();
  if (owner) chownSync(path, owner.uid, owner.gid);
}

/** Returns a TCP port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** True when this machine has the PostgreSQL 15 server binaries (`WARDEN_PG_BIN` or the Debian path). */
export function hasLocalPostgres(): boolean {
  return existsSync(join(BIN, 'postgres')) && existsSync(join(BIN, 'initdb'));
}

/** Runs initdb into `staging/data` (staging must exist and belong to the server's user). */
function initCluster(staging: string): string {
  const data = join(staging, 'data');
  const pwfile = join(staging, 'pw');
  writeFileSync(pwfile, SUPERUSER_PASSWORD);
  ownForPostgres(pwfile);
  try {
    run(join(BIN, 'initdb'), [
      '-D',
      data,
      '-U',
      'postgres',
      '--auth=scram-sha-256',
      `--pwfile=${pwfile}`,
      '--encoding=UTF8',
      '--locale=C',
      '--no-sync',
    ]);
  } finally {
    rmSync(pwfile, { force: true });
  }
  return data;
}

function templateDir(): string {
  const dir = join(tmpdir(), `warden-pg15-template-${process.getuid?.() ?? 0}`);
  if (existsSync(join(dir, 'PG_VERSION'))) return dir;
  const staging = mkdtempSync(join(tmpdir(), 'warden-pg-init-'));
  chmodSync(staging, 0o755);
  ownForPostgres(staging);
  const data = initCluster(staging);
  try {
    cpSync(data, dir, { recursive: true });
    ownTree(dir);
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
  return dir;
}

function ownTree(dir: string): void {
  if (!isRoot) return;
  execFileSync('chown', ['-R', 'postgres:postgres', dir]);
}

/**
 * Starts a fresh PostgreSQL server. Settings are appended to postgresql.conf.
 * With `root` (a directory to create), the cluster is initialised there and nothing is cached
 * outside it (the demo); otherwise it is copied from a template cached in the temp directory.
 */
export async function startPgCluster(
  settings: Record<string, string | number> = {},
  options: { root?: string } = {},
): Promise<PgCluster> {
  const root = options.root ?? mkdtempSync(join(tmpdir(), 'warden-pg-'));
  if (options.root) mkdirSync(root, { recursive: true });
  chmodSync(root, 0o755);
  ownForPostgres(root);
  const dataDir = join(root, 'data');
  if (options.root) initCluster(root);
  else cpSync(templateDir(), dataDir, { recursive: true });
  const socketDir = join(root, 'sock');
  mkdirSync(socketDir);
  ownTree(root);
  chmodSync(dataDir, 0o700);
  const port = await freePort();
  const conf = {
    listen_addresses: "'127.0.0.1'",
    port,
    unix_socket_directories: `'${socketDir}'`,
    max_connections: 300,
    fsync: 'off',
    synchronous_commit: 'off',
    full_page_writes: 'off',
    shared_buffers: "'64MB'",
    log_min_messages: 'warning',
    ...settings,
  };
  writeFileSync(
    join(dataDir, 'postgresql.auto.conf'),
    Object.entries(conf)
      .map(([k, v]) => `${k} = ${v}`)
      .join('\n') + '\n',
  );
  ownForPostgres(join(dataDir, 'postgresql.auto.conf'));
  const logFile = join(root, 'server.log');
  const args = ['-D', dataDir, '-l', logFile, '-w', '-t', '30', 'start'];
  run(join(BIN, 'pg_ctl'), args);
  const host = '127.0.0.1';
  const user = 'postgres';
  const password = SUPERUSER_PASSWORD;
  const urlFor = (database: string) =>
    `postgres://${user}:${encodeURIComponent(password)}@${host}:${port}/${database}`;
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    try {
      run(join(BIN, 'pg_ctl'), ['-D', dataDir, '-m', 'immediate', '-w', 'stop']);
    } catch {
      // Already gone: nothing to stop.
    }
    rmSync(root, { recursive: true, force: true });
  };
  process.once('exit', () => {
    if (!stopped) {
      try {
        run(join(BIN, 'pg_ctl'), ['-D', dataDir, '-m', 'immediate', 'stop']);
      } catch {}
      rmSync(root, { recursive: true, force: true });
    }
  });
  const restart = async () => {
    run(join(BIN, 'pg_ctl'), ['-D', dataDir, '-m', 'fast', '-w', 'stop']);
    run(join(BIN, 'pg_ctl'), args);
  };
  return { host, port, user, password, url: urlFor('postgres'), dataDir, urlFor, restart, stop };
}

/** Creates a database with a random name and returns it. */
export async function createDatabase(cluster: PgCluster, prefix = 'app'): Promise<string> {
  const name = `${prefix}_${randomBytes(4).toString('hex')}`;
  const client = new pg.Client({ connectionString: cluster.url });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE ${name}`);
  } finally {
    await client.end();
  }
  return name;
}

/** Runs SQL as the superuser in a database. */
export async function execSql(cluster: PgCluster, database: string, sql: string): Promise<pg.QueryResult[]> {
  const client = new pg.Client({ connectionString: cluster.urlFor(database) });
  await client.connect();
  try {
    const result = await client.query(sql);
    return Array.isArray(result) ? result : [result];
  } finally {
    await client.end();
  }
}
