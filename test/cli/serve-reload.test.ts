/**
 * `SIGHUP` reloads people, rules and targets (issue 14, "Logs and reload"): before, the signal
 * killed `warden serve` (Node's default for SIGHUP), taking every live session with it. Run as a
 * real process with a real psql session through the recording proxy.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import type { ConfigInput } from '../../broker/config/schema.ts';
import {
  buildTestConfig,
  createTargetDatabase,
  TARGET_ADMIN_ENV,
  waitFor,
} from '../helpers/broker-fixture.ts';
import { execSql, freePort, type PgCluster, startPgCluster } from '../helpers/pg-cluster.ts';
import { callApi, ServeProcess, serveBroker } from '../helpers/serve-process.ts';

const ADMIN_TOKEN = 'test-admin-token-reload-0123456789';
const PSQL = process.env.WARDEN_PSQL ?? '/usr/bin/psql';

describe('warden serve: SIGHUP reloads people, rules and targets', () => {
  let cluster: PgCluster;
  let dir: string;
  let configFile: string;
  let url: string;
  let serve: ServeProcess;
  let config: ConfigInput;

  const api = (method: string, path: string, body?: unknown) => callApi(url, ADMIN_TOKEN, method, path, body);
  const ask = (requester: string, target: string) =>
    api('POST', '/v1/requests', { requester, target, level: 'read', duration: '10m', reason: 'reload test' });
  /** Lines of serve's log whose message is `msg`. */
  const logged = (msg: string) =>
    serve.output
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.msg === msg);
  /** Writes `next` as the config file, sends SIGHUP and waits for the reload's outcome line. */
  const reloadWith = async (next: unknown) => {
    const before =
      logged('configuration reloaded').length +
      logged('configuration reload refused; the running configuration stays').length;
    writeFileSync(configFile, typeof next === 'string' ? next : stringify(next));
    serve.child!.kill('SIGHUP');
    await waitFor(
      () =>
        logged('configuration reloaded').length +
          logged('configuration reload refused; the running configuration stays').length >
        before,
      10_000,
      'the reload to be logged',
    );
  };

  before(async () => {
    cluster = await startPgCluster();
    const database = await createTargetDatabase(cluster);
    await execSql(cluster, database, 'CREATE TABLE invoices (id int); INSERT INTO invoices VALUES (1), (2)');
    dir = mkdtempSync(join(tmpdir(), 'warden-reload-'));
    const port = await freePort();
    const proxyPort = await freePort();
    url = `http://127.0.0.1:${port}`;
    config = buildTestConfig(cluster, database, {});
    config.broker = serveBroker(dir, port);
    const targets = config.targets as Record<string, Record<string, unknown>>;
    targets['app-db']!.proxy = { listen: `127.0.0.1:${proxyPort}`, allow_plaintext: true };
    // A second, direct target on the same database: the one the reload removes.
    targets['old-db'] = { ...targets['app-db']!, proxy: undefined };
    delete targets['old-db'].proxy;
    config.rules = [
      ...config.rules!,
      {
        name: 'old-read',
        targets: ['old-db'],
        levels: ['read'],
        duration: { default: '10m', max: '1h' },
        approvers: ['manager'],
        auto_approve: { groups: ['oncall'] },
      },
    ];
    configFile = join(dir, 'warden.yaml');
    writeFileSync(configFile, stringify(config));
    serve = new ServeProcess(configFile, url, () => ({
      ...process.env,
      [TARGET_ADMIN_ENV]: cluster.password,
      WARDEN_ADMIN_TOKEN: ADMIN_TOKEN,
      WARDEN_LOG_LEVEL: 'info',
    }));
    await serve.start();
  });

  after(async () => {
    await serve?.kill();
    await cluster?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('SIGHUP killed warden serve: now a psql session survives it, a new rule applies to the next request, a removed target refuses new ones', async () => {
    // A live grant through the proxy, and a psql session on it that stays open across the reload.
    const grant = await ask('carol', 'app-db');
    assert.equal(grant.body.request.state, 'active', JSON.stringify(grant.body));
    const login = grant.body.credential as {
      host: string;
      port: number;
      database: string;
      user: string;
      password: string;
    };
    const psql = spawn(
      PSQL,
      [
        '-h',
        login.host,
        '-p',
        String(login.port),
        '-U',
        login.user,
        '-d',
        login.database,
        '-w',
        '-tA',
        '-v',
        'ON_ERROR_STOP=1',
      ],
      {
        env: {
          PATH: process.env.PATH ?? '',
          PGPASSWORD: login.password,
          PGSSLMODE: 'disable',
          PGCONNECT_TIMEOUT: '10',
        },
        stdio: ['pipe', 'pipe', 'pipe'],
      },
    );
    let psqlOut = '';
    psql.stdout.on('data', (d) => {
      psqlOut += d;
    });
    psql.stderr.on('data', (d) => {
      psqlOut += d;
    });
    const psqlExit = new Promise<number | null>((resolve) => psql.once('exit', (code) => resolve(code)));
    psql.stdin.write("SELECT 'before:' || pg_backend_pid();\n");
    await waitFor(() => logged('session started').length > 0, 10_000, 'the proxied session to start');
    // A grant on the target the reload removes, live before it.
    const oldGrant = await ask('carol', 'old-db');
    assert.equal(oldGrant.body.request.state, 'active');
    // sam (sre) needs an approval under the running rules.
    assert.equal((await ask('sam', 'app-db')).body.request.state, 'pending');
    // erin is not in the directory yet.
    const stranger = await ask('erin', 'app-db');
    assert.ok(stranger.status >= 400, JSON.stringify(stranger.body));

    const next = structuredClone(config);
    next.people = [
      ...next.people!,
      { id: 'erin', email: 'erin@example.com', manager: 'maria', groups: ['sre'] },
    ];
    delete (next.targets as Record<string, unknown>)['old-db'];
    next.rules = [
      {
        name: 'sre-read',
        targets: ['app-db'],
        levels: ['read'],
        duration: { default: '10m', max: '1h' },
        approvers: ['manager'],
        auto_approve: { groups: ['sre'] },
      },
      ...next.rules!.filter((r) => r.name !== 'old-read'),
    ];
    await reloadWith(next);
    const reloaded = logged('configuration reloaded').at(-1)!;
    assert.deepEqual(reloaded.targets_removed, ['old-db']);
    assert.deepEqual(reloaded.rules_added, ['sre-read']);
    assert.deepEqual(reloaded.rules_removed, ['old-read']);

    // The session is the same one, and still answers.
    psql.stdin.write("SELECT 'after:' || pg_backend_pid();\n");
    psql.stdin.end();
    assert.equal(await psqlExit, 0, psqlOut);
    const before = /before:(\d+)/.exec(psqlOut)?.[1];
    const afterPid = /after:(\d+)/.exec(psqlOut)?.[1];
    assert.ok(before && afterPid, psqlOut);
    assert.equal(afterPid, before, 'one backend: the session was not cut');
    assert.equal(serve.child!.exitCode, null, 'warden serve is still running');

    // The new rule applies to the next request.
    const sam = await ask('sam', 'app-db');
    assert.equal(sam.body.request.state, 'active', JSON.stringify(sam.body));
    assert.equal(sam.body.request.rule, 'sre-read');
    // A new person is known at once (and auto-approved as an SRE under the new rule).
    assert.equal((await ask('erin', 'app-db')).body.request.state, 'active');
    // The removed target refuses new requests; its live grant runs on.
    const refused = await ask('carol', 'old-db');
    assert.equal(refused.body.error?.code, 'ERR_TARGET_UNKNOWN', JSON.stringify(refused.body));
    assert.equal((await api('GET', `/v1/requests/${oldGrant.body.request.id}`)).body.request.state, 'active');
    // The removed target's grant is still revoked the usual way (its provider stays).
    const revoked = await api('POST', `/v1/requests/${oldGrant.body.request.id}/revoke`, {
      actor: 'root',
      reason: 'done',
    });
    assert.ok(revoked.status < 300, JSON.stringify(revoked.body));
    await waitFor(
      async () =>
        (await api('GET', `/v1/requests/${oldGrant.body.request.id}`)).body.request.state === 'revoked',
      10_000,
      'the removed target grant to be revoked',
    );
  });

  it('a configuration that fails validation is logged and the running one stays', async () => {
    const broken = structuredClone(config);
    broken.rules = [{ ...broken.rules![0]!, targets: ['no-such-db'] }];
    await reloadWith(broken);
    const refusal = logged('configuration reload refused; the running configuration stays').at(-1)!;
    assert.equal(refusal.level, 'error');
    assert.match(String(refusal.error), /no-such-db/);
    // The configuration of the last good reload still runs: sre-read applies, old-db is gone.
    assert.equal((await ask('sam', 'app-db')).body.request.rule, 'sre-read');
    assert.equal((await ask('carol', 'old-db')).body.error?.code, 'ERR_TARGET_UNKNOWN');

    await reloadWith('targets: [not, a, map');
    assert.ok(logged('configuration reload refused; the running configuration stays').length >= 2);
    assert.equal((await ask('sam', 'app-db')).body.request.rule, 'sre-read');
  });

  it('a target whose settings changed is refused as a whole: that takes a restart', async () => {
    const changed = structuredClone(config);
    delete (changed.targets as Record<string, unknown>)['old-db'];
    changed.rules = changed.rules!.filter((r) => r.name !== 'old-read');
    (changed.targets as Record<string, Record<string, unknown>>)['app-db']!.connection_limit = 7;
    await reloadWith(changed);
    const refusal = logged('configuration reload refused; the running configuration stays').at(-1)!;
    assert.match(
      String(refusal.error),
      /targets\.app-db changed: a target's settings apply when warden restarts/,
    );
    // Nothing of that file applied: sre-read (from the last good reload) still decides.
    assert.equal((await ask('sam', 'app-db')).body.request.rule, 'sre-read');
    assert.equal(serve.output.includes(cluster.password), false, 'no secret in the log');
    assert.equal(serve.output.includes(ADMIN_TOKEN), false, 'no token in the log');
  });
});
