/**
 * Native clients through the recording proxy against a real PostgreSQL 15: psql (TLS, \d,
 * multi-statement, \copy both ways), pg_dump, pgbench (init and a short run, simple and prepared),
 * node `pg` (extended protocol) and the `postgres` client (pipelining).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import postgres from 'postgres';
import { type PgCluster, startPgCluster } from '../../helpers/pg-cluster.ts';
import {
  createTestCertificate,
  type ProxyFixture,
  postgresOptions,
  removeDir,
  startProxyFixture,
} from '../../helpers/pg-proxy-fixture.ts';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], env: Record<string, string>, input?: string): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(
      cmd,
      args,
      { env, timeout: 60_000, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
    if (input !== undefined) child.stdin!.end(input);
  });
}

describe('real clients through the proxy', () => {
  let cluster: PgCluster;
  let fx: ProxyFixture;
  let tls: { cert: string; key: string; dir: string };
  const work = mkdtempSync(join(tmpdir(), 'warden-clients-'));

  before(async () => {
    cluster = await startPgCluster();
    tls = createTestCertificate();
    fx = await startProxyFixture(cluster, {
      tls: { cert: tls.cert, key: tls.key },
      allow_plaintext: false,
      // pgbench -i drops and truncates its own tables: allowed for the owner level only.
      guardrails: {
        disable: [
          { rule: 'drop-table', levels: ['owner'] },
          { rule: 'truncate', levels: ['owner'] },
        ],
      },
    });
  });
  after(async () => {
    await fx?.close();
    await cluster?.stop();
    removeDir(tls.dir);
    removeDir(work);
  });

  it('psql over TLS: \\d, a multi-statement query, masking, a blocked statement', async () => {
    const login = await fx.grant('read');
    const env = fx.libpqEnv(login, { PGSSLMODE: 'require' });
    const described = await run('psql', ['-X', '-c', '\\d customers'], env);
    assert.equal(described.code, 0, described.stderr);
    assert.match(described.stdout, /card_number/);
    const multi = await run(
      'psql',
      ['-X', '-At', '-c', 'select 1; select email from customers where id = 1; select 3'],
      env,
    );
    assert.equal(multi.code, 0, multi.stderr);
    assert.deepEqual(multi.stdout.trim().split('\n'), ['1', '[REDACTED:email]', '3']);
    const ssl = await run('psql', ['-X', '-At', '-c', 'select 1'], env);
    assert.equal(ssl.code, 0, ssl.stderr);
    const blocked = await run('psql', ['-X', '-c', 'DROP TABLE customers'], env);
    assert.notEqual(blocked.code, 0);
    assert.match(blocked.stderr, /Warden blocked this statement \(rule drop-table\)/);
  });

  it('startup settings (PGOPTIONS, PGCLIENTENCODING) are checked like SET: role and SJIS refused, search_path passes', async () => {
    const login = await fx.grant('read');
    const env = (extra: Record<string, string>) => fx.libpqEnv(login, { PGSSLMODE: 'require', ...extra });
    const role = await run(
      'psql',
      ['-X', '-At', '-c', 'select current_user'],
      env({ PGOPTIONS: '-c role=postgres' }),
    );
    assert.notEqual(role.code, 0);
    assert.match(
      role.stderr,
      /setting "role" in the options parameter is refused .*\(rule session-identity\)/,
    );
    const sjis = await run('psql', ['-X', '-At', '-c', 'select 1'], env({ PGCLIENTENCODING: 'SJIS' }));
    assert.notEqual(sjis.code, 0);
    assert.match(sjis.stderr, /startup parameter "client_encoding" is refused .*unsafe-setting/);
    const path = await run(
      'psql',
      ['-X', '-At', '-c', 'show search_path'],
      env({ PGOPTIONS: '-c search_path=pg_catalog' }),
    );
    assert.equal(path.code, 0, path.stderr);
    assert.equal(path.stdout.trim(), 'pg_catalog');
  });

  it('refuses plaintext when the target does not allow it', async () => {
    const login = await fx.grant('read');
    const result = await run('psql', ['-X', '-c', 'select 1'], fx.libpqEnv(login, { PGSSLMODE: 'disable' }));
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /accepts TLS connections only/);
  });

  it('psql \\copy out and in (COPY TO masked, COPY FROM stored)', async () => {
    const login = await fx.grant('write');
    const env = fx.libpqEnv(login, { PGSSLMODE: 'require' });
    const out = join(work, 'customers.csv');
    const copied = await run('psql', ['-X', '-c', `\\copy customers (name, email) to '${out}' csv`], env);
    assert.equal(copied.code, 0, copied.stderr);
    const text = readFileSync(out, 'utf8');
    assert.match(text, /Ada,\[REDACTED:email\]/);
    assert.doesNotMatch(text, /ada@example\.com/);
    const input = join(work, 'invoices.csv');
    writeFileSync(input, 'copied-1,11\ncopied-2,22\n');
    const loaded = await run(
      'psql',
      ['-X', '-c', `\\copy invoices (customer, amount) from '${input}' csv`],
      env,
    );
    assert.equal(loaded.code, 0, loaded.stderr);
    assert.match(loaded.stdout, /COPY 2/);
    const check = await run(
      'psql',
      ['-X', '-At', '-c', "select sum(amount) from invoices where customer like 'copied-%'"],
      env,
    );
    assert.equal(check.stdout.trim(), '33');
  });

  it('pg_dump dumps schema and masked data', async () => {
    const login = await fx.grant('read');
    const dump = await run(
      'pg_dump',
      ['--no-owner', '--no-privileges'],
      fx.libpqEnv(login, { PGSSLMODE: 'require' }),
    );
    assert.equal(dump.code, 0, dump.stderr);
    assert.match(dump.stdout, /CREATE TABLE public\.customers/);
    assert.match(dump.stdout, /COPY public\.customers/);
    assert.doesNotMatch(dump.stdout, /ada@example\.com/);
  });

  it('pgbench: init, then short simple and prepared runs', async () => {
    const login = await fx.grant('owner');
    const env = fx.libpqEnv(login, { PGSSLMODE: 'require' });
    const init = await run('pgbench', ['-i', '-s', '1', '-q'], env);
    assert.equal(init.code, 0, init.stderr);
    for (const mode of ['simple', 'prepared']) {
      const bench = await run('pgbench', ['-n', '-S', '-c', '4', '-j', '2', '-t', '50', '-M', mode], env);
      assert.equal(bench.code, 0, bench.stderr);
      assert.match(bench.stdout, /number of transactions actually processed: 200\/200/);
    }
    const writes = await run('pgbench', ['-n', '-c', '2', '-t', '20', '-M', 'prepared'], env);
    assert.equal(writes.code, 0, writes.stderr);
  });

  it('node pg: extended protocol, named prepared statements, masking of parameters echoed back', async () => {
    const login = await fx.grant('write');
    const client = new pg.Client({ ...login, ssl: { rejectUnauthorized: false } });
    await client.connect();
    try {
      const named = { name: 'by-id', text: 'select id, name, email from customers where id = $1' };
      const first = await client.query({ ...named, values: [1] });
      assert.deepEqual(first.rows, [{ id: 1, name: 'Ada', email: '[REDACTED:email]' }]);
      const second = await client.query({ ...named, values: [2] });
      assert.equal(second.rows[0].name, 'Bob');
      const echoed = await client.query('select $1::text as v, $2::int as n', ['mail me at x@y.io', 7]);
      assert.deepEqual(echoed.rows, [{ v: 'mail me at [REDACTED:email]', n: 7 }]);
      const updated = await client.query('update invoices set amount = amount + 1 where id = $1', [1]);
      assert.equal(updated.rowCount, 1);
      await assert.rejects(client.query('delete from invoices'), (e: { code?: string; message: string }) => {
        assert.equal(e.code, '42501');
        assert.match(e.message, /rule delete-without-where/);
        return true;
      });
      // The session goes on after a blocked statement.
      assert.equal((await client.query('select 1 as one')).rows[0].one, 1);
    } finally {
      await client.end();
    }
  });

  it('postgres (postgres.js): pipelined queries keep their order, a blocked one fails alone', async () => {
    const login = await fx.grant('read');
    const sql = postgres({
      ...postgresOptions(login),
      ssl: { rejectUnauthorized: false },
      max: 1,
      onnotice: () => {},
    });
    try {
      const ids = Array.from({ length: 50 }, (_, i) => i);
      const results = await Promise.all(
        ids.map((i) => sql`select ${i}::int as i, ${`u${i}@example.com`}::text as e`),
      );
      results.forEach((rows, i) => {
        assert.equal(rows[0]!.i, i);
        assert.equal(rows[0]!.e, '[REDACTED:email]');
      });
      const mixed = await Promise.allSettled([
        sql`select 1 as a`,
        sql`drop table customers`,
        sql`select 2 as b`,
      ]);
      assert.equal(mixed[0].status, 'fulfilled');
      assert.equal(mixed[1].status, 'rejected');
      assert.equal((mixed[1] as PromiseRejectedResult).reason.code, '42501');
      assert.equal(mixed[2].status, 'fulfilled');
      assert.equal((mixed[2] as PromiseFulfilledResult<{ b?: unknown }[]>).value[0]!.b, 2);
    } finally {
      await sql.end();
    }
  });
});
