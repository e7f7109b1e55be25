/**
 * `warden serve` as a real process: the HTTP API with its authentication, a broker killed with
 * SIGKILL while grants are live and restarted after their expiry, and the audit commands.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
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
import { callApi, ServeProcess, WARDEN } from '../helpers/serve-process.ts';

const ADMIN_TOKEN = 'test-admin-token-0123456789';
const BOT_TOKEN = 'test-bot-token-0123456789';
const minted: string[] = [];

describe('warden serve', () => {
  let cluster: PgCluster;
  let dir: string;
  let configFile: string;
  let url: string;
  let serve: ServeProcess;
  const env = () => ({
    ...process.env,
    [TARGET_ADMIN_ENV]: cluster.password,
    WARDEN_ADMIN_TOKEN: ADMIN_TOKEN,
    WARDEN_BOT_TOKEN: BOT_TOKEN,
    WARDEN_LOG_LEVEL: 'debug',
  });

  const api = (
    method: string,
    path: string,
    body?: unknown,
    token: string | null = ADMIN_TOKEN,
    raw?: string,
  ) => callApi(url, token, method, path, body, raw);

  const cli = (...args: string[]) =>
    spawnSync(process.execPath, [WARDEN, ...args], {
      env: { ...env(), WARDEN_URL: url, WARDEN_TOKEN: ADMIN_TOKEN },
      encoding: 'utf8',
    });

  before(async () => {
    cluster = await startPgCluster();
    const database = await createTargetDatabase(cluster);
    await execSql(cluster, database, 'CREATE TABLE invoices (id int)');
    dir = mkdtempSync(join(tmpdir(), 'warden-serve-'));
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    const config = buildTestConfig(cluster, database, {});
    config.broker = {
      listen: `127.0.0.1:${port}`,
      store: { kind: 'embedded', path: join(dir, 'warden.db') },
      sweep_interval: '1s',
      tokens: [
        { name: 'admin', role: 'admin', secret: { env: 'WARDEN_ADMIN_TOKEN' } },
        { name: 'bot', role: 'service', secret: { env: 'WARDEN_BOT_TOKEN' } },
      ],
    };
    configFile = join(dir, 'warden.yaml');
    writeFileSync(configFile, stringify(config));
    serve = new ServeProcess(configFile, url, env);
    await serve.start();
  });

  after(async () => {
    await serve?.kill();
    await cluster?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses unauthenticated, forged and malformed calls and changes nothing', async () => {
    const before = (await api('GET', '/v1/requests?state=')).body.requests.length;
    const create = { actor: 'carol', target: 'app-db', duration: '5m', reason: 'x' };
    assert.equal((await api('POST', '/v1/requests', create, null)).status, 401);
    const forged = await api('POST', '/v1/requests', create, 'not-the-token');
    assert.equal(forged.status, 401);
    assert.deepEqual(forged.body.error, { code: 'ERR_AUTH_INVALID', message: 'invalid credentials' });
    assert.equal((await api('POST', '/v1/requests', create, `${ADMIN_TOKEN}x`)).status, 401);
    assert.equal(
      (await api('POST', '/v1/requests', undefined, ADMIN_TOKEN, '{"target":')).body.error.code,
      'ERR_API_BAD_REQUEST',
    );
    assert.equal((await api('POST', '/v1/requests', undefined, ADMIN_TOKEN, '[1,2]')).status, 400);
    const huge = await api(
      'POST',
      '/v1/requests',
      undefined,
      ADMIN_TOKEN,
      JSON.stringify({ reason: 'x'.repeat(100_000) }),
    );
    assert.equal(huge.status, 400);
    const noActor = await api('POST', '/v1/requests', { target: 'app-db', reason: 'x' }, BOT_TOKEN);
    assert.equal(noActor.body.error.code, 'ERR_API_BAD_REQUEST');
    assert.equal(
      (await api('GET', '/v1/audit', undefined, BOT_TOKEN)).status,
      403,
      'the audit log needs an admin token',
    );
    assert.equal((await api('GET', '/v1/requests?state=')).body.requests.length, before);
    assert.equal((await api('GET', '/v1/nothing')).status, 404);
  });

  it('serves the request flow for a service caller acting for people', async () => {
    const created = await api(
      'POST',
      '/v1/requests',
      { actor: 'alice', target: 'app-db', duration: '10m', reason: 'INC-1' },
      BOT_TOKEN,
    );
    assert.equal(created.status, 200);
    assert.equal(created.body.request.state, 'pending');
    assert.equal(created.body.credential, undefined);
    const id = created.body.request.id;
    const self = await api('POST', `/v1/requests/${id}/approve`, { actor: 'alice' }, BOT_TOKEN);
    assert.equal(self.status, 403);
    assert.equal(self.body.error.code, 'ERR_APPROVAL_SELF');
    const approved = await api('POST', `/v1/requests/${id}/approve`, { actor: 'maria' }, BOT_TOKEN);
    assert.equal(approved.body.request.state, 'active');
    assert.equal(approved.body.credential, undefined, 'the approver never sees the credential');
    const again = await api('POST', `/v1/requests/${id}/approve`, { actor: 'bob' }, BOT_TOKEN);
    assert.equal(again.status, 409);
    const revoked = await api(
      'POST',
      `/v1/requests/${id}/revoke`,
      { actor: 'alice', reason: 'done' },
      BOT_TOKEN,
    );
    assert.equal(revoked.body.request.state, 'revoked');
  });

  it('revokes on start-up the grants that expired while it was killed', async () => {
    const created = await api('POST', '/v1/requests', {
      requester: 'carol',
      target: 'app-db',
      duration: '3s',
      reason: 'page',
    });
    assert.equal(created.body.request.state, 'active');
    const credential = created.body.credential as {
      user: string;
      password: string;
      host: string;
      port: number;
      database: string;
    };
    assert.ok(credential.password);
    minted.push(credential.password);
    await serve.kill();
    await new Promise((r) => setTimeout(r, 4_000));
    const admin = new pg.Client({ connectionString: cluster.url });
    await admin.connect();
    try {
      const present = await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [credential.user]);
      assert.equal(present.rowCount, 1, 'nobody revoked the role while Warden was down');
      // VALID UNTIL refuses the login by itself, even with Warden down.
      const login = new pg.Client({ ...credential, password: credential.password });
      await assert.rejects(login.connect(), /password authentication failed/);
      await serve.start();
      await waitFor(
        async () =>
          (await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [credential.user])).rowCount === 0,
        15_000,
        'the role to be dropped at start-up',
      );
      // The role is dropped first, then the credential and the request are marked.
      const shown = await waitFor(
        async () => {
          const reply = await api('GET', `/v1/requests/${created.body.request.id}`);
          return reply.body.credentials[0].state === 'revoked' ? reply : undefined;
        },
        15_000,
        'the credential to be marked revoked',
      );
      assert.equal(shown!.body.request.state, 'expired');
    } finally {
      await admin.end();
    }
  });

  it('never touches at start-up a role it did not mint, even one named with its prefix', async () => {
    // Regression (issue 12): reconciliation used to take any role with the prefix for a leftover.
    await execSql(
      cluster,
      'postgres',
      'CREATE ROLE warden_leftover_r0000000000 LOGIN; CREATE ROLE app_owner LOGIN',
    );
    await serve.kill();
    await serve.start();
    const [roles] = await execSql(
      cluster,
      'postgres',
      "SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname IN ('warden_leftover_r0000000000', 'app_owner', 'warden') ORDER BY 1",
    );
    assert.deepEqual(roles!.rows, [
      { rolname: 'app_owner', rolcanlogin: true },
      { rolname: 'warden', rolcanlogin: true },
      { rolname: 'warden_leftover_r0000000000', rolcanlogin: true },
    ]);
  });

  it('lists grants and policy through the CLI with stable exit codes', () => {
    const grants = cli('grants', '--all');
    assert.equal(grants.status, 0, grants.stderr);
    assert.match(grants.stdout, /expired\s+carol → app-db:read/);
    const explain = cli(
      'policy',
      'explain',
      '--config',
      configFile,
      '--user',
      'alice',
      '--target',
      'app-db',
      '--level',
      'write',
    );
    assert.equal(explain.status, 0, explain.stderr);
    assert.match(explain.stdout, /one approval from each of: maria \(manager\), group dba/);
    const denied = cli('policy', 'explain', '--config', configFile, '--user', 'nobody', '--target', 'app-db');
    assert.equal(denied.status, 1);
    const usage = cli('frobnicate');
    assert.equal(usage.status, 2);
    const badConfig = cli(
      'policy',
      'explain',
      '--config',
      join(dir, 'missing.yaml'),
      '--user',
      'a',
      '--target',
      'b',
    );
    assert.equal(badConfig.status, 3);
  });

  it('verifies and exports the audit log, and reports tampering with exit code 4', () => {
    const ok = cli('audit', 'verify', '--config', configFile);
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /audit log intact: \d+ entries/);
    const exported = cli('audit', 'export', '--config', configFile, '--format', 'jsonl');
    const lines = exported.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.ok(lines.some((l) => l.action === 'grant.expired'));
    assert.ok(lines.some((l) => l.action === 'request.refused' || l.action === 'approval.refused'));
    const db = new Database(join(dir, 'warden.db'));
    db.prepare("UPDATE warden_audit SET actor = 'mallory' WHERE seq = 2").run();
    db.close();
    const tampered = cli('audit', 'verify', '--config', configFile);
    assert.equal(tampered.status, 4);
    assert.match(tampered.stderr, /entry 2 was changed/);
  });

  it('kept every secret out of its logs', () => {
    assert.ok(serve.output.length > 0);
    assert.ok(minted.length > 0);
    for (const secret of [ADMIN_TOKEN, BOT_TOKEN, cluster.password, ...minted]) {
      assert.equal(serve.output.includes(secret), false, 'a secret reached the log');
    }
  });
});
