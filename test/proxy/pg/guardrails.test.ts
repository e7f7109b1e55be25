/**
 * Guardrails in the data path: every default rule blocks through the proxy (simple and extended
 * protocol) with SQLSTATE 42501 naming the rule, including evasions and statements split across
 * protocol messages or TCP segments; ordinary reads and writes pass; the session goes on.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import {
  encodeMessages,
  writeBind,
  writeExecute,
  writeParse,
  writeQuery,
  writeSync,
} from '../../../proxy/pg/protocol/serializer.ts';
import { type PgCluster, startPgCluster } from '../../helpers/pg-cluster.ts';
import { type ProxyFixture, type ProxyLogin, startProxyFixture } from '../../helpers/pg-proxy-fixture.ts';
import { loginRaw } from '../../helpers/pg-raw-client.ts';

const BLOCKED: [string, string][] = [
  ['DROP TABLE customers', 'drop-table'],
  ['drop /* hidden */ table "customers"', 'drop-table'],
  ['DrOp\n\t  TABLE   public . customers', 'drop-table'],
  ['-- comment\nDROP SCHEMA public CASCADE', 'drop-schema'],
  ['DROP DATABASE postgres', 'drop-database'],
  ['TRUNCATE invoices', 'truncate'],
  ['truncate table "invoices"', 'truncate'],
  ['DELETE FROM invoices', 'delete-without-where'],
  ['UPDATE invoices SET amount = 0', 'update-without-where'],
  ['ALTER SYSTEM SET work_mem = 1', 'alter-system'],
  ["COPY invoices TO PROGRAM 'cat'", 'copy-program'],
  ['CREATE ROLE evil', 'role-management'],
  ['ALTER ROLE CURRENT_USER CREATEDB', 'role-management'],
  ['GRANT ALL ON customers TO PUBLIC', 'privilege-change'],
  ['REVOKE ALL ON customers FROM PUBLIC', 'privilege-change'],
  ['SELECT pg_terminate_backend(1)', 'dangerous-function'],
  ["select PG_CATALOG.pg_read_file('/etc/passwd')", 'dangerous-function'],
  ["SELECT lo_import('/etc/passwd')", 'dangerous-function'],
  ["SELECT * FROM dblink('host=x', 'select 1') AS t(a int)", 'dangerous-function'],
  ['DO $$ BEGIN DELETE FROM invoices; END $$', 'delete-without-where'],
  ["DO $$ BEGIN EXECUTE 'TRUNC' || 'ATE invoices'; END $$", 'dynamic-sql'],
  ['WITH gone AS (DELETE FROM invoices RETURNING *) SELECT count(*) FROM gone', 'delete-without-where'],
  ['EXPLAIN ANALYZE DELETE FROM invoices', 'delete-without-where'],
  ['PREPARE wipe AS DELETE FROM invoices', 'delete-without-where'],
  ["CREATE FUNCTION wipe() RETURNS void LANGUAGE sql AS 'DELETE FROM invoices'", 'delete-without-where'],
  ['SELEC 1 FROM', 'unparseable'],
];

const ALLOWED = [
  'SELECT * FROM invoices WHERE id = 1',
  'UPDATE invoices SET amount = amount WHERE id = 1',
  'DELETE FROM invoices WHERE id = -1',
  "INSERT INTO invoices (customer, amount) VALUES ('initech', 5)",
];

function isBlocked(rule: string) {
  return (error: { code?: string; message: string }) => {
    assert.equal(error.code, '42501', error.message);
    assert.match(error.message, new RegExp(`\\(rule ${rule}\\)`));
    return true;
  };
}

describe('guardrails through the proxy', () => {
  let cluster: PgCluster;
  let fx: ProxyFixture;
  let login: ProxyLogin;
  let client: pg.Client;

  before(async () => {
    cluster = await startPgCluster();
    fx = await startProxyFixture(cluster);
    login = await fx.grant('write');
    client = new pg.Client({ ...login });
    await client.connect();
  });
  after(async () => {
    await client?.end();
    await fx?.close();
    await cluster?.stop();
  });

  for (const [sql, rule] of BLOCKED) {
    it(`blocks ${JSON.stringify(sql)} with rule ${rule} (simple and extended protocol)`, async () => {
      await assert.rejects(client.query(sql), isBlocked(rule));
      if (!sql.startsWith('SELEC ')) {
        await assert.rejects(
          client.query({ text: sql, name: `x${BLOCKED.findIndex(([s]) => s === sql)}` }),
          isBlocked(rule),
        );
      }
      assert.equal((await client.query('select 1 as ok')).rows[0].ok, 1);
    });
  }

  it('lets ordinary reads and writes with WHERE through', async () => {
    for (const sql of ALLOWED) await client.query(sql);
    assert.equal((await client.query('select count(*)::int as n from invoices')).rows[0].n, 3);
  });

  it('blocks the dangerous statement of a multi-statement query before any of it runs', async () => {
    await assert.rejects(
      client.query("INSERT INTO invoices (customer, amount) VALUES ('multi', 1); DROP TABLE invoices"),
      isBlocked('drop-table'),
    );
    const rows = (await client.query("select count(*)::int as n from invoices where customer = 'multi'"))
      .rows;
    assert.equal(rows[0].n, 0);
  });

  it('a blocked statement inside a transaction aborts it as a permission error would', async () => {
    await client.query('BEGIN');
    await assert.rejects(client.query('TRUNCATE invoices'), isBlocked('truncate'));
    await assert.rejects(client.query('select 1'), (e: { code?: string }) => e.code === '25P02');
    await client.query('ROLLBACK');
  });

  it('checks a statement split across TCP segments, one byte at a time', async () => {
    const raw = await loginRaw(login);
    try {
      const bytes = encodeMessages((w) => writeQuery(w, 'DROP TABLE customers'));
      for (const byte of bytes) {
        raw.send(Buffer.from([byte]));
        await new Promise((r) => setImmediate(r));
      }
      const replies = await raw.untilReady();
      const error = replies.find((m) => m.type === 'errorResponse');
      assert.ok(error && error.type === 'errorResponse');
      assert.equal(error.code, '42501');
      assert.match(error.message, /rule drop-table/);
    } finally {
      raw.end();
    }
  });

  it('answers a pipeline of Parse/Bind/Execute with a blocked Parse in the middle in order', async () => {
    const raw = await loginRaw(login);
    try {
      raw.send(
        encodeMessages((w) => {
          writeParse(w, { name: 'ok1', sql: 'select 1 as a' });
          writeBind(w, { statement: 'ok1' });
          writeExecute(w);
          writeParse(w, { name: 'bad', sql: 'delete from invoices' });
          writeBind(w, { statement: 'bad' });
          writeExecute(w);
          writeSync(w);
          writeParse(w, { name: 'ok2', sql: 'select 2 as b' });
          writeBind(w, { statement: 'ok2' });
          writeExecute(w);
          writeSync(w);
        }),
      );
      const first = await raw.untilReady();
      assert.deepEqual(
        first.map((m) => m.type),
        ['parseComplete', 'bindComplete', 'dataRow', 'commandComplete', 'errorResponse', 'readyForQuery'],
      );
      const error = first[4]!;
      assert.ok(
        error.type === 'errorResponse' &&
          error.code === '42501' &&
          /delete-without-where/.test(error.message),
      );
      const second = await raw.untilReady();
      assert.deepEqual(
        second.map((m) => m.type),
        ['parseComplete', 'bindComplete', 'dataRow', 'commandComplete', 'readyForQuery'],
      );
    } finally {
      raw.end();
    }
  });

  it('follows PREPARE and EXECUTE sent in separate messages', async () => {
    await client.query('PREPARE ok_update AS UPDATE invoices SET amount = amount WHERE id = 1');
    await client.query('EXECUTE ok_update');
    await assert.rejects(
      client.query('PREPARE bad_update AS UPDATE invoices SET amount = 0'),
      isBlocked('update-without-where'),
    );
    // The statement was never prepared on the server.
    await assert.rejects(client.query('EXECUTE bad_update'), (e: { code?: string }) => e.code !== undefined);
  });

  it('records blocked statements with their rule', async () => {
    await new Promise((r) => setTimeout(r, 400));
    const sessions = await fx.broker.store.listSessions({ grantId: login.grantId });
    const events = (await Promise.all(sessions.map((s) => fx.broker.store.listSessionEvents(s.id)))).flat();
    const blocked = events.filter((e) => e.kind === 'blocked');
    assert.ok(blocked.length >= BLOCKED.length);
    assert.ok(blocked.some((e) => (e.data.verdict as { rule?: string }).rule === 'truncate'));
  });
});
