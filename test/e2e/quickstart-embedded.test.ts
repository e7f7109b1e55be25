/**
 * The quickstart on a machine without PostgreSQL 15: `--demo-db embedded` forces the PGlite
 * fallback. The start-up text says plainly what PGlite does not enforce; the proxy still masks,
 * refuses DROP TABLE and records; `quit` leaves no directory behind.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { after, before, describe, it } from 'node:test';
import { DemoProcess } from '../helpers/demo-driver.ts';
import { runPsql } from '../helpers/psql.ts';

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
