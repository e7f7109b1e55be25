/**
 * `warden serve` with a proxied target, end to end as real processes: the API hands out proxy
 * connection details (never the minted role's password), psql goes through the proxy, and
 * `warden sessions list` / `warden replay` show the recording.
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import {
  buildTestConfig,
  createTargetDatabase,
  TARGET_ADMIN_ENV,
  waitFor,
} from '../helpers/broker-fixture.ts';
import { execSql, freePort, type PgCluster, startPgCluster } from '../helpers/pg-cluster.ts';
import { ServeProcess, WARDEN } from '../helpers/serve-process.ts';

const ADMIN_TOKEN = 'test-admin-token-0123456789';

describe('warden serve with the postgres proxy, sessions and replay', () => {
  let cluster: PgCluster;
  let dir: string;
  let configFile: string;
  let url: string;
  let proxyPort: number;
  let serve: ServeProcess;
  const env = () => ({
    ...process.env,
    [TARGET_ADMIN_ENV]: cluster.password,
    WARDEN_ADMIN_TOKEN: ADMIN_TOKEN,
  });
  const cli = (...args: string[]) =>
    spawnSync(process.execPath, [WARDEN, ...args, '--config', configFile], { env: env(), encoding: 'utf8' });

  before(async () => {
    cluster = await startPgCluster();
    const database = await createTargetDatabase(cluster);
    await execSql(
      cluster,
      database,
      "CREATE TABLE people (id int, email text); INSERT INTO people VALUES (1, 'pat@example.com')",
    );
    dir = mkdtempSync(join(tmpdir(), 'warden-sessions-'));
    const port = await freePort();
    proxyPort = await freePort();
    url = `http://127.0.0.1:${port}`;
    const config = buildTestConfig(cluster, database, {});
    config.broker = {
      listen: `127.0.0.1:${port}`,
      store: { kind: 'embedded', path: join(dir, 'warden.db') },
      tokens: [{ name: 'admin', role: 'admin', secret: { env: 'WARDEN_ADMIN_TOKEN' } }],
    };
    const target = (config.targets as Record<string, Record<string, unknown>>)['app-db']!;
    target.proxy = { listen: `127.0.0.1:${proxyPort}`, allow_plaintext: true };
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

  it('hands out proxy details, records the session, lists and replays it', async () => {
    const res = await fetch(`${url}/v1/requests`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        actor: 'carol',
        target: 'app-db',
        level: 'read',
        duration: '10m',
        reason: 'replay test',
      }),
    });
    const body = (await res.json()) as {
      credential: { host: string; port: number; user: string; password: string; database: string };
    };
    const credential = body.credential;
    assert.equal(credential.port, proxyPort, 'the requester is sent to the proxy');
    const direct = await new Promise<string>((resolve) =>
      execFile(
        'psql',
        ['-X', '-At', '-c', 'select 1'],
        {
          env: {
            PATH: process.env.PATH!,
            PGHOST: '127.0.0.1',
            PGPORT: String(cluster.port),
            PGUSER: credential.user,
            PGPASSWORD: credential.password,
            PGDATABASE: credential.database,
            PGSSLMODE: 'disable',
          },
        },
        (_error, _stdout, stderr) => resolve(stderr),
      ),
    );
    assert.match(
      direct,
      /password authentication failed/,
      'the proxy password does not open the database directly',
    );
    const through = await new Promise<string>((resolve, reject) =>
      execFile(
        'psql',
        ['-X', '-At', '-c', 'select email from people', '-c', 'drop table people'],
        {
          env: {
            PATH: process.env.PATH!,
            PGHOST: credential.host,
            PGPORT: String(credential.port),
            PGUSER: credential.user,
            PGPASSWORD: credential.password,
            PGDATABASE: credential.database,
            PGSSLMODE: 'disable',
          },
        },
        (error, stdout, stderr) => (stdout ? resolve(stdout) : reject(error ?? new Error(stderr))),
      ),
    );
    assert.equal(through.trim(), '[REDACTED:email]');

    const listed = await waitFor(
      () => {
        const out = cli('sessions', 'list');
        return out.stdout.includes('ended') ? out.stdout : '';
      },
      10_000,
      'the session to be recorded',
    );
    assert.match(listed, /carol\s+app-db:read/);
    assert.match(listed, /2 statements\s+1 blocked\s+masked email=1/);
    const id = listed.split(/\s+/)[0]!;

    const replay = cli('replay', id);
    assert.equal(replay.status, 0, replay.stderr);
    assert.match(replay.stdout, /connect\s+user=warden_carol_/);
    assert.match(replay.stdout, /statement\s+\d+ms 1 rows\s+masked email=1\s+select email from people/);
    assert.match(replay.stdout, /BLOCKED\s+rule drop-table\s+drop table people/);

    const jsonl = cli('replay', id, '--format', 'jsonl');
    const lines = jsonl.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; kind?: string });
    assert.equal(lines[0]!.type, 'session');
    assert.deepEqual(
      lines.slice(1).map((l) => l.kind),
      ['connect', 'statement', 'blocked'],
    );
    assert.doesNotMatch(jsonl.stdout, /pat@example\.com/);

    const missing = cli('replay', 's_nope');
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /ERR_SESSION_NOT_FOUND/);
    assert.equal(cli('replay', id, '--format', 'xml').status, 2);
  });
});
