import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import pg from 'pg';
import postgres from 'postgres';
import { type FakePgServer, startFakePgServer } from '../../../helpers/fake-pg-server.ts';

const run = promisify(execFile);
const PASSWORD = 'one-time-ü-password';

describe('real clients against the protocol core (parser, serializer, SCRAM server)', () => {
  let server: FakePgServer;
  before(async () => {
    server = await startFakePgServer(PASSWORD);
  });
  after(async () => {
    await server?.close();
  });

  it('node pg: SCRAM login, simple and extended queries', async () => {
    const client = new pg.Client({
      host: '127.0.0.1',
      port: server.port,
      user: 'alice',
      password: PASSWORD,
      database: 'app',
    });
    await client.connect();
    const simple = await client.query('select 42');
    assert.deepEqual(simple.rows, [{ value: 'select 42' }]);
    const extended = await client.query('select $1::text', ['héllo']);
    assert.deepEqual(extended.rows, [{ value: 'héllo' }]);
    await client.end();
    const log = server.received.at(-1)!;
    const startup = log[0];
    assert.equal(startup?.type, 'startup');
    assert.equal(startup?.type === 'startup' && startup.parameters.get('user'), 'alice');
    assert.ok(log.some((m) => m.type === 'bind' && m.parameters[0]?.toString() === 'héllo'));
    assert.equal(log.at(-1)?.type, 'terminate');
  });

  it('node pg: a wrong password is refused', async () => {
    const client = new pg.Client({
      host: '127.0.0.1',
      port: server.port,
      user: 'alice',
      password: 'wrong',
      database: 'app',
    });
    await assert.rejects(client.connect(), (e: unknown) => (e as { code?: string }).code === '28P01');
  });

  it('postgres (porsager): SCRAM login and a parameterised query', async () => {
    const sql = postgres({
      host: '127.0.0.1',
      port: server.port,
      user: 'bob',
      password: PASSWORD,
      database: 'app',
      ssl: false,
      max: 1,
      fetch_types: false,
      prepare: false,
    });
    try {
      const rows = await sql`select ${'x'}::text as value`;
      assert.equal(rows[0]?.value, 'x');
    } finally {
      await sql.end();
    }
  });

  it('psql (libpq): SSLRequest refused, SCRAM login, simple query', async () => {
    const { stdout } = await run(
      'psql',
      [
        '-X',
        '-A',
        '-t',
        '-h',
        '127.0.0.1',
        '-p',
        String(server.port),
        '-U',
        'carol',
        '-d',
        'app',
        '-c',
        'select 7',
      ],
      { env: { ...process.env, PGPASSWORD: PASSWORD, PGSSLMODE: 'prefer', PGCONNECT_TIMEOUT: '10' } },
    );
    assert.equal(stdout.trim(), 'select 7');
    const log = server.received.at(-1)!;
    assert.deepEqual(
      log.slice(0, 2).map((m) => m.type),
      ['sslRequest', 'startup'],
    );
  });
});
