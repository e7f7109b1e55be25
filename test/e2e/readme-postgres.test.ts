/**
 * The README's PostgreSQL setup, end to end, as a new user follows it (issue 12): its admin SQL
 * run as written against a fresh PostgreSQL 15 (database `app` owned by `app_owner`), its
 * example target, `warden serve --config` as a process with Slack (a local stand-in) for the
 * requester's DM; then request, approve, connect with real psql, revoke, role gone. Also: an
 * admin named under `role_prefix` is refused before anything is touched, and a revocation cut
 * by SIGKILL is finished after the restart.
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { parse, stringify } from 'yaml';
import { waitFor } from '../helpers/broker-fixture.ts';
import { execSql, freePort, type PgCluster, startPgCluster } from '../helpers/pg-cluster.ts';
import { callApi, ServeProcess, WARDEN } from '../helpers/serve-process.ts';
import { SlackStandin } from '../helpers/slack-standin.ts';
import { readReadmeAdminSetup } from '../helpers/target-admin.ts';

const ADMIN_TOKEN = 'readme-admin-token-0123456789';
const ADMIN_PASSWORD = 'readme-admin-password-7f3a';
const BOT_TOKEN = 'xoxb-readme';

function psql(
  cluster: PgCluster,
  user: string,
  password: string,
  sql: string,
): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(
      'psql',
      ['-X', '-At', '-v', 'ON_ERROR_STOP=1', '-c', sql],
      {
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          PGHOST: cluster.host,
          PGPORT: String(cluster.port),
          PGDATABASE: 'app',
          PGUSER: user,
          PGPASSWORD: password,
          PGSSLMODE: 'disable',
          PGCONNECT_TIMEOUT: '10',
        },
      },
      (error, stdout, stderr) =>
        resolve({ code: error ? Number(error.code ?? 1) : 0, out: `${stdout}${stderr}`.trim() }),
    );
  });
}

describe("the README's PostgreSQL setup, end to end", () => {
  let cluster: PgCluster;
  let slack: SlackStandin;
  let dir: string;
  let url: string;
  let serve: ServeProcess;
  // biome-ignore lint/suspicious/noExplicitAny: the configuration is edited loosely in this test
  let config: Record<string, any>;
  const env = () => ({
    ...process.env,
    APP_DB_ADMIN_PASSWORD: ADMIN_PASSWORD,
    WARDEN_ADMIN_TOKEN: ADMIN_TOKEN,
    SLACK_SIGNING_SECRET: 'readme-signing-secret',
    SLACK_BOT_TOKEN: BOT_TOKEN,
  });
  const api = (method: string, path: string, body?: unknown) => callApi(url, ADMIN_TOKEN, method, path, body);
  const roleOf = async (name: string) =>
    (
      await execSql(
        cluster,
        'postgres',
        `SELECT rolcanlogin FROM pg_roles WHERE rolname = ${pg.escapeLiteral(name)}`,
      )
    )[0]!.rows[0];

  before(async () => {
    cluster = await startPgCluster();
    slack = await SlackStandin.start({ token: BOT_TOKEN });
    dir = mkdtempSync(join(tmpdir(), 'warden-readme-'));
    // The deployment the README assumes: an application database owned by app_owner.
    await execSql(cluster, 'postgres', "CREATE ROLE app_owner LOGIN PASSWORD 'owner-pw'");
    await execSql(cluster, 'postgres', 'CREATE DATABASE app OWNER app_owner');
    const owner = new pg.Client({
      host: cluster.host,
      port: cluster.port,
      database: 'app',
      user: 'app_owner',
      password: 'owner-pw',
    });
    await owner.connect();
    await owner.query(
      "CREATE TABLE invoices (id serial PRIMARY KEY, customer text); INSERT INTO invoices (customer) VALUES ('acme')",
    );
    // The README's SQL, as written (only the password differs).
    const setup = readReadmeAdminSetup();
    await execSql(
      cluster,
      'postgres',
      setup.createRole.replace("'change-me'", pg.escapeLiteral(ADMIN_PASSWORD)),
    );
    await execSql(cluster, 'app', setup.perDatabase);
    // A table created after the setup is covered by its default privileges.
    await owner.query(
      'CREATE TABLE refunds (id serial PRIMARY KEY, amount int); INSERT INTO refunds (amount) VALUES (5)',
    );
    await owner.end();

    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    const targets = parse(setup.targetYaml).targets;
    targets['app-db'].admin.host = cluster.host;
    targets['app-db'].admin.port = cluster.port;
    config = {
      broker: {
        listen: `127.0.0.1:${port}`,
        store: { kind: 'embedded', path: join(dir, 'warden.db') },
        sweep_interval: '1s',
        revocation_lease: '2s',
        tokens: [{ name: 'admin', role: 'admin', secret: { env: 'WARDEN_ADMIN_TOKEN' } }],
      },
      targets,
      people: [
        { id: 'alice', email: 'alice@example.com', slack: 'UALICE', manager: 'maria' },
        { id: 'maria', email: 'maria@example.com', slack: 'UMARIA' },
      ],
      rules: [
        {
          name: 'app-read',
          targets: ['app-db'],
          levels: ['read'],
          duration: { default: '30m', max: '2h' },
          reason: { required: false },
          approvers: ['manager'],
        },
      ],
      chat: {
        default_channel: '#db-access',
        slack: {
          mode: 'http',
          listen: `127.0.0.1:${await freePort()}`,
          signing_secret: { env: 'SLACK_SIGNING_SECRET' },
          bot_token: { env: 'SLACK_BOT_TOKEN' },
          api_url: slack.apiUrl,
        },
      },
    };
    const file = join(dir, 'warden.yaml');
    writeFileSync(file, stringify(config));
    serve = new ServeProcess(file, url, env);
    await serve.start();
  });
  after(async () => {
    await serve?.kill();
    await slack?.close();
    await cluster?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Requests as alice, approves as maria, and reads the connection details from alice's DM. */
  async function grantAlice(reason: string): Promise<{ id: string; user: string; password: string }> {
    const created = await api('POST', '/v1/requests', {
      actor: 'alice',
      target: 'app-db',
      level: 'read',
      reason,
    });
    assert.equal(created.body.request.state, 'pending');
    const id = created.body.request.id as string;
    const approved = await api('POST', `/v1/requests/${id}/approve`, { actor: 'maria' });
    assert.equal(approved.body.request.state, 'active', JSON.stringify(approved.body));
    const dm: string = await waitFor(
      () => slack.dmsTo('UALICE').find((t) => t.includes(id) && t.includes('password: ')) ?? '',
      15_000,
      "alice's DM",
    );
    const user = /user: (\S+)/.exec(dm)![1]!;
    const password = /password: (\S+)/.exec(dm)![1]!;
    return { id, user, password };
  }

  it('request → approve → psql → revoke → role gone, with the admin untouched', async () => {
    const grant = await grantAlice('reading the README');
    const read = await psql(
      cluster,
      grant.user,
      grant.password,
      'SELECT customer FROM invoices; SELECT amount FROM refunds',
    );
    assert.equal(read.code, 0, read.out);
    assert.deepEqual(read.out.split('\n'), ['acme', '5']);
    const write = await psql(
      cluster,
      grant.user,
      grant.password,
      "INSERT INTO invoices (customer) VALUES ('x')",
    );
    assert.notEqual(write.code, 0);
    assert.match(write.out, /permission denied/);

    const revoked = await api('POST', `/v1/requests/${grant.id}/revoke`, { actor: 'maria', reason: 'done' });
    assert.equal(revoked.body.request.state, 'revoked', JSON.stringify(revoked.body.request));
    assert.equal(await roleOf(grant.user), undefined);
    const after = await psql(cluster, grant.user, grant.password, 'SELECT 1');
    assert.notEqual(after.code, 0);
    assert.deepEqual(await roleOf('warden'), { rolcanlogin: true }, 'the admin role is untouched');
    // biome-ignore lint/suspicious/noExplicitAny: the configuration is edited loosely in this test
    const health = await fetch(`${url}/v1/health`).then((r) => r.json() as Promise<Record<string, any>>);
    assert.equal(health.targets['app-db'].ok, true);
  });

  it('a revocation cut by SIGKILL is finished after the restart', async () => {
    const grant = await grantAlice('killed mid-revocation');
    // Hold the lock revocation takes for its owned-object step, so the process dies inside it.
    const holder = new pg.Client({ connectionString: cluster.urlFor('app') });
    await holder.connect();
    await holder.query('SELECT pg_advisory_lock(7467100)');
    const pending = api('POST', `/v1/requests/${grant.id}/revoke`, { actor: 'maria' }).catch(() => undefined);
    await waitFor(
      async () =>
        (
          await execSql(
            cluster,
            'postgres',
            "SELECT 1 FROM pg_stat_activity WHERE usename = 'warden' AND wait_event = 'advisory'",
          )
        )[0]!.rows.length > 0,
      15_000,
      'the revocation to wait on the lock',
    );
    assert.deepEqual(await roleOf(grant.user), { rolcanlogin: false }, 'logins were stopped before the kill');
    await serve.kill();
    await pending;
    await holder.end();
    await serve.start();
    await waitFor(
      async () => (await api('GET', `/v1/requests/${grant.id}`)).body.request.state === 'revoked',
      30_000,
      'the revocation to finish after the restart',
    );
    assert.equal(await roleOf(grant.user), undefined);
  });

  it('docs/postgres.md gives the same admin SQL as the README', () => {
    const docs = readFileSync(join(import.meta.dirname, '../../docs/postgres.md'), 'utf8');
    const setup = readReadmeAdminSetup();
    assert.ok(docs.includes(setup.createRole) && docs.includes(setup.perDatabase));
  });

  it('grants --failing lists grants whose revocation keeps failing', async () => {
    const out = spawnSync(process.execPath, [WARDEN, 'grants', '--failing'], {
      env: { ...env(), WARDEN_URL: url, WARDEN_TOKEN: ADMIN_TOKEN },
      encoding: 'utf8',
    });
    assert.equal(out.status, 0, out.stderr);
    assert.equal(out.stdout.trim(), 'no requests');
  });

  it('refuses at start-up an admin named under role_prefix, and touches nothing', async () => {
    await execSql(cluster, 'postgres', "CREATE ROLE warden_admin LOGIN CREATEROLE PASSWORD 'x'");
    const bad = structuredClone(config);
    bad.targets['app-db'].admin.user = 'warden_admin';
    bad.broker.listen = `127.0.0.1:${await freePort()}`;
    bad.broker.store.path = join(dir, 'other.db');
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, stringify(bad));
    const run = spawnSync(process.execPath, [WARDEN, 'serve', '--config', file], {
      env: env(),
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.notEqual(run.status, 0);
    assert.match(
      `${run.stdout}${run.stderr}`,
      /targets\.app-db\.admin\.user: the admin user "warden_admin" falls under role_prefix "warden_"/,
    );
    assert.deepEqual(await roleOf('warden_admin'), { rolcanlogin: true });
  });
});
