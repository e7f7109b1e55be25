/**
 * The demo environment behind `npm start`: a throwaway PostgreSQL with a `customers` table, and a
 * configuration for it (one target, a small team, a rule that needs the manager's approval).
 * Everything lives in one temporary directory removed at exit.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { ConfigInput } from '../../broker/config/schema.ts';
import { createDatabase, type PgCluster, startPgCluster } from './local-postgres.ts';

export const DEMO_CUSTOMERS = [
  ['Ada Lovelace', 'ada@example.com', '4242 4242 4242 4242'],
  ['Grace Hopper', 'grace@example.com', '5555 5555 5555 4444'],
  ['Alan Turing', 'alan@example.org', '3782 822463 10005'],
  ['Katherine Johnson', 'katherine@example.net', '6011 1111 1111 1117'],
] as const;

export interface DemoEnvironment {
  dir: string;
  cluster: PgCluster;
  database: string;
  config: ConfigInput;
  env: Record<string, string>;
  adminTokenFile: string;
  close(): Promise<void>;
}

export async function startDemoEnvironment(
  options: { ttl?: string; listen?: string } = {},
): Promise<DemoEnvironment> {
  const dir = mkdtempSync(join(tmpdir(), 'warden-demo-'));
  const cluster = await startPgCluster();
  const database = await createDatabase(cluster, 'demo');
  const adminPassword = randomBytes(18).toString('base64url');
  const client = new pg.Client({ connectionString: cluster.urlFor(database) });
  await client.connect();
  try {
    await client.query(
      `CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, email text NOT NULL UNIQUE, card_number text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())`,
    );
    for (const [name, email, card] of DEMO_CUSTOMERS) {
      await client.query('INSERT INTO customers (name, email, card_number) VALUES ($1, $2, $3)', [
        name,
        email,
        card,
      ]);
    }
    // The demo cluster's template password is public; replace it before anything listens for grants.
    await client.query(`ALTER ROLE postgres PASSWORD ${pg.escapeLiteral(adminPassword)}`);
  } finally {
    await client.end();
  }
  const adminToken = randomBytes(24).toString('base64url');
  const adminTokenFile = join(dir, 'admin-token');
  writeFileSync(adminTokenFile, adminToken, { mode: 0o600 });
  const ttl = options.ttl ?? '30m';
  const config: ConfigInput = {
    broker: {
      listen: options.listen ?? '127.0.0.1:8080',
      store: { kind: 'embedded', path: join(dir, 'warden.db') },
      tokens: [{ name: 'demo-admin', role: 'admin', secret: { file: adminTokenFile } }],
      sweep_interval: '1s',
      expiring_soon: '1m',
    },
    targets: {
      'demo-db': {
        kind: 'postgres',
        description: 'demo database with a customers table',
        admin: {
          host: cluster.host,
          port: cluster.port,
          database,
          user: 'postgres',
          password: { env: 'WARDEN_DEMO_DB_PASSWORD' },
        },
        levels: { read: { grants: ['select'] }, write: { grants: ['select', 'insert', 'update', 'delete'] } },
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
        duration: { default: ttl, max: '8h' },
        approvers: ['manager', { group: 'dba' }],
        approvals: 1,
        pending_timeout: '30m',
      },
    ],
  };
  return {
    dir,
    cluster,
    database,
    config,
    env: { WARDEN_DEMO_DB_PASSWORD: adminPassword },
    adminTokenFile,
    async close() {
      await cluster.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
