/**
 * The default blast-radius rule in the data path, on a proxy with no reviewer wired (so it
 * refuses): the estimate comes from EXPLAIN (never ANALYZE) on the session's own connection, so it
 * sees the session's temporary tables and its open transaction; a Bind is estimated with its own
 * parameters; taking the estimate changes nothing the client can see (no rows, no transaction
 * state, no savepoint, no desynchronised replies), also with pipelined extended protocol.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import type { ReviewSubmission, StatementReviewer } from '../../../broker/ports/proxy.ts';
import type { BackendMessage } from '../../../proxy/pg/protocol/backend-parser.ts';
import {
  encodeMessages,
  writeBind,
  writeExecute,
  writeFlush,
  writeParse,
  writeQuery,
  writeSync,
} from '../../../proxy/pg/protocol/serializer.ts';
import { execSql, type PgCluster, startPgCluster } from '../../helpers/pg-cluster.ts';
import { type ProxyFixture, type ProxyLogin, startProxyFixture } from '../../helpers/pg-proxy-fixture.ts';
import { loginRaw } from '../../helpers/pg-raw-client.ts';

const EVENTS = 5000;

function isBlastRadius(error: { code?: string; message: string }): boolean {
  assert.equal(error.code, '42501', error.message);
  assert.match(error.message, /\(rule blast-radius\)/);
  assert.match(error.message, /statement review is not available/);
  return true;
}

const types = (messages: readonly BackendMessage[]) => messages.map((m) => m.type);

describe('blast radius: EXPLAIN estimates on the session connection', () => {
  let cluster: PgCluster;
  let fx: ProxyFixture;
  let login: ProxyLogin;
  let client: pg.Client;
  const count = async () => Number((await client.query('SELECT count(*) AS n FROM events')).rows[0].n);

  before(async () => {
    cluster = await startPgCluster();
    fx = await startProxyFixture(cluster);
    await execSql(
      cluster,
      fx.database,
      `CREATE TABLE events (id int PRIMARY KEY, kind text);
       INSERT INTO events SELECT g, 'k' || (g % 7) FROM generate_series(1, ${EVENTS}) g;
       ANALYZE events;
       ALTER TABLE events OWNER TO app_owner;
       CREATE FUNCTION leak() RETURNS int IMMUTABLE LANGUAGE plpgsql AS
         $$ BEGIN PERFORM pg_catalog.set_config('warden.leak', 'yes', false); RETURN 1; END $$;`,
    );
    login = await fx.grant('write');
    client = new pg.Client({ ...login });
    await client.connect();
  });
  after(async () => {
    await client?.end();
    await fx?.close();
    await cluster?.stop();
  });

  it('refuses a write estimated over half of a table over 1,000 rows when no reviewer is wired', async () => {
    await assert.rejects(client.query('DELETE FROM events WHERE id > 0'), isBlastRadius);
    await assert.rejects(client.query("UPDATE events SET kind = 'x' WHERE kind <> 'y'"), isBlastRadius);
    assert.equal(await count(), EVENTS);
  });

  it('lets a targeted write through (its estimate is small)', async () => {
    const done = await client.query('DELETE FROM events WHERE id = 5000');
    assert.equal(done.rowCount, 1);
    await client.query('INSERT INTO events VALUES (5000, $1)', ['k0']);
  });

  it('a write through a view is judged on the table under it (masking views are first on the search_path)', async () => {
    // The plan's write node names the table, not the view: a targeted write passes, a wide one
    // is refused by the share of the table under the view, not let through as unsized.
    await execSql(
      cluster,
      fx.database,
      `CREATE VIEW events_v AS SELECT * FROM events;
       ALTER VIEW events_v OWNER TO app_owner;
       GRANT SELECT, UPDATE, DELETE ON events_v TO PUBLIC;`,
    );
    const done = await client.query("UPDATE events_v SET kind = 'k1' WHERE id = 1");
    assert.equal(done.rowCount, 1);
    await assert.rejects(client.query('DELETE FROM events_v WHERE id > 0'), isBlastRadius);
    assert.equal(await count(), EVENTS);
  });

  it('estimates a Bind with its own parameters (extended protocol)', async () => {
    const text = 'DELETE FROM events WHERE id > $1';
    await assert.rejects(client.query({ name: 'wide', text, values: [0] }), isBlastRadius);
    const narrow = await client.query({ name: 'wide', text, values: [EVENTS - 3] });
    assert.equal(narrow.rowCount, 3);
    await assert.rejects(client.query({ name: 'wide', text, values: [-1] }), isBlastRadius);
    await client.query(`INSERT INTO events SELECT g, 'k' FROM generate_series(${EVENTS - 2}, ${EVENTS}) g`);
    assert.equal(await count(), EVENTS);
  });

  it("sees the session's temporary table and open transaction; the transaction is untouched", async () => {
    await client.query('BEGIN');
    await client.query('CREATE TEMP TABLE scratch AS SELECT g AS id FROM generate_series(1, 4000) g');
    await client.query('ANALYZE scratch');
    await client.query('SAVEPOINT mine');
    // A small write is estimated inside the block (a read-only savepoint, rolled back) and runs.
    assert.equal((await client.query('DELETE FROM scratch WHERE id = 1')).rowCount, 1);
    // The client's own savepoint is still there, and the deleted row is gone only until it.
    await client.query('ROLLBACK TO SAVEPOINT mine');
    assert.equal(Number((await client.query('SELECT count(*) AS n FROM scratch')).rows[0].n), 4000);
    assert.equal((await client.query('SHOW transaction_read_only')).rows[0].transaction_read_only, 'off');
    await assert.rejects(client.query('DELETE FROM scratch WHERE id > 0'), isBlastRadius);
    // Refused like a permission error: the block is aborted, and ROLLBACK ends it as usual.
    await assert.rejects(client.query('SELECT 1'), (e: { code?: string }) => e.code === '25P02');
    await client.query('ROLLBACK');
    assert.equal(await count(), EVENTS);
  });

  it('a pipelined batch: the estimate inside it keeps every reply in order', async () => {
    const raw = await loginRaw(login);
    try {
      raw.send(
        encodeMessages((w) => {
          writeParse(w, { name: 'a', sql: 'SELECT 1 AS a' });
          writeBind(w, { statement: 'a' });
          writeExecute(w);
          writeParse(w, { name: 'd', sql: 'DELETE FROM events WHERE id > $1' });
          writeBind(w, { statement: 'd', parameters: [Buffer.from('0')] });
          writeExecute(w);
          writeParse(w, { name: 'b', sql: 'SELECT 2 AS b' });
          writeBind(w, { statement: 'b' });
          writeExecute(w);
          writeSync(w);
          // The same prepared statement in the next batch, with a narrow parameter: it runs.
          writeBind(w, { statement: 'd', parameters: [Buffer.from(String(EVENTS - 1))] });
          writeExecute(w);
          writeSync(w);
          writeQuery(w, 'SELECT count(*) FROM events');
        }),
      );
      const first = await raw.untilReady();
      assert.deepEqual(types(first), [
        'parseComplete',
        'bindComplete',
        'dataRow',
        'commandComplete',
        'parseComplete',
        'errorResponse',
        'readyForQuery',
      ]);
      const error = first[5]!;
      assert.ok(error.type === 'errorResponse' && /\(rule blast-radius\)/.test(error.message));
      const second = await raw.untilReady();
      assert.deepEqual(types(second), ['bindComplete', 'commandComplete', 'readyForQuery']);
      const tag = second[1]!;
      assert.ok(tag.type === 'commandComplete' && tag.tag === 'DELETE 1', JSON.stringify(tag));
      const third = await raw.untilReady();
      const row = third.find((m) => m.type === 'dataRow');
      assert.ok(row?.type === 'dataRow');
      assert.equal(row.values[0]!.toString(), String(EVENTS - 1));
    } finally {
      raw.end();
    }
    await client.query(`INSERT INTO events VALUES (${EVENTS}, 'k')`);
  });

  it('a batch whose first message is the wide write: held until its Bind, refused before anything runs', async () => {
    const raw = await loginRaw(login);
    try {
      raw.send(
        encodeMessages((w) => {
          writeParse(w, { sql: 'DELETE FROM events WHERE id > $1 RETURNING id' });
          writeBind(w, { parameters: [Buffer.from('0')] });
          writeExecute(w);
          writeParse(w, { name: 'c', sql: 'SELECT count(*) FROM events' });
          writeBind(w, { statement: 'c' });
          writeExecute(w);
          writeSync(w);
          writeQuery(w, 'SELECT count(*) FROM events');
        }),
      );
      const first = await raw.untilReady();
      // The Parse itself is refused (estimated with the Bind that followed it): nothing was prepared.
      assert.deepEqual(types(first), ['errorResponse', 'readyForQuery']);
      const error = first[0]!;
      assert.ok(error.type === 'errorResponse' && /\(rule blast-radius\)/.test(error.message));
      const second = await raw.untilReady();
      const row = second.find((m) => m.type === 'dataRow');
      assert.ok(row?.type === 'dataRow');
      assert.equal(row.values[0]!.toString(), String(EVENTS));
    } finally {
      raw.end();
    }
  });

  // Regression: a Parse that starts a batch waited for its Bind even past a Flush, while the
  // client waited for the ParseComplete before binding: neither side moved.
  it('a Parse followed by a Flush is answered before its Bind arrives (no deadlock)', {
    timeout: 30_000,
  }, async () => {
    const raw = await loginRaw(login);
    try {
      raw.send(
        encodeMessages((w) => {
          writeParse(w, { name: 'f', sql: 'DELETE FROM events WHERE id > $1' });
          writeFlush(w);
        }),
      );
      await raw.waitFor((m) => m.type === 'parseComplete', 'ParseComplete');
      const bindAndRun = (value: string) =>
        encodeMessages((w) => {
          writeBind(w, { statement: 'f', parameters: [Buffer.from(value)] });
          writeExecute(w);
          writeSync(w);
        });
      raw.send(bindAndRun('0'));
      const wide = await raw.untilReady();
      assert.deepEqual(types(wide), ['errorResponse', 'readyForQuery']);
      assert.ok(wide[0]!.type === 'errorResponse' && /\(rule blast-radius\)/.test(wide[0]!.message));
      raw.send(bindAndRun(String(EVENTS - 1)));
      const narrow = await raw.untilReady();
      assert.deepEqual(types(narrow), ['bindComplete', 'commandComplete', 'readyForQuery']);
    } finally {
      raw.end();
    }
    await client.query(`INSERT INTO events VALUES (${EVENTS}, 'k')`);
  });

  // Regression: outside a block the estimate ran in an implicit transaction that committed, so
  // what an IMMUTABLE function did while the planner folded it (a session setting) outlived it.
  it("the estimate's sandbox is rolled back: constant folding leaves no session setting", async () => {
    await assert.rejects(client.query('DELETE FROM events WHERE id > leak() - 1'), isBlastRadius);
    const shown = await client.query("SELECT coalesce(current_setting('warden.leak', true), '') AS v");
    assert.equal(shown.rows[0].v, '');
    assert.equal(await count(), EVENTS);
  });

  it('records how long the estimate held a write', async () => {
    const sessions = await fx.broker.store.listSessions({ grantId: login.grantId });
    const events = (await Promise.all(sessions.map((s) => fx.broker.store.listSessionEvents(s.id)))).flat();
    const held = events.filter((e) => typeof e.data.held_ms === 'number');
    assert.ok(held.length > 0, 'no statement records held_ms');
    assert.ok(
      events.some(
        (e) => e.kind === 'blocked' && (e.data.verdict as { rule?: string }).rule === 'blast-radius',
      ),
    );
  });
});

describe('blast radius: levels and rules raise or disable the default', () => {
  let cluster: PgCluster;
  let fx: ProxyFixture;

  before(async () => {
    cluster = await startPgCluster();
    fx = await startProxyFixture(cluster, {
      guardrails: {
        disable: [{ rule: 'blast-radius', levels: ['owner'] }],
        adjust: [{ rule: 'blast-radius', levels: ['write'], max_rows: { rows: 1_000_000 } }],
        rules: [
          {
            name: 'big-event-writes',
            match: { kinds: ['update', 'delete'], relations: ['events'] },
            action: 'block',
            levels: ['write'],
            max_rows: 1_000,
          },
        ],
      },
    });
    await execSql(
      cluster,
      fx.database,
      `CREATE TABLE events (id int PRIMARY KEY, kind text);
       INSERT INTO events SELECT g, 'k' FROM generate_series(1, ${EVENTS}) g;
       ANALYZE events;
       ALTER TABLE events OWNER TO app_owner;
       CREATE TABLE other (id int PRIMARY KEY);
       INSERT INTO other SELECT generate_series(1, ${EVENTS});
       ANALYZE other;
       ALTER TABLE other OWNER TO app_owner;`,
    );
  });
  after(async () => {
    await fx?.close();
    await cluster?.stop();
  });

  async function connect(level: string): Promise<pg.Client> {
    const client = new pg.Client({ ...(await fx.grant(level)) });
    await client.connect();
    return client;
  }

  it('a level that raised the limit writes half a table; its own max_rows rule still applies', async () => {
    const client = await connect('write');
    try {
      // blast-radius raised to 1,000,000 rows for write: 5,000 rows of `other` pass.
      assert.equal((await client.query('UPDATE other SET id = id WHERE id > 0')).rowCount, EVENTS);
      // The level's own rule on events (over 1,000 rows) refuses, naming itself.
      await assert.rejects(client.query("UPDATE events SET kind = 'x' WHERE id > 0"), (e: Error) =>
        /\(rule big-event-writes\)/.test(e.message),
      );
      assert.equal((await client.query("UPDATE events SET kind = 'y' WHERE id <= 500")).rowCount, 500);
    } finally {
      await client.end();
    }
  });

  it('a level that disabled the rule is not estimated against it', async () => {
    const client = await connect('owner');
    try {
      assert.equal((await client.query("UPDATE events SET kind = 'z' WHERE id > 0")).rowCount, EVENTS);
    } finally {
      await client.end();
    }
  });

  it('a level without an adjustment keeps the default', async () => {
    const client = await connect('read');
    try {
      // Refused by the guardrails before the server's own permission check could.
      await assert.rejects(client.query('DELETE FROM other WHERE id > 0'), isBlastRadius);
    } finally {
      await client.end();
    }
  });
});

describe('blast radius: held for review where a reviewer is wired', () => {
  let cluster: PgCluster;
  let fx: ProxyFixture;
  const submissions: ReviewSubmission[] = [];
  const decisions: ('approved' | 'denied')[] = [];
  const reviewer: StatementReviewer = {
    async review(submission) {
      submissions.push(submission);
      const decision = decisions.shift() ?? 'denied';
      return { decision, reviewId: `r${submissions.length}`, by: 'dba', reason: 'checked' };
    },
  };

  before(async () => {
    cluster = await startPgCluster();
    fx = await startProxyFixture(cluster, {}, { reviewer });
    await execSql(
      cluster,
      fx.database,
      `CREATE TABLE events (id int PRIMARY KEY, kind text);
       INSERT INTO events SELECT g, 'k' FROM generate_series(1, ${EVENTS}) g;
       ANALYZE events;
       ALTER TABLE events OWNER TO app_owner;`,
    );
  });
  after(async () => {
    await fx?.close();
    await cluster?.stop();
  });

  it('a wide Bind waits for the reviewer: approved it runs, denied it fails naming the rule', async () => {
    const client = new pg.Client({ ...(await fx.grant('write')) });
    await client.connect();
    try {
      const text = "UPDATE events SET kind = 'reviewed' WHERE id > $1";
      decisions.push('approved', 'denied');
      const approved = await client.query({ name: 'wide', text, values: [0] });
      assert.equal(approved.rowCount, EVENTS);
      assert.equal(submissions.length, 1);
      assert.equal(submissions[0]!.rule, 'blast-radius');
      assert.match(submissions[0]!.statement, /UPDATE events/);
      await assert.rejects(client.query({ name: 'wide', text, values: [0] }), (e: Error) =>
        /\(rule blast-radius\): denied by dba/.test(e.message),
      );
      // A narrow Bind of the same statement is not held.
      assert.equal((await client.query({ name: 'wide', text, values: [EVENTS - 1] })).rowCount, 1);
      assert.equal(submissions.length, 2);
      assert.equal((await client.query('SELECT 1 AS ok')).rows[0].ok, 1);
    } finally {
      await client.end();
    }
  });
});
