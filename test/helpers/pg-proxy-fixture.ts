/**
 * A broker with a proxied Postgres target, its recording proxy listening on 127.0.0.1, and a
 * way to obtain grants: what the proxy tests and the benchmark start.
 */

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConfigInput } from '../../broker/config/schema.ts';
import type { StatementReviewer } from '../../broker/ports/proxy.ts';
import { PostgresCredential } from '../../broker/providers/postgres/credential.ts';
import { createSelfSignedCertificate } from '../../cli/demo/tls.ts';
import { compilePgProxyTarget, type PgProxyTargetConfig } from '../../proxy/pg/config.ts';
import { PgProxyServer, type PgProxyServerOptions } from '../../proxy/pg/server.ts';
import {
  type BrokerFixture,
  buildTestConfig,
  createTargetDatabase,
  startBrokerFixture,
} from './broker-fixture.ts';
import { execSql, freePort, type PgCluster } from './pg-cluster.ts';

/** Connection details a requester gets for the proxy. */
export interface ProxyLogin {
  grantId: string;
  host: string;
  port: number;
  database: string;
  user: string;
  password: string;
}

export interface ProxyFixture {
  broker: BrokerFixture;
  proxy: PgProxyServer;
  port: number;
  /** The target database name. */
  database: string;
  /** Asks for and gets a grant (carol is auto-approved) and returns the proxy login. */
  grant(level?: string, duration?: string): Promise<ProxyLogin>;
  /** libpq environment for command-line clients. */
  libpqEnv(login: ProxyLogin, extra?: Record<string, string>): Record<string, string>;
  close(): Promise<void>;
}

/** Writes a self-signed certificate for 127.0.0.1/localhost; returns its files. */
export function createTestCertificate(): { cert: string; key: string; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'warden-tls-'));
  const files = createSelfSignedCertificate(dir);
  if (!files) throw new Error('openssl is needed to make a test certificate');
  return { ...files, dir };
}

const SETUP_SQL = `
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'app_owner') THEN CREATE ROLE app_owner NOLOGIN; END IF;
END $$;
GRANT USAGE, CREATE ON SCHEMA public TO app_owner;
CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, email text UNIQUE, card_number text, note text);
INSERT INTO customers (name, email, card_number, note) VALUES
  ('Ada', 'ada@example.com', '4111111111111111', 'vip'),
  ('Bob', 'bob@example.org', '5500005555555559', 'call back on 2024-01-02');
ALTER TABLE customers OWNER TO app_owner;
CREATE TABLE invoices (id serial PRIMARY KEY, customer text NOT NULL, amount int NOT NULL);
INSERT INTO invoices (customer, amount) VALUES ('acme', 100), ('globex', 250);
ALTER TABLE invoices OWNER TO app_owner;
`;

/**
 * Starts a broker (embedded store) and a proxy in front of a fresh database on `cluster`.
 * `target` adds settings to the target itself (its `tls` block, for instance). The proxy gets the
 * broker's ports without a reviewer (statements a rule sends to review are refused) unless
 * `serverOptions.reviewer` names one.
 */
export async function startProxyFixture(
  cluster: PgCluster,
  proxy: Partial<PgProxyTargetConfig> = {},
  serverOptions: Partial<PgProxyServerOptions> & { reviewer?: StatementReviewer } = {},
  target: Record<string, unknown> = {},
  /** More of the configuration (a `ci:` section, ...). */
  extra: Partial<ConfigInput> = {},
): Promise<ProxyFixture> {
  const port = await freePort();
  const settings: PgProxyTargetConfig = {
    listen: `127.0.0.1:${port}`,
    allow_plaintext: true,
    guardrails: {},
    masking: {},
    record_rows: false,
    ...proxy,
  };
  const targetDb = await createTargetDatabase(cluster, 'proxied');
  const base = buildTestConfig(cluster, targetDb);
  const baseTarget = (base.targets as Record<string, Record<string, unknown>>)['app-db']!;
  const overrides: Partial<ConfigInput> = {
    targets: {
      'app-db': {
        ...(baseTarget as object),
        ...target,
        levels: {
          read: { grants: ['select'] },
          write: { grants: ['select', 'insert', 'update', 'delete'] },
          owner: { inherit: ['app_owner'] },
        },
        connection_limit: 1000,
        proxy: settings,
      },
    } as unknown as ConfigInput['targets'],
    rules: [
      {
        name: 'proxy-tests',
        targets: ['app-db'],
        duration: { default: '30m', max: '2h' },
        approvers: ['manager'],
        auto_approve: { groups: ['oncall'] },
        // Extensions are approved by default; this rule opts out (tests of the unapproved path).
        extend: { allowed: true, needs_approval: false },
      },
    ],
    ...extra,
  };
  const broker = await startBrokerFixture('embedded', cluster, overrides);
  const appDb = broker.config.targets['app-db']!;
  if (appDb.kind !== 'postgres') throw new Error('app-db is a postgres target');
  const database = appDb.admin.database;
  await execSql(cluster, database, SETUP_SQL);
  const compiled = compilePgProxyTarget('app-db', appDb.proxy!, {
    env: broker.env,
  });
  const { reviewer, ...options } = serverOptions;
  const server = new PgProxyServer({
    target: compiled,
    ports: { ...broker.app.proxyPorts, reviews: reviewer },
    ...options,
  });
  await server.listen(port, '127.0.0.1');
  return {
    broker,
    proxy: server,
    port,
    database,
    async grant(level = 'read', duration = '30m') {
      const request = await broker.app.broker.request({
        requester: 'carol',
        target: 'app-db',
        level,
        duration,
        reason: 'proxy test',
        source: 'cli',
      });
      const event = broker.events.find(
        (e) => e.type === 'grant.active' && e.request.id === request.id && e.credential,
      );
      if (event?.type !== 'grant.active' || !event.credential) {
        throw new Error(`grant ${request.id} did not activate (${request.state}: ${request.error ?? ''})`);
      }
      const c = event.credential;
      if (!(c instanceof PostgresCredential)) throw new Error('app-db mints postgres credentials');
      return {
        grantId: request.id,
        host: c.host,
        port: c.port,
        database: c.database,
        user: c.user,
        password: c.password.reveal(),
      };
    },
    libpqEnv(login, extra = {}) {
      return {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: tmpdir(),
        PGHOST: login.host,
        PGPORT: String(login.port),
        PGDATABASE: login.database,
        PGUSER: login.user,
        PGPASSWORD: login.password,
        PGSSLMODE: 'disable',
        PGCONNECT_TIMEOUT: '10',
        ...extra,
      };
    },
    async close() {
      await server.close();
      await broker.close();
    },
  };
}

/**
 * A proxy fixture whose target masks columns in the database (issue 15), `rules` as match →
 * style, keyed by `key` in a 0600 file; closing it removes the file.
 */
export async function startMaskedProxyFixture(
  cluster: PgCluster,
  rules: Record<string, string>,
  key = 'a-masking-key-of-32-bytes-length',
): Promise<ProxyFixture> {
  const dir = mkdtempSync(join(tmpdir(), 'warden-mask-key-'));
  writeFileSync(join(dir, 'key'), key, { mode: 0o600 });
  const columns = Object.entries(rules).map(([match, style]) => ({ match, style }));
  try {
    const fx = await startProxyFixture(cluster, { masking: { key: `file:${join(dir, 'key')}`, columns } });
    return {
      ...fx,
      async close() {
        await fx.close();
        removeDir(dir);
      },
    };
  } catch (error) {
    removeDir(dir);
    throw error;
  }
}

/** Options of the `postgres` (postgres.js) client for a proxy login. */
export function postgresOptions(login: ProxyLogin) {
  return {
    host: login.host,
    port: login.port,
    database: login.database,
    username: login.user,
    password: login.password,
  };
}

/** Removes a directory made by {@link createTestCertificate}. */
export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
