/**
 * Masking in the data path: column rules found by table OID and attribute number (an alias does
 * not hide a column), stable keyed hashes, binary results made safe, content detectors on
 * computed columns, COPY TO, and an ErrorResponse DETAIL; the recording holds counts, never the
 * unmasked values.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { type PgCluster, startPgCluster } from '../../helpers/pg-cluster.ts';
import {
  type ProxyFixture,
  type ProxyLogin,
  removeDir,
  startProxyFixture,
} from '../../helpers/pg-proxy-fixture.ts';

function psql(env: Record<string, string>, sql: string): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve) =>
    execFile('psql', ['-X', '-c', sql], { env }, (_error, stdout, stderr) => resolve({ stdout, stderr })),
  );
}

describe('masking through the proxy', () => {
  let cluster: PgCluster;
  let fx: ProxyFixture;
  let login: ProxyLogin;
  let client: pg.Client;
  const dir = mkdtempSync(join(tmpdir(), 'warden-mask-'));

  before(async () => {
    cluster = await startPgCluster();
    const keyFile = join(dir, 'mask.key');
    writeFileSync(keyFile, 'a masking key of thirty-two bytes');
    fx = await startProxyFixture(cluster, {
      masking: {
        key: `file:${keyFile}`,
        columns: [
          { match: 'customers.card_number', style: 'last4' },
          { match: 'public.customers.name', style: 'hash' },
          { match: 'customers.note', style: 'none' },
        ],
      },
      record_rows: true,
    });
    login = await fx.grant('write');
    client = new pg.Client({ ...login });
    await client.connect();
  });
  after(async () => {
    await client?.end();
    await fx?.close();
    await cluster?.stop();
    removeDir(dir);
  });

  it('masks columns by rule even behind an alias, and hashes stably', async () => {
    const aliased = await client.query(
      'select name as n, card_number as c, email from customers order by id',
    );
    assert.equal(aliased.rows[0].c, '************1111');
    assert.equal(aliased.rows[0].email, '[REDACTED:email]');
    assert.notEqual(aliased.rows[0].n, 'Ada');
    const again = await client.query('select c.name from customers c where id = 1');
    assert.equal(again.rows[0].name, aliased.rows[0].n, 'the same input gives the same token');
    assert.notEqual(aliased.rows[1].n, aliased.rows[0].n);
  });

  it('exempts columns with style none from the detectors', async () => {
    await client.query("update customers set note = 'reach me at note@example.net' where id = 1");
    const { rows } = await client.query('select note from customers where id = 1');
    assert.equal(rows[0].note, 'reach me at note@example.net');
  });

  it('runs the detectors on computed columns and unknown tables', async () => {
    const { rows } = await client.query(
      "select upper(email) as e, 'card 4111 1111 1111 1111' as t from customers where id = 1",
    );
    assert.equal(rows[0].e, '[REDACTED:email]');
    assert.match(rows[0].t, /1111$/);
    assert.doesNotMatch(rows[0].t, /4111 1111/);
  });

  it('makes binary-format values of masked columns safe (masked by the database)', async () => {
    // `binary` is a documented pg option missing from its types.
    const config = { text: 'select card_number, id from customers where id = $1', values: [1], binary: true };
    const result = await client.query(config as pg.QueryConfig);
    assert.equal(result.rows[0].card_number, '************1111');
    assert.equal(result.rows[0].id, 1);
  });

  it('masks the DETAIL of a unique violation', async () => {
    // `name` is masked: writing it goes to the table (the view computes it and cannot take it).
    await assert.rejects(
      client.query("insert into public.customers (name, email) values ('Dup', 'ada@example.com')"),
      (e: { code?: string; detail?: string }) => {
        assert.equal(e.code, '23505');
        assert.equal(e.detail, 'Key (email)=([REDACTED:email]) already exists.');
        return true;
      },
    );
  });

  it('runs the detectors on every field of a notice and an error, and on ParameterStatus values', async () => {
    const fields = `COLUMN = 'c ada@example.com', TABLE = 't bob@example.org', SCHEMA = 's zoe@example.net',
      DATATYPE = 'd ada@example.com', CONSTRAINT = 'n bob@example.org', DETAIL = 'D ada@example.com', HINT = 'H ada@example.com'`;
    type ServerMessage = Partial<
      Record<
        'message' | 'column' | 'table' | 'schema' | 'dataType' | 'constraint' | 'detail' | 'hint',
        string
      >
    >;
    const notices: ServerMessage[] = [];
    const onNotice = (n: ServerMessage) => {
      notices.push(n);
    };
    client.on('notice', onNotice);
    try {
      await client.query(`DO $$ BEGIN RAISE NOTICE 'M ada@example.com' USING ${fields}; END $$`);
    } finally {
      client.off('notice', onNotice);
    }
    let error: ServerMessage | undefined;
    await client
      .query(`DO $$ BEGIN RAISE EXCEPTION 'M ada@example.com' USING ${fields}; END $$`)
      .catch((e: pg.DatabaseError) => {
        error = e;
      });
    for (const message of [notices[0], error]) {
      assert.ok(message);
      const values = [
        message.message,
        message.column,
        message.table,
        message.schema,
        message.dataType,
        message.constraint,
        message.detail,
        message.hint,
      ];
      assert.equal(values.filter((v) => v?.includes('[REDACTED:email]')).length, 8, JSON.stringify(values));
      assert.ok(!JSON.stringify(values).includes('@example'));
    }
    const reported: string[] = [];
    const connection = (client as unknown as { connection: NodeJS.EventEmitter }).connection;
    const onStatus = (m: { parameterName: string; parameterValue: string }) => {
      if (m.parameterName === 'application_name') reported.push(m.parameterValue);
    };
    connection.on('parameterStatus', onStatus);
    try {
      await client.query("SELECT set_config('application_name', 'app of ada@example.com', false)");
    } finally {
      connection.off('parameterStatus', onStatus);
    }
    assert.deepEqual(reported, ['app of [REDACTED:email]']);
  });

  it('masks NOTIFY payloads', async () => {
    const listener = new pg.Client({ ...login });
    await listener.connect();
    try {
      const received = new Promise<string | undefined>((resolve) =>
        listener.on('notification', (n) => resolve(n.payload)),
      );
      await listener.query('LISTEN changes');
      await client.query("NOTIFY changes, 'customer ada@example.com updated'");
      assert.equal(await received, 'customer [REDACTED:email] updated');
    } finally {
      await listener.end();
    }
  });

  it('masks COPY TO output with the detectors', async () => {
    const out = await psql(
      fx.libpqEnv(login),
      "COPY (select id, 'mail ' || customer || '@example.com' from invoices order by id) TO STDOUT",
    );
    assert.equal(out.stdout, '1\tmail [REDACTED:email]\n2\tmail [REDACTED:email]\n');
  });

  it('masks COPY TO of a table with rule-masked columns by column (formerly refused as masked-copy)', async () => {
    const out = await psql(fx.libpqEnv(login), 'COPY customers (id, card_number) TO STDOUT');
    // Heap order: an earlier test updated row 1.
    assert.deepEqual(out.stdout.split('\n').sort(), ['', '1\t************1111', '2\t************5559']);
  });

  it('refuses COPY TO that cannot be masked by column (rule masked-copy)', async () => {
    for (const sql of [
      'COPY customers TO STDOUT (FORMAT binary)',
      'COPY (select id, name from public.customers) TO STDOUT',
    ]) {
      const out = await psql(fx.libpqEnv(login), sql);
      assert.match(out.stderr, /Warden blocked this statement \(rule masked-copy\)/);
      assert.equal(out.stdout, '');
    }
    await assert.rejects(
      client.query('COPY (select card_number from customers) TO STDOUT'),
      (e: { code?: string }) => e.code === '42501',
    );
  });

  it('records masking counts and masked rows, never the raw values', async () => {
    await client.query("select 'x' as marker, email from customers");
    await new Promise((r) => setTimeout(r, 400));
    const sessions = await fx.broker.store.listSessions({ grantId: login.grantId });
    const events = (await Promise.all(sessions.map((s) => fx.broker.store.listSessionEvents(s.id)))).flat();
    const text = JSON.stringify(events);
    assert.doesNotMatch(text, /ada@example\.com|4111111111111111/);
    const marker = events.find((e) => String(e.data.sql).includes("'x' as marker"));
    assert.ok(marker);
    assert.deepEqual(marker.data.masked, { email: 2 });
    assert.deepEqual(marker.data.result, [
      ['x', '[REDACTED:email]'],
      ['x', '[REDACTED:email]'],
    ]);
  });
});
