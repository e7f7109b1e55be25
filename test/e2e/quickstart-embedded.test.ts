/**
 * The quickstart on a machine without PostgreSQL 15: `--demo-db embedded` forces the PGlite
 * fallback. The start-up text says plainly what PGlite does not enforce; the proxy still masks,
 * refuses DROP TABLE and records; `quit` leaves no directory behind.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DemoProcess } from '../helpers/demo-driver.ts';
import { runPsql } from '../helpers/psql.ts';

const WARDEN = join(import.meta.dirname, '../../cli/warden.js');

describe('quickstart with the embedded database (PGlite)', () => {
  let demo: DemoProcess;
  let dir = '';

  before(async () => {
    demo = new DemoProcess(['--demo-db', 'embedded', '--demo-ttl', '5m']);
    dir = (await demo.waitOut(/removes (\S+)\./, 0, 120_000))[1]!;
    await demo.waitOut(/Warden console\. You are @alice\./);
  });

  after(() => demo.kill());

  it('says it runs PGlite and that PGlite enforces no roles or passwords', () => {
    assert.match(demo.stdout, /PGlite \(embedded PostgreSQL\) database with a customers table/);
    assert.match(demo.stdout, /checks no password: the roles Warden mints are not enforced/);
  });

  it('runs the flow through the proxy: masked rows, DROP TABLE refused by the rule', async () => {
    const login = await demo.requestAndApprove('5m');
    const rows = await runPsql(login, 'SELECT name, email, card_number FROM customers ORDER BY id');
    assert.ok(rows.ok, rows.stderr);
    assert.match(rows.stdout, /^Ada Lovelace\|/m);
    assert.doesNotMatch(rows.stdout, /ada@example\.com|4242 4242 4242 4242/);
    assert.match(rows.stdout, /4242$/m, 'the card keeps its last four digits');
    const drop = await runPsql(login, 'DROP TABLE customers');
    assert.equal(drop.ok, false);
    assert.match(drop.stderr, /Warden blocked this statement \(rule drop-table\)/);
    const wrong = await runPsql({ ...login, password: 'not-the-password' }, 'SELECT 1');
    assert.equal(wrong.ok, false, 'the proxy itself still checks the proxy password');

    // The same through `warden psql`, for machines without psql, as the start-up text says.
    const helper = spawnSync(
      process.execPath,
      [WARDEN, 'psql', `host=${login.host} port=${login.port} dbname=${login.database} user=${login.user}`],
      {
        input: 'SELECT name, email, card_number\n FROM customers ORDER BY id;\nDROP TABLE customers;\n\\q\n',
        env: { ...process.env, PGPASSWORD: login.password },
        encoding: 'utf8',
        timeout: 120_000,
      },
    );
    assert.equal(helper.status, 0, helper.stderr);
    assert.match(helper.stdout, /^ name +\| email +\| card_number$/m);
    assert.match(helper.stdout, /^ Ada Lovelace +\| tok_[0-9a-f]+ +\| \*{4} \*{4} \*{4} 4242$/m);
    assert.match(helper.stdout, /\(4 rows\)/);
    assert.match(
      helper.stderr,
      /ERROR: {2}Warden blocked this statement \(rule drop-table\).*\(SQLSTATE 42501\)/,
    );
  });

  it('quit stops everything and removes the directory', async () => {
    demo.type('quit');
    assert.equal(await demo.exited, 0, demo.stderr);
    assert.ok(!existsSync(dir), `${dir} is still there`);
  });
});

describe('quickstart on a machine without PostgreSQL 15', () => {
  it('--demo-db local says to install postgresql-15 (ERR_DEMO_NO_DATABASE) and leaves nothing', async () => {
    const demoDirs = () => readdirSync(tmpdir()).filter((n) => n.startsWith('warden-demo-'));
    const dirs = demoDirs();
    const demo = new DemoProcess(['--demo-db', 'local'], { WARDEN_PG_BIN: '/nonexistent/postgresql/bin' });
    assert.equal(await demo.exited, 1);
    assert.match(demo.stderr, /install postgresql-15.*\(ERR_DEMO_NO_DATABASE\)/);
    assert.deepEqual(demoDirs(), dirs);
  });
});
