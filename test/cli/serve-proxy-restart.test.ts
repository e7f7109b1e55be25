/**
 * Proxied grants survive a restart of `warden serve` (issue 4): a grant minted through the
 * recording proxy, the process killed with SIGKILL and started again, the same proxy password
 * logs in and queries work; the minted role got a fresh password at start-up; after expiry the
 * login is refused; the store never held a password, only the proxy password's SCRAM verifier.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import pg from 'pg';
import { stringify } from 'yaml';
import {
  buildTestConfig,
  createTargetDatabase,
  TARGET_ADMIN_ENV,
  waitFor,
} from '../helpers/broker-fixture.ts';
import { execSql, freePort, type PgCluster, startPgCluster } from '../helpers/pg-cluster.ts';
import { callApi, ServeProcess, serveBroker } from '../helpers/serve-process.ts';

const ADMIN_TOKEN = 'test-admin-token-0123456789';

describe('warden serve: proxied grants across a restart', () => {
  let cluster: PgCluster;
  let dir: string;
  let configFile: string;
  let url: string;
  let serve: ServeProcess;

  const api = (method: string, path: string, body?: unknown) => callApi(url, ADMIN_TOKEN, method, path, body);

  const query = async (login: pg.ClientConfig, sql: string) => {
    const client = new pg.Client({ ...login, ssl: false, connectionTimeoutMillis: 10_000 });
    await client.connect();
    try {
      return (await client.query(sql)).rows;
    } finally {
      await client.end();
    }
  };

  /** Every row of every Warden table, as the embedded store holds them. */
  const storedRows = () => {
    const db = new Database(join(dir, 'warden.db'), { readonly: true });
    try {
      const tables = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'warden_%'")
        .all() as { name: string }[];
      return Object.fromEntries(tables.map((t) => [t.name, db.prepare(`SELECT * FROM ${t.name}`).all()]));
    } finally {
      db.close();
    }
  };

  const rolePassword = async (role: string) => {
    const [result] = await execSql(
      cluster,
      'postgres',
      `SELECT rolpassword FROM pg_authid WHERE rolname = '${role}'`,
    );
    return result!.rows[0]?.rolpassword as string | undefined;
  };

  before(async () => {
    cluster = await startPgCluster();
    const database = await createTargetDatabase(cluster);
    await execSql(cluster, database, 'CREATE TABLE invoices (id int); INSERT INTO invoices VALUES (1), (2)');
    dir = mkdtempSync(join(tmpdir(), 'warden-proxy-restart-'));
    const port = await freePort();
    const proxyPort = await freePort();
    url = `http://127.0.0.1:${port}`;
    const config = buildTestConfig(cluster, database, {});
    config.broker = serveBroker(dir, port);
    const target = (config.targets as Record<string, Record<string, unknown>>)['app-db']!;
    target.proxy = { listen: `127.0.0.1:${proxyPort}`, allow_plaintext: true };
    configFile = join(dir, 'warden.yaml');
    writeFileSync(configFile, stringify(config));
    serve = new ServeProcess(configFile, url, () => ({
      ...process.env,
      [TARGET_ADMIN_ENV]: cluster.password,
      WARDEN_ADMIN_TOKEN: ADMIN_TOKEN,
      WARDEN_LOG_LEVEL: 'debug',
    }));
    await serve.start();
  });

  after(async () => {
    await serve?.kill();
    await cluster?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the same proxy password works after SIGKILL and restart, until the grant expires', async () => {
    const created = await api('POST', '/v1/requests', {
      requester: 'carol',
      target: 'app-db',
      duration: '25s',
      reason: 'restart test',
    });
    assert.equal(created.body.request.state, 'active', JSON.stringify(created.body));
    const credential = created.body.credential as {
      user: string;
      password: string;
      host: string;
      port: number;
      database: string;
    };
    const login = { ...credential };
    assert.deepEqual(await query(login, 'SELECT count(*)::int AS n FROM invoices'), [{ n: 2 }]);
    const before = await rolePassword(credential.user);
    assert.ok(before?.startsWith('SCRAM-SHA-256$'));

    await serve.kill();
    await serve.start();
    const after = await rolePassword(credential.user);
    assert.ok(after?.startsWith('SCRAM-SHA-256$'));
    assert.notEqual(after, before, 'the minted role got a fresh password at start-up');
    assert.deepEqual(await query(login, 'SELECT count(*)::int AS n FROM invoices'), [{ n: 2 }]);
    await assert.rejects(query({ ...login, password: `${login.password}x` }, 'SELECT 1'), {
      code: '28P01',
    });

    // What the store holds: the verifier of the proxy password, no password of any kind.
    const rows = storedRows();
    const verifiers = rows.warden_proxy_verifiers as Record<string, unknown>[];
    assert.equal(verifiers.length, 1);
    assert.deepEqual(Object.keys(verifiers[0]!).sort(), [
      'created_at',
      'grant_id',
      'target',
      'user_name',
      'verifier',
    ]);
    assert.equal(verifiers[0]!.user_name, credential.user);
    assert.match(
      String(verifiers[0]!.verifier),
      /^SCRAM-SHA-256\$4096:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$/,
    );
    const everything = JSON.stringify(rows);
    assert.equal(everything.includes(login.password), false, 'the proxy password is not stored');
    assert.equal(everything.includes(cluster.password), false);
    assert.equal(
      everything.includes(String(after).split('$')[2]!.split(':')[0]!),
      false,
      'nor the upstream verifier',
    );

    await waitFor(
      async () =>
        (await api('GET', `/v1/requests/${created.body.request.id}`)).body.request.state === 'expired',
      40_000,
      'the grant to expire',
    );
    await assert.rejects(query(login, 'SELECT 1'), { code: '28P01' });
    await waitFor(
      async () => (storedRows().warden_proxy_verifiers as unknown[]).length === 0,
      5_000,
      'the verifier to be deleted when the grant ended',
    );
    assert.equal(serve.output.includes(login.password), false, 'the proxy password never reached the log');
  });
});
