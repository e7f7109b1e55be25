/**
 * Hostile clients and session endings: garbage, oversize lengths and fuzzed messages close only
 * the offending connection; the handshake is time-limited; CancelRequest reaches the right
 * upstream session; expiry and revocation cut live sessions with a FATAL message saying why.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import postgres from 'postgres';
import { encodeMessages, writeQuery, writeStartupMessage } from '../../../proxy/pg/protocol/serializer.ts';
import { PgProxyServer } from '../../../proxy/pg/server.ts';
import { waitFor } from '../../helpers/broker-fixture.ts';
import { type PgCluster, startPgCluster } from '../../helpers/pg-cluster.ts';
import {
  type ProxyFixture,
  type ProxyLogin,
  postgresOptions,
  startProxyFixture,
} from '../../helpers/pg-proxy-fixture.ts';
import { loginRaw, openRaw } from '../../helpers/pg-raw-client.ts';

/** Sends bytes on a fresh connection and resolves with the FATAL/ERROR code once the proxy closed it. */
async function sendAndExpectClose(port: number, bytes: Buffer): Promise<string | undefined> {
  const raw = openRaw(port);
  await new Promise<void>((resolve) => raw.socket.once('connect', () => resolve()));
  raw.send(bytes);
  await raw.closed;
  const error = raw.messages.find((m) => m.type === 'errorResponse');
  return error?.type === 'errorResponse' ? error.code : undefined;
}

function mutate(bytes: Buffer): Buffer {
  const out = Buffer.from(bytes);
  const edits = 1 + (randomBytes(1)[0]! % 4);
  for (let i = 0; i < edits; i++) out[randomBytes(2).readUInt16BE(0) % out.length] = randomBytes(1)[0]!;
  return out;
}

describe('hostile clients and session endings', () => {
  let cluster: PgCluster;
  let fx: ProxyFixture;
  let login: ProxyLogin;
  let bystander: pg.Client;

  before(async () => {
    cluster = await startPgCluster();
    fx = await startProxyFixture(cluster, {}, { handshakeTimeoutMs: 1_000 });
    login = await fx.grant('read');
    bystander = new pg.Client({ ...login });
    await bystander.connect();
  });
  after(async () => {
    await bystander?.end().catch(() => {});
    await fx?.close();
    await cluster?.stop();
  });

  const cases: [string, () => Buffer, string | undefined][] = [
    ['garbage before startup', () => Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), '08P01'],
    ['an oversize startup length', () => Buffer.from([0x7f, 0xff, 0xff, 0xff, 0, 3, 0, 0]), '08P01'],
    ['a startup packet shorter than its header', () => Buffer.from([0, 0, 0, 4]), '08P01'],
    ['protocol version 2', () => Buffer.from([0, 0, 0, 8, 0, 2, 0, 0]), '08P01'],
    [
      'a query before authentication',
      () =>
        Buffer.concat([
          encodeMessages((w) => writeStartupMessage(w, { user: 'nobody', database: 'x' })),
          encodeMessages((w) => writeQuery(w, 'select 1')),
        ]),
      '08P01',
    ],
  ];
  for (const [name, bytes, code] of cases) {
    it(`closes the connection on ${name}`, async () => {
      assert.equal(await sendAndExpectClose(fx.port, bytes()), code);
    });
  }

  it('closes a logged-in session that sends an oversize or unknown message; the bystander goes on', async () => {
    for (const bytes of [Buffer.from([0x51, 0x7f, 0xff, 0xff, 0xff]), Buffer.from([0x01, 0, 0, 0, 4])]) {
      const raw = await loginRaw(login);
      raw.send(bytes);
      await raw.closed;
      const error = raw.messages.find((m) => m.type === 'errorResponse');
      assert.ok(error?.type === 'errorResponse');
      assert.equal(error.code, '08P01');
      assert.equal(error.severity, 'FATAL');
    }
    assert.equal((await bystander.query('select 1 as one')).rows[0].one, 1);
  });

  it('survives fuzzed startup and session messages', async () => {
    const startup = encodeMessages((w) =>
      writeStartupMessage(w, { user: login.user, database: login.database }),
    );
    const query = encodeMessages((w) => writeQuery(w, 'select 1'));
    for (let i = 0; i < 60; i++) {
      const bytes =
        i % 3 === 0
          ? randomBytes(1 + (i % 40))
          : mutate(i % 3 === 1 ? startup : Buffer.concat([startup, query]));
      const raw = openRaw(fx.port);
      await new Promise<void>((resolve) => raw.socket.once('connect', () => resolve()));
      raw.send(bytes);
      raw.end();
    }
    for (let i = 0; i < 20; i++) {
      const raw = await loginRaw(login);
      raw.send(mutate(Buffer.concat([query, query])));
      raw.end();
    }
    assert.equal((await bystander.query('select 2 as two')).rows[0].two, 2);
    await waitFor(() => fx.proxy.sessionCount === 1, 10_000, 'fuzzed connections to close');
  });

  it('refuses connections over the limit with 53300 (ERR_PGPROXY_TOO_MANY_CONNECTIONS)', async () => {
    // A second listener of the same target (a second broker would reconcile away this one's roles).
    const limited = new PgProxyServer({
      target: fx.proxy.target,
      ports: fx.proxy.ports,
      maxConnections: 1,
    });
    const { port } = await limited.listen(0);
    try {
      const first = openRaw(port);
      await new Promise<void>((resolve) => first.socket.once('connect', () => resolve()));
      await waitFor(() => limited.sessionCount === 1, 5_000, 'the first connection');
      assert.equal(await sendAndExpectClose(port, Buffer.alloc(0)), '53300');
      first.end();
    } finally {
      await limited.close();
    }
  });

  it('ends a connection that does not finish the handshake in time', async () => {
    const raw = openRaw(fx.port);
    await raw.closed;
    const error = raw.messages.find((m) => m.type === 'errorResponse');
    assert.ok(error?.type === 'errorResponse');
    assert.equal(error.code, '08006');
  });

  it('refuses a wrong password and an unknown user with the same error', async () => {
    for (const [user, password] of [
      [login.user, 'wrong'],
      ['warden_nobody_x', 'wrong'],
    ] as const) {
      await assert.rejects(loginRaw({ ...login, user, password }), /28P01 password authentication failed/);
    }
  });

  it('routes a CancelRequest to the right upstream session', async () => {
    const sql = postgres({ ...postgresOptions(login), max: 2 });
    try {
      const slow = sql`select pg_sleep(30)`;
      const other = sql`select pg_sleep(0.5) as done`;
      const cancelled = assert.rejects(slow, (e: { code?: string }) => e.code === '57014');
      await new Promise((r) => setTimeout(r, 300));
      slow.cancel();
      await cancelled;
      assert.equal((await other).length, 1, 'the other session was not cancelled');
    } finally {
      await sql.end();
    }
  });

  it('ends a live session at grant expiry with a FATAL message', async () => {
    const short = await fx.grant('read', '3s');
    const client = new pg.Client({ ...short });
    await client.connect();
    const ended = new Promise<{ code?: string; message: string }>((resolve) => client.on('error', resolve));
    const error = await ended;
    assert.equal(error.code, '57P01');
    assert.match(error.message, /grant expired/);
    await client.end().catch(() => {});
    const [session] = await fx.broker.store.listSessions({ grantId: short.grantId });
    await waitFor(
      async () => (await fx.broker.store.getSession(session!.id))?.endReason,
      5_000,
      'session end',
    );
    assert.equal((await fx.broker.store.getSession(session!.id))?.endReason, 'grant expired');
  });

  it('ends a live session when the grant is revoked, saying by whom', async () => {
    const grant = await fx.grant('read');
    const client = new pg.Client({ ...grant });
    await client.connect();
    const ended = new Promise<{ code?: string; message: string }>((resolve) => client.on('error', resolve));
    await fx.broker.app.broker.revoke(grant.grantId, { id: 'root', admin: true }, 'incident over');
    const error = await ended;
    assert.equal(error.code, '57P01');
    assert.match(error.message, /revoked by root: incident over/);
    await client.end().catch(() => {});
    await assert.rejects(loginRaw(grant), /28P01/);
  });
});

describe('backpressure', () => {
  let cluster: PgCluster;
  let fx: ProxyFixture;

  before(async () => {
    cluster = await startPgCluster();
    fx = await startProxyFixture(cluster);
  });
  after(async () => {
    await fx?.close();
    await cluster?.stop();
  });

  it('a client that stops reading a large result holds the server back instead of filling memory', async () => {
    const login = await fx.grant('read');
    const raw = await loginRaw(login);
    try {
      // About 100 MB of rows.
      raw.send(
        encodeMessages((w) => writeQuery(w, "select repeat('x', 1000) from generate_series(1, 100000)")),
      );
      raw.socket.pause();
      await new Promise((r) => setTimeout(r, 1_500));
      const held = fx.proxy.bufferedBytes;
      assert.ok(held < 8 * 1024 * 1024, `the proxy holds ${held} bytes for a paused client`);
      raw.socket.resume();
      const replies = await raw.untilReady();
      assert.equal(replies.filter((m) => m.type === 'dataRow').length, 100_000);
    } finally {
      raw.end();
    }
  });

  it('rows held back for a paused client arrive intact and in order', async () => {
    const login = await fx.grant('read');
    const raw = await loginRaw(login);
    try {
      // Each row names itself: a read buffer reused under a queued write would show as a wrong row.
      raw.send(
        encodeMessages((w) =>
          writeQuery(w, "select g, repeat(g::text || ':', 60) from generate_series(1, 60000) g"),
        ),
      );
      raw.socket.pause();
      await new Promise((r) => setTimeout(r, 500));
      raw.socket.resume();
      const rows = (await raw.untilReady()).filter((m) => m.type === 'dataRow');
      assert.equal(rows.length, 60_000);
      rows.forEach((row, i) => {
        const [id, text] = row.type === 'dataRow' ? row.values : [];
        assert.equal(id?.toString(), String(i + 1));
        assert.equal(text?.toString(), `${i + 1}:`.repeat(60));
      });
    } finally {
      raw.end();
    }
  });

  it('masked rows held back for a paused client arrive intact and in order (the rewritten buffers are reused only once sent)', async () => {
    const login = await fx.grant('read');
    const raw = await loginRaw(login);
    try {
      // The e-mail detector rewrites every row (a shorter value); the columns after it name the row.
      raw.send(
        encodeMessages((w) =>
          writeQuery(
            w,
            "select 'user' || g || '@example.com', g, repeat(g::text || ':', 40) from generate_series(1, 60000) g",
          ),
        ),
      );
      raw.socket.pause();
      await new Promise((r) => setTimeout(r, 500));
      raw.socket.resume();
      const rows = (await raw.untilReady()).filter((m) => m.type === 'dataRow');
      assert.equal(rows.length, 60_000);
      const masked = new Set<string>();
      rows.forEach((row, i) => {
        const [email, id, text] = row.type === 'dataRow' ? row.values : [];
        assert.ok(!email?.toString().includes(`user${i + 1}@`), `row ${i + 1} came through unmasked`);
        masked.add(email!.toString().replace(/\d+/g, '#'));
        assert.equal(id?.toString(), String(i + 1));
        assert.equal(text?.toString(), `${i + 1}:`.repeat(40));
      });
      assert.ok(masked.size <= 3, `masked values of one shape, got ${[...masked].slice(0, 5).join(', ')}`);
    } finally {
      raw.end();
    }
  });
});
