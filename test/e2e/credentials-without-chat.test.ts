/**
 * Issue 14, "Credentials without chat", the way a user meets it: `warden serve --config` with no
 * chat, real PostgreSQL (the README's CREATEROLE admin) and real psql. `warden request … --wait`
 * waits for the decision and prints the credential once; `warden credential <id>` collects it
 * again for the requester only (a fresh password; the previous one stops logging in), and a
 * refused collection changes nothing.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
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
import { parseLoginFromDm, runPsql } from '../helpers/psql.ts';
import { callApi, ServeProcess, WARDEN } from '../helpers/serve-process.ts';

const BOT_TOKEN = 'test-bot-token-0123456789';
const ADMIN_TOKEN = 'test-admin-token-0123456789';

describe('credentials without chat', () => {
  let cluster: PgCluster;
  let dir: string;
  let url: string;
  let serve: ServeProcess;
  const env = () => ({
    ...process.env,
    [TARGET_ADMIN_ENV]: cluster.password,
    WARDEN_ADMIN_TOKEN: ADMIN_TOKEN,
    WARDEN_BOT_TOKEN: BOT_TOKEN,
  });
  const cliEnv = () => ({ ...env(), WARDEN_URL: url, WARDEN_TOKEN: BOT_TOKEN });
  const cli = (...args: string[]) =>
    spawnSync(process.execPath, [WARDEN, ...args], { env: cliEnv(), encoding: 'utf8' });

  before(async () => {
    cluster = await startPgCluster();
    const database = await createTargetDatabase(cluster);
    await execSql(cluster, database, 'CREATE TABLE invoices (id int); INSERT INTO invoices VALUES (1)');
    dir = mkdtempSync(join(tmpdir(), 'warden-nochat-'));
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
    const configFile = join(dir, 'warden.yaml');
    writeFileSync(configFile, stringify(config));
    serve = new ServeProcess(configFile, url, env);
    await serve.start();
  });
  after(async () => {
    await serve?.kill();
    await cluster?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("request --wait prints the credential once approved; credential <id> is the requester's alone", async () => {
    const child = spawn(
      process.execPath,
      [WARDEN, 'request', 'app-db:read', '30m', 'INC-42 invoice check', '--wait', '--as', 'alice'],
      { env: cliEnv() },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    const id: string = await waitFor(
      () => /^(r[a-z0-9]+)\s+pending/m.exec(stdout)?.[1] ?? '',
      15_000,
      'the pending request',
    );
    assert.doesNotMatch(stdout, /password:/, 'nothing secret before the decision');
    const approved = await callApi(url, BOT_TOKEN, 'POST', `/v1/requests/${id}/approve`, { actor: 'maria' });
    assert.equal(approved.status, 200, JSON.stringify(approved.body));
    assert.equal(approved.body.credential, undefined, 'the approver never sees the credential');
    assert.equal(await exited, 0, stderr);
    const first = parseLoginFromDm(stdout);
    assert.equal((await runPsql(first, 'SELECT count(*) FROM invoices')).ok, true, 'psql logs in with it');

    // Another person is refused with a clear error, and nothing changes.
    const stranger = cli('credential', id, '--as', 'bob');
    assert.equal(stranger.status, 1);
    assert.match(stranger.stderr, /ERR_CREDENTIAL_NOT_REQUESTER|only the requester/);
    assert.doesNotMatch(stranger.stdout + stranger.stderr, /password:/);
    assert.equal((await runPsql(first, 'SELECT 1')).ok, true, 'the refused collection changed nothing');

    // The requester collects again: a new password, the first one stops logging in.
    const again = cli('credential', id, '--as', 'alice');
    assert.equal(again.status, 0, again.stderr);
    const second = parseLoginFromDm(again.stdout);
    assert.equal(second.user, first.user);
    assert.notEqual(second.password, first.password);
    assert.equal((await runPsql(second, 'SELECT 1')).ok, true);
    assert.equal((await runPsql(first, 'SELECT 1')).ok, false, 'the earlier password no longer logs in');

    const audit = await callApi(url, ADMIN_TOKEN, 'GET', '/v1/audit?limit=1000');
    const entries = (audit.body.entries as { action: string; subject: string; actor: string }[]).filter(
      (e) => e.subject === id,
    );
    assert.deepEqual(
      entries.filter((e) => e.action.startsWith('credential.collect')).map((e) => [e.action, e.actor]),
      [
        ['credential.collected', 'alice'],
        ['credential.collect_refused', 'bob'],
        ['credential.collected', 'alice'],
      ],
    );
  });
});
