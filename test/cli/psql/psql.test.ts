/**
 * `warden psql` against a real PostgreSQL: tables, command tags, errors with their SQLSTATE,
 * `\q` and end of input, a refused login, and a session the server ends (exit 2 with the FATAL).
 */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { runPsqlCommand } from '../../../cli/commands/psql.ts';
import type { Io } from '../../../cli/output.ts';
import { waitFor } from '../../helpers/broker-fixture.ts';
import { createDatabase, execSql, type PgCluster, startPgCluster } from '../../helpers/pg-cluster.ts';

describe('warden psql', () => {
  let cluster: PgCluster;
  let database: string;
  before(async () => {
    cluster = await startPgCluster();
    database = await createDatabase(cluster, 'psql');
    await execSql(
      cluster,
      database,
      "CREATE TABLE t (id int, name text); INSERT INTO t VALUES (1, 'ada'), (22, NULL); CREATE ROLE psql_user LOGIN PASSWORD 'secret-pw'; GRANT SELECT ON t TO psql_user",
    );
  });
  after(() => cluster.stop());

  const start = (conninfo: string[], env: Record<string, string> = {}) => {
    const out: string[] = [];
    const err: string[] = [];
    const io: Io = { out: (l) => out.push(l), err: (l) => err.push(l), env };
    const input = new PassThrough();
    const done = runPsqlCommand(conninfo, io, { input, prompt: () => {}, interactive: false });
    return { out, err, input, done };
  };
  const keywords = (user = 'postgres') => [
    `host=127.0.0.1 port=${cluster.port} dbname=${database} user=${user}`,
  ];

  it('prints a table, command tags and server errors with their SQLSTATE, then quits on \\q', async () => {
    const s = start(keywords(), { PGPASSWORD: cluster.password });
    s.input.write('SELECT id, name FROM t\n  ORDER BY id;\n');
    s.input.write('CREATE TEMP TABLE x (a int);\nINSERT INTO x VALUES (1), (2);\n');
    s.input.write('SELECT nope FROM t;\n');
    s.input.write('\\q\n');
    assert.equal(await s.done, 0);
    assert.deepEqual(s.out.slice(0, 6), [' id | name', '----+------', '  1 | ada', ' 22 |', '(2 rows)', '']);
    assert.ok(s.out.includes('CREATE'), s.out.join('\n'));
    assert.ok(s.out.includes('INSERT 0 2'));
    assert.ok(
      s.err.some((l) => /^ERROR: {2}column "nope" does not exist \(SQLSTATE 42703\)$/.test(l)),
      s.err.join('\n'),
    );
  });

  it('ends at end of input, with the password in a URI', async () => {
    const s = start([`postgres://psql_user:secret-pw@127.0.0.1:${cluster.port}/${database}?sslmode=disable`]);
    s.input.end('SELECT count(*) AS n FROM t;\n');
    assert.equal(await s.done, 0);
    assert.deepEqual(s.out.slice(0, 3), [' n', '---', ' 2']);
  });

  it('exits 1 with ERR_PSQL_CONNECT_FAILED and the server’s message on a wrong password', async () => {
    const s = start(keywords('psql_user'), { PGPASSWORD: 'wrong' });
    assert.equal(await s.done, 1);
    assert.match(s.err.join('\n'), /password authentication failed for user "psql_user" \(SQLSTATE 28P01\)/);
    assert.match(s.err.join('\n'), /ERR_PSQL_CONNECT_FAILED/);
  });

  it('exits 1 when nothing listens', async () => {
    const s = start(['host=127.0.0.1 port=1 user=u'], { PGPASSWORD: 'x' });
    assert.equal(await s.done, 1);
    assert.match(s.err.join('\n'), /could not connect to 127\.0\.0\.1:1/);
  });

  it('exits 2 with a usage line for a bad connection string, and without a password off a terminal', async () => {
    const bad = start(['host=h port=nope user=u']);
    assert.equal(await bad.done, 2);
    assert.match(bad.err.join('\n'), /ERR_PSQL_CONNINFO_INVALID/);
    const nopw = start(keywords());
    assert.equal(await nopw.done, 2);
    assert.match(nopw.err.join('\n'), /ERR_PSQL_NO_PASSWORD/);
  });

  it('exits 2 with the server’s FATAL when the session is ended while idle', async () => {
    const s = start(keywords('psql_user'), { PGPASSWORD: 'secret-pw' });
    s.input.write('SELECT 1 AS ready;\n');
    await waitFor(() => s.out.includes('(1 row)'), 30_000, 'the first result');
    await execSql(
      cluster,
      database,
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'psql_user'",
    );
    assert.equal(await s.done, 2);
    assert.match(
      s.err.join('\n'),
      /FATAL: {2}terminating connection due to administrator command \(SQLSTATE 57P01\)/,
    );
  });
});
