/**
 * pg_dump, psql `\copy` and `COPY ... TO STDOUT (FORMAT csv, HEADER)` through the proxy against a
 * real PostgreSQL 15, with `customers.email` (hash) and `*.card_number` (last4) masked: the dump
 * succeeds under the default guardrails, holds masked values only, and restores with psql into
 * a scratch database with the unmasked columns intact.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { createDatabase, execSql, type PgCluster, startPgCluster } from '../../helpers/pg-cluster.ts';
import {
  type ProxyFixture,
  type ProxyLogin,
  removeDir,
  startProxyFixture,
} from '../../helpers/pg-proxy-fixture.ts';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], env: Record<string, string>): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env, timeout: 60_000, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

const SECRETS = [
  'ada@example.com',
  'bob@example.org',
  'zoe@example.net',
  '4111111111111111',
  '5500005555555559',
];
/** A note with what text COPY escapes and CSV quotes, and multi-byte UTF-8. */
const TRICKY_NOTE = 'tab\there, "quoted", back\\slash,\nnew line; Zoë 日本';

const EXTRA_SQL = `
INSERT INTO customers (name, email, card_number, note) VALUES ('Zoë', 'zoe@example.net', NULL, $note$${TRICKY_NOTE}$note$);
CREATE TABLE orders (id int PRIMARY KEY, gone text, card_number text, memo text);
ALTER TABLE orders DROP COLUMN gone;
INSERT INTO orders VALUES (1, '4111111111111111', 'first'), (2, NULL, E'a\\\\b');
ALTER TABLE orders OWNER TO app_owner;
`;

describe('pg_dump and COPY TO through the proxy with masked columns', () => {
  let cluster: PgCluster;
  let fx: ProxyFixture;
  let login: ProxyLogin;
  let client: pg.Client;
  const dir = mkdtempSync(join(tmpdir(), 'warden-dump-'));

  before(async () => {
    cluster = await startPgCluster();
    const keyFile = join(dir, 'mask.key');
    writeFileSync(keyFile, 'a masking key of thirty-two bytes');
    fx = await startProxyFixture(cluster, {
      masking: {
        key: `file:${keyFile}`,
        columns: [
          { match: 'customers.email', style: 'hash' },
          { match: '*.card_number', style: 'last4' },
        ],
      },
    });
    await execSql(cluster, fx.database, EXTRA_SQL);
    login = await fx.grant('read');
    client = new pg.Client({ ...login });
    await client.connect();
  });
  after(async () => {
    await client?.end();
    await fx?.close();
    await cluster?.stop();
    removeDir(dir);
  });

  /** The masked values as SELECT through the proxy shows them. */
  async function maskedCustomers(): Promise<Record<string, unknown>[]> {
    return (await client.query('select id, name, email, card_number, note from customers order by id')).rows;
  }

  it('pg_dump succeeds under the default guardrails and restores with masked values only', async () => {
    const dump = await run('pg_dump', ['--no-owner', '--no-privileges'], fx.libpqEnv(login));
    assert.equal(dump.code, 0, dump.stderr);
    for (const secret of SECRETS) assert.ok(!dump.stdout.includes(secret), `${secret} is in the dump`);
    assert.match(dump.stdout, /COPY public\.customers \(id, name, email, card_number, note\) FROM stdin;/);
    assert.match(dump.stdout, /COPY public\.orders \(id, card_number, memo\) FROM stdin;/);
    assert.match(dump.stdout, /\*{12}1111/);

    const file = join(dir, 'dump.sql');
    writeFileSync(file, dump.stdout);
    const scratch = await createDatabase(cluster, 'restored');
    const restore = await run(
      'psql',
      ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', cluster.urlFor(scratch), '-f', file],
      { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: tmpdir() },
    );
    assert.equal(restore.code, 0, restore.stderr);

    const restored = await execSql(
      cluster,
      scratch,
      'select id, name, email, card_number, note from customers order by id',
    );
    assert.deepEqual(restored[0]!.rows, await maskedCustomers());
    const zoe = restored[0]!.rows[2];
    assert.equal(zoe.name, 'Zoë');
    assert.equal(zoe.note, TRICKY_NOTE, 'unmasked columns survive re-encoding byte for byte');
    assert.equal(zoe.card_number, null);
    assert.notEqual(zoe.email, 'zoe@example.net');
    const orders = await execSql(cluster, scratch, 'select id, card_number, memo from orders order by id');
    assert.deepEqual(orders[0]!.rows, [
      { id: 1, card_number: '************1111', memo: 'first' },
      { id: 2, card_number: null, memo: 'a\\b' },
    ]);
    const invoices = await execSql(cluster, scratch, 'select customer, amount from invoices order by id');
    assert.deepEqual(invoices[0]!.rows, [
      { customer: 'acme', amount: 100 },
      { customer: 'globex', amount: 250 },
    ]);
  });

  it('a parallel pg_dump (its workers lock with NOWAIT) dumps every table, masked', async () => {
    const out = join(dir, 'parallel');
    const dump = await run(
      'pg_dump',
      ['--no-owner', '--no-privileges', '-Fd', '-j', '2', '-Z', '0', '-f', out],
      fx.libpqEnv(login),
    );
    assert.equal(dump.code, 0, dump.stderr);
    const restore = await run('pg_restore', ['-f', '-', out], {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
    });
    assert.equal(restore.code, 0, restore.stderr);
    for (const secret of SECRETS) assert.ok(!restore.stdout.includes(secret), `${secret} is in the dump`);
    assert.match(
      restore.stdout,
      /COPY public\.invoices \(id, customer, amount\) FROM stdin;\n1\tacme\t100\n/,
    );
    assert.match(
      restore.stdout,
      /COPY public\.orders \(id, card_number, memo\) FROM stdin;\n1\t\*{12}1111\tfirst\n/,
    );
  });

  it('psql \\copy ... to stdout masks by column, in the text format', async () => {
    const out = await run('psql', ['-X', '-c', '\\copy customers to stdout'], fx.libpqEnv(login));
    assert.equal(out.code, 0, out.stderr);
    for (const secret of SECRETS) assert.ok(!out.stdout.includes(secret), `${secret} in \\copy output`);
    const rows = await maskedCustomers();
    const first = out.stdout.split('\n')[0]!.split('\t');
    assert.deepEqual(first, ['1', 'Ada', rows[0]!.email, '************1111', 'vip']);
  });

  it('COPY ... TO STDOUT (FORMAT csv, HEADER) keeps the header and quotes as the server does', async () => {
    const out = await run(
      'psql',
      ['-X', '-c', 'COPY customers (name, email, note) TO STDOUT (FORMAT csv, HEADER)'],
      fx.libpqEnv(login),
    );
    assert.equal(out.code, 0, out.stderr);
    const rows = await maskedCustomers();
    const quotedNote = `"${TRICKY_NOTE.replaceAll('"', '""')}"`;
    assert.equal(
      out.stdout,
      `name,email,note\nAda,${rows[0]!.email},vip\nBob,${rows[1]!.email},call back on 2024-01-02\n` +
        `Zoë,${rows[2]!.email},${quotedNote}\n`,
    );
  });

  it('still refuses what it cannot mask exactly (rule masked-copy, 42501)', async () => {
    for (const [sql, why] of [
      ['COPY customers TO STDOUT (FORMAT binary)', /binary/],
      ['COPY (select email from customers) TO STDOUT', /COPY \(query\)/],
    ] as const) {
      await assert.rejects(client.query(sql), (e: { code?: string; message: string }) => {
        assert.equal(e.code, '42501');
        assert.match(e.message, /rule masked-copy/);
        assert.match(e.message, why);
        return true;
      });
    }
    assert.equal((await client.query('select 1 as one')).rows[0].one, 1, 'the session goes on');
    const sjis = await run(
      'psql',
      ['-X', '-c', 'COPY customers TO STDOUT'],
      fx.libpqEnv(login, { PGCLIENTENCODING: 'SJIS' }),
    );
    // Refused at login already: statements in Shift-JIS cannot be read by the guardrails either.
    assert.match(sjis.stderr, /startup parameter "client_encoding" is refused .*\(rule unsafe-setting\)/);
    assert.equal(sjis.stdout, '');
  });
});
