/**
 * Statement review end to end: real psql through the proxy, a DELETE held by a `review` rule, an
 * approver deciding through the broker API (`POST /v1/reviews/<id>/approve|deny`), the effect
 * (not) visible in the database, other sessions never held up, and the outcome in the recording.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import postgres from 'postgres';
import { type ApiReview, createReviewRoutes } from '../../../broker/api/review-routes.ts';
import { ApiServer } from '../../../broker/api/server.ts';
import { Secret } from '../../../broker/config/secrets.ts';
import { createLogger } from '../../../broker/log.ts';
import type { ReviewOutcome, ReviewSubmission, StatementReviewer } from '../../../broker/ports/proxy.ts';
import { waitFor } from '../../helpers/broker-fixture.ts';
import { execSql, type PgCluster, startPgCluster } from '../../helpers/pg-cluster.ts';
import {
  type ProxyFixture,
  type ProxyLogin,
  postgresOptions,
  startProxyFixture,
} from '../../helpers/pg-proxy-fixture.ts';
import { runPsql } from '../../helpers/psql.ts';

const TOKEN = 'review-test-service-token';

interface ApiAnswer {
  review: ApiReview;
  reviews: ApiReview[];
  error: { code: string };
}

/** The proxy is built before the broker it asks: this forwards to the broker once it exists. */
class LateReviewer implements StatementReviewer {
  target: StatementReviewer | undefined;
  review(submission: ReviewSubmission, signal: AbortSignal): Promise<ReviewOutcome> {
    return this.target!.review(submission, signal);
  }
}

describe('statement review through the Postgres proxy', () => {
  let cluster: PgCluster;
  let fx: ProxyFixture;
  let api: ApiServer;
  let url: string;
  let login: ProxyLogin;

  before(async () => {
    cluster = await startPgCluster();
    const reviewer = new LateReviewer();
    fx = await startProxyFixture(
      cluster,
      {
        guardrails: {
          rules: [
            {
              name: 'review-deletes',
              match: { kinds: ['delete'] },
              action: 'review',
              message: 'deletes on app-db need a second pair of eyes',
              timeout: '2m',
            },
          ],
        },
      },
      { reviewer },
    );
    reviewer.target = fx.broker.app.reviews;
    api = new ApiServer({
      broker: fx.broker.app.broker,
      store: fx.broker.store,
      tokens: [{ name: 'bot', role: 'service', secret: new Secret(TOKEN) }],
      logger: createLogger({ level: 'silent', destination: fx.broker.logs }),
      extraRoutes: createReviewRoutes(fx.broker.app.reviews),
    });
    url = `http://127.0.0.1:${(await api.listen(0, '127.0.0.1')).port}`;
    login = await fx.grant('write');
  });
  after(async () => {
    await api?.close();
    await fx?.close();
    await cluster?.stop();
  });

  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    return { status: res.status, body: (await res.json()) as ApiAnswer };
  };

  const pendingReview = () =>
    waitFor(
      async () => (await call('GET', '/v1/reviews?state=pending')).body.reviews[0],
      20_000,
      'a pending review',
    );

  const customers = async (name: string) =>
    (
      await execSql(
        cluster,
        fx.database,
        `SELECT count(*)::int AS n FROM invoices WHERE customer = '${name}'`,
      )
    )[0]!.rows[0].n as number;

  it('holds a DELETE until an approver approves it through the API; then it runs once', async () => {
    const psql = runPsql(login, "DELETE FROM invoices WHERE customer = 'acme'");
    const review = await pendingReview();
    assert.equal(review.rule, 'review-deletes');
    assert.equal(review.requester, 'carol');
    assert.match(review.statement, /DELETE FROM invoices/);
    assert.equal(await customers('acme'), 1, 'nothing ran while held');
    // Other sessions are not held up.
    const other = await runPsql(login, 'SELECT 41 + 1');
    assert.equal(other.stdout, '42');
    // Bad input changes nothing: the requester, an outsider, an unknown id.
    const self = await call('POST', `/v1/reviews/${review.id}/approve`, { actor: 'carol' });
    assert.equal(self.status, 403);
    assert.equal(self.body.error.code, 'ERR_APPROVAL_SELF');
    const outsider = await call('POST', `/v1/reviews/${review.id}/approve`, { actor: 'sam' });
    assert.equal(outsider.body.error.code, 'ERR_APPROVAL_NOT_ELIGIBLE');
    const unknown = await call('POST', '/v1/reviews/v_nope/approve', { actor: 'maria' });
    assert.equal(unknown.status, 404);
    assert.equal((await call('GET', '/v1/reviews?state=bogus')).body.error.code, 'ERR_API_BAD_REQUEST');
    assert.equal(await customers('acme'), 1);
    const approved = await call('POST', `/v1/reviews/${review.id}/approve`, { actor: 'maria', reason: 'ok' });
    assert.equal(approved.status, 200);
    assert.equal(approved.body.review.state, 'approved');
    const result = await psql;
    assert.ok(result.ok, result.stderr);
    assert.equal(result.stdout, 'DELETE 1');
    assert.equal(await customers('acme'), 0);
    const twice = await call('POST', `/v1/reviews/${review.id}/deny`, { actor: 'maria' });
    assert.equal(twice.status, 409);
  });

  it('refuses a denied DELETE with SQLSTATE 42501 naming the approver; the row stays', async () => {
    const psql = runPsql(login, "DELETE FROM invoices WHERE customer = 'globex'");
    const review = await pendingReview();
    const denied = await call('POST', `/v1/reviews/${review.id}/deny`, { actor: 'maria', reason: 'not now' });
    assert.equal(denied.body.review.state, 'denied');
    const result = await psql;
    assert.equal(result.ok, false);
    assert.match(
      result.stderr,
      /Warden blocked this statement \(rule review-deletes\): denied by maria: not now/,
    );
    assert.equal(await customers('globex'), 1);
  });

  it('a CancelRequest while held ends the wait with 57014 and withdraws the review', async () => {
    const sql = postgres({ ...postgresOptions(login), max: 1 });
    try {
      const held = sql`DELETE FROM invoices WHERE customer = 'globex'`;
      const cancelled = assert.rejects(held, (e: { code?: string }) => e.code === '57014');
      const review = await pendingReview();
      held.cancel();
      await cancelled;
      await waitFor(
        async () => (await fx.broker.app.reviews.get(review.id)).state === 'expired',
        10_000,
        'expiry',
      );
      assert.equal(await customers('globex'), 1);
      // The session goes on.
      assert.equal((await sql`select 1 as one`)[0]!.one, 1);
    } finally {
      await sql.end();
    }
  });

  it('ends the session and expires the review when the grant is revoked while a statement is held', async () => {
    const other = await fx.grant('write');
    const client = new pg.Client({ ...other });
    await client.connect();
    client.on('error', () => {});
    const held = client.query("DELETE FROM invoices WHERE customer = 'globex'").then(
      () => ({ code: 'none' }),
      (error: { code?: string }) => error,
    );
    const review = await pendingReview();
    await fx.broker.app.broker.revoke(other.grantId, { id: 'carol', admin: false }, 'done');
    // The FATAL message answers the held query.
    assert.equal((await held).code, '57P01');
    await waitFor(
      async () => (await fx.broker.app.reviews.get(review.id)).state === 'expired',
      10_000,
      'expiry',
    );
    assert.equal(await customers('globex'), 1);
    await client.end().catch(() => {});
  });

  it('records the review outcome on the statement in the session timeline', async () => {
    await waitFor(
      async () =>
        (await fx.broker.store.listSessions({ grantId: login.grantId })).filter((s) => s.endedAt !== null)
          .length >= 4,
      20_000,
      'the recorded sessions',
    );
    const sessions = await fx.broker.store.listSessions({ grantId: login.grantId });
    const outcomes: string[] = [];
    for (const session of sessions) {
      for (const event of await fx.broker.store.listSessionEvents(session.id)) {
        const review = event.data.review as { outcome?: string; by?: string } | undefined;
        if (review) outcomes.push(`${event.kind}:${review.outcome}:${review.by}`);
      }
    }
    assert.deepEqual(outcomes.sort(), [
      'blocked:cancelled:undefined',
      'blocked:denied:maria',
      'statement:approved:maria',
    ]);
  });
});
