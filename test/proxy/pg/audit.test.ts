/**
 * The Postgres proxy writes audit entries through the proxy contract, as the SSH proxy does: the
 * session's start and end, and each blocked statement (masked, cut, at most MAX_AUDITED_BLOCKS per
 * session, so a client pipelining blocked statements cannot flood the audit log).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import type { AuditEntry } from '../../../broker/model.ts';
import { encodeMessages, writeQuery, writeTerminate } from '../../../proxy/pg/protocol/serializer.ts';
import { MAX_AUDITED_BLOCKS } from '../../../proxy/pg/session.ts';
import { waitFor } from '../../helpers/broker-fixture.ts';
import { type PgCluster, startPgCluster } from '../../helpers/pg-cluster.ts';
import { type ProxyFixture, startProxyFixture } from '../../helpers/pg-proxy-fixture.ts';
import { loginRaw } from '../../helpers/pg-raw-client.ts';

describe('pg proxy: audit entries', () => {
  let cluster: PgCluster;
  let fx: ProxyFixture;

  before(async () => {
    cluster = await startPgCluster();
    fx = await startProxyFixture(cluster, { masking: { detectors: { email: 'redact' } } });
  });
  after(async () => {
    await fx?.close();
    await cluster?.stop();
  });

  /** The proxy's audit entries of a grant, once its session ended. */
  async function entriesOf(grantId: string): Promise<AuditEntry[]> {
    return (await waitFor(async () => {
      const entries = (await fx.broker.store.readAudit({ limit: 10_000 })).filter(
        (e) => e.subject === grantId && e.action.startsWith('postgres.'),
      );
      return entries.some((e) => e.action === 'postgres.session_end') ? entries : undefined;
    }))!;
  }

  it('audits the session start, each blocked statement (masked) and the end, never a secret', async () => {
    const login = await fx.grant('write');
    const client = new pg.Client({ ...login, application_name: 'audit-test' });
    await client.connect();
    await client.query('select 1');
    await assert.rejects(client.query('drop table invoices -- ask ada@example.com'), { code: '42501' });
    await client.end();
    const entries = await entriesOf(login.grantId);
    const byAction = new Map(entries.map((e) => [e.action, e]));
    assert.equal(entries.length, 3);
    const start = byAction.get('postgres.session_start')!;
    const blocked = byAction.get('postgres.statement_blocked')!;
    const end = byAction.get('postgres.session_end')!;
    for (const entry of entries) {
      assert.equal(entry.actor, 'carol');
      assert.equal(entry.data.target, 'app-db');
      assert.equal(entry.data.account, login.user);
      assert.match(String(entry.data.session), /^s_/);
    }
    assert.equal(start.data.database, fx.database);
    assert.equal(start.data.application, 'audit-test');
    assert.equal(start.data.tls, false);
    assert.match(String(start.data.client), /^127\.0\.0\.1:\d+$/);
    assert.deepEqual(
      { statement: blocked.data.statement, rule: blocked.data.rule },
      { statement: 'drop table invoices -- ask [REDACTED:email]', rule: 'drop-table' },
    );
    assert.deepEqual(
      { reason: end.data.reason, statements: end.data.statements, blocked: end.data.blocked },
      { reason: 'client terminated', statements: 2, blocked: 1 },
    );
    const all = JSON.stringify(entries);
    assert.doesNotMatch(all, /ada@example\.com/);
    assert.equal(all.includes(login.password), false, 'the proxy password is not audited');
  });

  it(`audits at most ${MAX_AUDITED_BLOCKS} blocked statements of a session and counts the rest`, async () => {
    const login = await fx.grant('write');
    const client = new pg.Client({ ...login });
    await client.connect();
    const attempts = MAX_AUDITED_BLOCKS + 7;
    // Queued by the client without waiting: the proxy sees them pipelined.
    const results = await Promise.allSettled(
      Array.from({ length: attempts }, (_, i) => client.query(`drop table invoices_${i}`)),
    );
    assert.equal(results.filter((r) => r.status === 'rejected').length, attempts);
    await client.end();
    const entries = await entriesOf(login.grantId);
    const blocked = entries.filter((e) => e.action === 'postgres.statement_blocked');
    assert.equal(blocked.length, MAX_AUDITED_BLOCKS);
    assert.equal(blocked[0]!.data.statement, 'drop table invoices_0');
    const end = entries.find((e) => e.action === 'postgres.session_end')!;
    assert.equal(end.data.blocked, attempts);
    assert.equal(end.data.blocked_not_audited, 7);
  });

  it('regression: a blocked statement is audited even when the client leaves before the server answers', async () => {
    const login = await fx.grant('write');
    const raw = await loginRaw({ ...login, port: login.port });
    // The statement and the Terminate in one write: the session ends before any reply comes back.
    raw.send(
      encodeMessages((w) => {
        writeQuery(w, 'drop table invoices');
        writeTerminate(w);
      }),
    );
    await raw.closed;
    const entries = await entriesOf(login.grantId);
    const blocked = entries.filter((e) => e.action === 'postgres.statement_blocked');
    assert.deepEqual(
      blocked.map((e) => [e.data.statement, e.data.rule]),
      [['drop table invoices', 'drop-table']],
    );
  });

  it('audits no session for a login that fails', async () => {
    const login = await fx.grant('read');
    await assert.rejects(new pg.Client({ ...login, password: 'wrong' }).connect(), { code: '28P01' });
    // The same grant's next session: its end is audited after anything the failed one could have.
    const client = new pg.Client({ ...login });
    await client.connect();
    await client.end();
    const entries = await entriesOf(login.grantId);
    assert.deepEqual(entries.map((e) => e.action).sort(), ['postgres.session_end', 'postgres.session_start']);
  });
});
