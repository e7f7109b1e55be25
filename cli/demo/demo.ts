/**
 * The demo environment behind `npm start`: a throwaway database with a `customers` table, Warden's
 * recording proxy in front of it (TLS, masking, guardrails, recording), and a configuration for
 * both (one target, a small team, a rule that needs the manager's approval). Everything lives in
 * one temporary directory, removed by `close()`.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { stringify } from 'yaml';
import { parseDuration } from '../../broker/config/duration.ts';
import type { ConfigInput } from '../../broker/config/schema.ts';
import { chooseDemoDatabase, type DemoDatabase, startDemoDatabase } from './demo-database.ts';
import { DemoError } from './errors.ts';
import { type DemoFacts, formatDemoInstructions } from './instructions.ts';
import { hasLocalPostgres } from './local-postgres.ts';
import { createSelfSignedCertificate } from './tls.ts';

export { DEMO_CUSTOMERS } from './demo-database.ts';

/** Options of {@link startDemoEnvironment}; each has a default that suits `npm start`. */
export interface DemoOptions {
  /** Grant duration of the demo rule, and the one the instructions ask for. Default `30m`. */
  ttl?: string | undefined;
  /** `auto` (default), `local` or `embedded` (see {@link chooseDemoDatabase}). */
  database?: string | undefined;
  /** Broker API `host:port`. Default 127.0.0.1:8080, or a free port when 8080 is taken. */
  listen?: string | undefined;
  /** Proxy `host:port`. Default 127.0.0.1:6432, or a free port when 6432 is taken. */
  proxyListen?: string | undefined;
  /** The PATH searched for `psql` (the instructions name `warden psql` without it). */
  path?: string | undefined;
}

export interface DemoEnvironment {
  dir: string;
  /** The configuration as a file (secrets as files beside it), for `warden serve` and `warden replay`. */
  configFile: string;
  config: ConfigInput;
  database: DemoDatabase;
  proxyListen: string;
  ttl: string;
  tls: boolean;
  /** The start-up text, once the broker API's URL is known. */
  instructions(apiUrl: string): string[];
  /** Stops the database and removes the directory; safe to call twice. */
  close(): Promise<void>;
}

/** `preferred` when it can be bound now, else a free port on the same host. */
async function pickPort(host: string, preferred: number): Promise<number> {
  const tryListen = (port: number) =>
    new Promise<number | undefined>((resolve) => {
      const server = createServer();
      server.once('error', () => resolve(undefined));
      server.listen(port, host, () => {
        const address = server.address();
        server.close(() => resolve(typeof address === 'object' && address ? address.port : undefined));
      });
    });
  const port = (await tryListen(preferred)) ?? (await tryListen(0));
  if (port === undefined) throw new DemoError('ERR_DEMO_OPTION_INVALID', `cannot listen on ${host}`);
  return port;
}

function hasProgram(name: string, path: string | undefined): boolean {
  return (path ?? '').split(delimiter).some((d) => d !== '' && existsSync(join(d, name)));
}

function writeSecret(dir: string, name: string, value: string): string {
  const file = join(dir, name);
  writeFileSync(file, value, { mode: 0o600 });
  return file;
}

/**
 * Builds the demo's configuration (pure; paths and ports come in).
 * Masking: `customers.email` hashed, `*.card_number` down to the last four, every detector on;
 * guardrails: the defaults (DROP TABLE and friends refused); recording with the masked rows.
 */
export function buildDemoConfig(input: {
  dir: string;
  ttl: string;
  listen: string;
  proxyListen: string;
  database: Pick<DemoDatabase, 'host' | 'port' | 'database' | 'user'>;
  files: { adminToken: string; dbPassword: string; maskingKey: string };
  tls: { cert: string; key: string } | undefined;
}): ConfigInput {
  return {
    broker: {
      listen: input.listen,
      store: { kind: 'embedded', path: join(input.dir, 'warden.db') },
      tokens: [{ name: 'demo-admin', role: 'admin', secret: { file: input.files.adminToken } }],
      sweep_interval: '1s',
      expiring_soon: '1m',
    },
    targets: {
      'demo-db': {
        kind: 'postgres',
        description: 'demo database with a customers table',
        admin: {
          host: input.database.host,
          port: input.database.port,
          database: input.database.database,
          user: input.database.user,
          password: { file: input.files.dbPassword },
        },
        levels: { read: { grants: ['select'] }, write: { grants: ['select', 'insert', 'update', 'delete'] } },
        proxy: {
          listen: input.proxyListen,
          ...(input.tls ? { tls: input.tls } : { allow_plaintext: true }),
          guardrails: {},
          masking: {
            key: `file:${input.files.maskingKey}`,
            columns: [
              { match: 'customers.email', style: 'hash' },
              { match: '*.card_number', style: 'last4' },
            ],
          },
          record_rows: true,
        },
      },
    },
    people: [
      {
        id: 'alice',
        name: 'Alice (engineer)',
        email: 'alice@example.com',
        manager: 'maria',
        groups: ['engineering'],
      },
      {
        id: 'maria',
        name: 'Maria (engineering manager)',
        email: 'maria@example.com',
        groups: ['engineering', 'managers'],
      },
      { id: 'bob', name: 'Bob (DBA)', email: 'bob@example.com', manager: 'maria', groups: ['dba'] },
    ],
    rules: [
      {
        name: 'demo-access',
        targets: ['demo-db'],
        duration: { default: input.ttl, max: '8h' },
        approvers: ['manager', { group: 'dba' }],
        approvals: 1,
        pending_timeout: '30m',
      },
    ],
  };
}

/**
 * Starts the demo database and writes the configuration.
 * @throws DemoError `ERR_DEMO_OPTION_INVALID` (bad `--demo-ttl` or `--demo-db`) before anything
 *   starts, or `ERR_DEMO_NO_DATABASE` / `ERR_DEMO_DATABASE_FAILED` saying what to install.
 */
export async function startDemoEnvironment(options: DemoOptions = {}): Promise<DemoEnvironment> {
  const ttl = (options.ttl ?? '30m').trim().toLowerCase();
  try {
    parseDuration(ttl);
  } catch (error) {
    throw new DemoError('ERR_DEMO_OPTION_INVALID', `--demo-ttl: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const kind = chooseDemoDatabase(options.database, hasLocalPostgres());
  const dir = mkdtempSync(join(tmpdir(), 'warden-demo-'));
  // The local server runs as `postgres` when we are root: it must be able to reach its folder.
  chmodSync(dir, 0o711);
  let database: DemoDatabase | undefined;
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    try {
      await database?.stop();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  try {
    const listen = options.listen ?? `127.0.0.1:${await pickPort('127.0.0.1', 8080)}`;
    const proxyListen = options.proxyListen ?? `127.0.0.1:${await pickPort('127.0.0.1', 6432)}`;
    database = await startDemoDatabase(dir, kind, await pickPort('127.0.0.1', 0));
    const files = {
      adminToken: writeSecret(dir, 'admin-token', randomBytes(24).toString('base64url')),
      dbPassword: writeSecret(dir, 'db-password', database.password),
      maskingKey: writeSecret(dir, 'masking-key', randomBytes(32).toString('base64url')),
    };
    const tls = createSelfSignedCertificate(dir);
    const config = buildDemoConfig({ dir, ttl, listen, proxyListen, database, files, tls });
    const configFile = join(dir, 'warden.yaml');
    writeFileSync(
      configFile,
      `# The demo's configuration, written by \`warden serve --demo\` and removed when it stops.\n${stringify(config)}`,
    );
    const running = database;
    const facts: Omit<DemoFacts, 'apiUrl'> = {
      ttl,
      proxy: proxyListen,
      database: running.database,
      databaseLabel: running.label,
      embedded: running.kind === 'embedded',
      tls: tls !== undefined,
      hasPsql: hasProgram('psql', options.path),
      configFile,
      dir,
    };
    return {
      dir,
      configFile,
      config,
      database: running,
      proxyListen,
      ttl,
      tls: tls !== undefined,
      instructions: (apiUrl) => formatDemoInstructions({ ...facts, apiUrl }),
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}
