/**
 * The quickstart as the README tells it: `npm start` (here `warden serve --demo --demo-ttl 30s`),
 * the console driven through stdin, the DM read from stdout, the real psql through the proxy
 * (masked rows, DROP TABLE refused by the rule), the replay, the grant expiring and ending the
 * live session, and Ctrl-C leaving no server and no directory behind.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { waitFor } from '../helpers/broker-fixture.ts';
import { DemoProcess } from '../helpers/demo-driver.ts';
import type { PsqlLogin } from '../helpers/psql.ts';

const PSQL = process.env.WARDEN_PSQL ?? '/usr/bin/psql';
const WARDEN = join(import.meta.dirname, '../../cli/warden.js');
const TTL = '30s';

/** Processes whose command line names `dir` (the demo's PostgreSQL lives under it). */
function processesUnder(dir: string): string[] {
  return execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' })
    .split('\n')
    .filter((line) => line.includes(dir));
}

describe('quickstart: npm start', () => {
  let demo: DemoProcess;
  let dir = '';
  let configFile = '';
  let login: PsqlLogin;
  let psql: ChildProcess | undefined;
  let psqlOut = '';
  let psqlExit: Promise<number | null> | undefined;

  before(async () => {
    demo = new DemoProcess(['--demo-ttl', TTL]);
    const config = await demo.waitOut(/export WARDEN_CONFIG=(\S+)/, 0, 120_000);
    configFile = config[1]!;
    dir = (await demo.waitOut(/removes (\S+)\./))[1]!;
    await demo.waitOut(/Warden console\. You are @alice\./);
  });

  after(() => {
    psql?.kill('SIGKILL');
    demo.kill();
  });

  it('prints the steps in order, with the demo TTL, and a running demo database', () => {
    const order = [
      `/access demo-db ${TTL} trying warden`,
      'as maria',
      'approve <id>',
      'as alice',
      'psql "host=127.0.0.1',
      'DROP TABLE customers;',
      'replay <session id>',
      'Ctrl-C',
    ].map((step) => demo.stdout.indexOf(step));
    assert.ok(
      order.every((at) => at >= 0),
      `a step is missing:\n${demo.stdout}`,
    );
    assert.deepEqual(
      [...order].sort((a, b) => a - b),
      order,
      'steps are out of order',
    );
    assert.match(demo.stdout, /PostgreSQL 15 database with a customers table/);
    assert.ok(existsSync(configFile), 'the config file the replay needs exists');
    assert.ok(processesUnder(dir).length > 0, 'the demo PostgreSQL runs under the demo directory');
  });

  it('asks, approves as the manager, and shows alice the DM with the proxy details', async () => {
    login = await demo.requestAndApprove(TTL);
    const proxy = /psql "host=(\S+) port=(\d+)/.exec(demo.stdout)!;
    assert.equal(login.host, proxy[1], 'the DM names the proxy host');
    assert.equal(login.port, Number(proxy[2]), 'the DM names the proxy port');
  });

  it('psql through the proxy sees masked emails and cards, and DROP TABLE is refused by the rule', async () => {
    psql = spawn(
      PSQL,
      [
        '-X',
        '-q',
        `host=${login.host} port=${login.port} dbname=${login.database} user=${login.user} sslmode=require`,
      ],
      {
        env: { PATH: process.env.PATH ?? '', PGPASSWORD: login.password, PGCONNECT_TIMEOUT: '10' },
        stdio: ['pipe', 'pipe', 'pipe'],
      },
    );
    psql.stdout!.setEncoding('utf8').on('data', (d: string) => {
      psqlOut += d;
    });
    psql.stderr!.setEncoding('utf8').on('data', (d: string) => {
      psqlOut += d;
    });
    psqlExit = new Promise((resolve) => psql!.once('exit', (code) => resolve(code)));
    psql.stdin!.write('SELECT name, email, card_number FROM customers ORDER BY id;\n');
    await waitFor(() => /\(4 rows\)/.test(psqlOut), 60_000, `rows from psql:\n${psqlOut}`);
    assert.match(psqlOut, /Ada Lovelace/);
    for (const clear of [
      'ada@example.com',
      'grace@example.com',
      '4242 4242 4242 4242',
      '5555 5555 5555 4444',
    ]) {
      assert.ok(!psqlOut.includes(clear), `"${clear}" reached psql unmasked:\n${psqlOut}`);
    }
    assert.match(psqlOut, /4444/, 'the card keeps its last four digits');
    psql.stdin!.write('DROP TABLE customers;\n');
    await waitFor(() => /ERROR/.test(psqlOut), 60_000, `an error from psql:\n${psqlOut}`);
    assert.match(psqlOut, /ERROR:\s+Warden blocked this statement \(rule drop-table\)/);
    psql.stdin!.write('SELECT count(*) AS still_there FROM customers;\n');
    await waitFor(() => /still_there[\s\S]*\n\s+4\n/.test(psqlOut), 60_000, `the count:\n${psqlOut}`);
  });

  it('warden replay shows the session’s statements, masked', async () => {
    const env = { ...process.env, WARDEN_CONFIG: configFile };
    const list = spawnSync(process.execPath, [WARDEN, 'sessions', 'list', '--json'], {
      env,
      encoding: 'utf8',
    });
    assert.equal(list.status, 0, list.stderr);
    const sessions = JSON.parse(list.stdout) as { id: string; requester: string }[];
    const session = sessions.find((s) => s.requester === 'alice');
    assert.ok(session, `no session of alice in ${list.stdout}`);
    const replay = await waitFor(
      () => {
        const r = spawnSync(process.execPath, [WARDEN, 'replay', session.id], { env, encoding: 'utf8' });
        return r.status === 0 && /DROP TABLE customers/.test(r.stdout) ? r : undefined;
      },
      60_000,
      'the replay to show the DROP TABLE',
    );
    assert.ok(replay);
    assert.match(replay.stdout, /SELECT name, email, card_number FROM customers/);
    assert.match(replay.stdout, /drop-table/);
    assert.ok(!replay.stdout.includes('ada@example.com'), 'the replay holds an unmasked email');
  });

  it('ends the live psql session when the grant expires', async () => {
    const code = await waitFor(
      async () => {
        psql!.stdin!.write('SELECT 1 AS alive;\n');
        const exited = await Promise.race([
          psqlExit!,
          new Promise((r) => setTimeout(() => r('running'), 2_000)),
        ]);
        return exited === 'running' ? undefined : { code: exited };
      },
      120_000,
      `psql to be disconnected:\n${psqlOut}`,
    );
    assert.notEqual(code?.code, 0);
    assert.match(psqlOut, /FATAL:\s+terminating connection: the grant expired/);
  });

  it('Ctrl-C stops everything and leaves no server and no directory behind', async () => {
    demo.child.kill('SIGINT');
    const code = await waitFor(
      async () => (demo.exitCode !== undefined ? { code: demo.exitCode } : undefined),
      60_000,
      'the demo to exit',
    );
    assert.equal(code?.code, 0, demo.stderr);
    assert.ok(!existsSync(dir), `${dir} is still there`);
    assert.deepEqual(processesUnder(dir), [], 'a process of the demo is still running');
  });
});

describe('quickstart: Ctrl-C while the demo is starting', () => {
  it('stops cleanly and leaves no directory and no server behind', async () => {
    const demoDirs = () => readdirSync(tmpdir()).filter((n) => n.startsWith('warden-demo-'));
    const dirs = new Set(demoDirs());
    const servers = () => processesUnder(join(tmpdir(), 'warden-demo-')).map((l) => l.trim().split(/\s+/)[0]);
    const serversBefore = new Set(servers());
    const demo = new DemoProcess([]);
    try {
      await demo.waitOut(/Starting the Warden demo/);
      demo.child.kill('SIGINT');
      assert.equal(await demo.exited, 0, demo.stderr);
      const left = demoDirs().filter((d) => !dirs.has(d));
      assert.deepEqual(left, [], 'a demo directory was left behind');
      assert.deepEqual(
        servers().filter((pid) => !serversBefore.has(pid)),
        [],
        'a demo database server is still running',
      );
    } finally {
      demo.kill();
    }
  });
});
