/**
 * Statement reviews in the broker, on both stores: who may decide (the approvers of the grant's
 * level, never the requester), compare-and-set transitions under races, expiry at the deadline,
 * on withdrawal and at the grant's end, audit entries and events. Bad input changes nothing.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '../../../broker/log.ts';
import type { AccessRequest } from '../../../broker/model.ts';
import type { ReviewSubmission } from '../../../broker/ports/proxy.ts';
import type { Actor } from '../../../broker/requests/broker.ts';
import { StatementReviews } from '../../../broker/reviews/reviews.ts';
import {
  type BrokerFixture,
  LogCapture,
  type StoreKind,
  startBrokerFixture,
} from '../../helpers/broker-fixture.ts';
import { type PgCluster, startPgCluster } from '../../helpers/pg-cluster.ts';

const person = (id: string): Actor => ({ id, admin: false });

function submission(grant: AccessRequest, timeoutMs = 60_000): ReviewSubmission {
  return {
    grantId: grant.id,
    sessionId: 's_test',
    statement: "DELETE FROM invoices WHERE customer = 'tok_1'",
    rule: 'review-deletes',
    message: 'deletes need review',
    timeoutMs,
  };
}

/** Carol is on call: her read grants are auto-approved; maria (her manager) and the dba group approve. */
async function activeGrant(fx: BrokerFixture): Promise<AccessRequest> {
  const grant = await fx.app.broker.request({
    requester: 'carol',
    target: 'app-db',
    level: 'read',
    duration: '30m',
    reason: 'looking into a billing bug',
    source: 'cli',
  });
  assert.equal(grant.state, 'active');
  return grant;
}

/** Starts a review and waits until it is stored. */
async function startReview(fx: BrokerFixture, grant: AccessRequest, controller = new AbortController()) {
  const outcome = fx.app.reviews.review(submission(grant), controller.signal);
  for (;;) {
    const [pending] = await fx.app.reviews.list({ grantId: grant.id, states: ['pending'] });
    if (pending) return { review: pending, outcome, controller };
    await new Promise((r) => setImmediate(r));
  }
}

const codeOf = (code: string) => (error: unknown) => (error as { code?: string }).code === code;

for (const kind of ['embedded', 'postgres'] as StoreKind[]) {
  describe(`statement reviews (${kind} store)`, () => {
    let cluster: PgCluster;
    let fx: BrokerFixture;

    before(async () => {
      cluster = await startPgCluster();
      fx = await startBrokerFixture(kind, cluster);
    });
    after(async () => {
      await fx?.close();
      await cluster?.stop();
    });

    it('an approver of the grant approves: the outcome names them, audited and published', async () => {
      const grant = await activeGrant(fx);
      const { review, outcome } = await startReview(fx, grant);
      assert.equal(review.requester, 'carol');
      assert.equal(review.level, 'read');
      const approved = await fx.app.reviews.approve(review.id, person('bob'), 'looks fine');
      assert.equal(approved.state, 'approved');
      assert.equal(approved.decidedBy, 'bob');
      assert.deepEqual(await outcome, {
        decision: 'approved',
        reviewId: review.id,
        by: 'bob',
        reason: 'looks fine',
      });
      const types = fx.events.filter((e) => e.type.startsWith('review.')).map((e) => e.type);
      assert.deepEqual(types.slice(-2), ['review.requested', 'review.decided']);
      const audit = await fx.store.readAudit({ limit: 10_000 });
      assert.ok(audit.some((e) => e.action === 'review.requested' && e.subject === review.id));
      assert.ok(
        audit.some((e) => e.action === 'review.approved' && e.subject === review.id && e.actor === 'bob'),
      );
    });

    it('refuses the requester, people outside the approvers and unknown people, and changes nothing', async () => {
      const grant = await activeGrant(fx);
      const { review, controller } = await startReview(fx, grant);
      await assert.rejects(fx.app.reviews.approve(review.id, person('carol')), codeOf('ERR_APPROVAL_SELF'));
      await assert.rejects(fx.app.reviews.deny(review.id, person('carol')), codeOf('ERR_APPROVAL_SELF'));
      await assert.rejects(
        fx.app.reviews.approve(review.id, person('sam')),
        codeOf('ERR_APPROVAL_NOT_ELIGIBLE'),
      );
      await assert.rejects(
        fx.app.reviews.approve(review.id, person('mallory')),
        codeOf('ERR_APPROVAL_NOT_ELIGIBLE'),
      );
      // An admin token acting as itself is no approver either (deny by default).
      await assert.rejects(
        fx.app.reviews.approve(review.id, { id: 'admin:ops', admin: true }),
        codeOf('ERR_APPROVAL_NOT_ELIGIBLE'),
      );
      const after = await fx.app.reviews.get(review.id);
      assert.equal(after.state, 'pending');
      assert.equal(after.version, review.version);
      const audit = await fx.store.readAudit({ limit: 10_000 });
      assert.ok(audit.some((e) => e.action === 'review.refused' && e.actor === 'sam'));
      controller.abort();
    });

    it('unknown ids and a second decision are refused with a code', async () => {
      await assert.rejects(fx.app.reviews.approve('v_nope', person('bob')), codeOf('ERR_NOT_FOUND'));
      await assert.rejects(fx.app.reviews.deny('x'.repeat(500), person('bob')), codeOf('ERR_NOT_FOUND'));
      const grant = await activeGrant(fx);
      const { review, outcome } = await startReview(fx, grant);
      await fx.app.reviews.deny(review.id, person('maria'), 'not in prod');
      await assert.rejects(fx.app.reviews.approve(review.id, person('bob')), codeOf('ERR_STATE_CONFLICT'));
      await assert.rejects(fx.app.reviews.deny(review.id, person('maria')), codeOf('ERR_STATE_CONFLICT'));
      const stored = await fx.app.reviews.get(review.id);
      assert.equal(stored.state, 'denied');
      assert.equal(stored.decidedBy, 'maria');
      assert.deepEqual(await outcome, {
        decision: 'denied',
        reviewId: review.id,
        by: 'maria',
        reason: 'not in prod',
      });
    });

    it('two approvers racing: exactly one decision wins', async () => {
      const grant = await activeGrant(fx);
      const { review, outcome } = await startReview(fx, grant);
      const results = await Promise.allSettled([
        fx.app.reviews.approve(review.id, person('bob')),
        fx.app.reviews.deny(review.id, person('dana'), 'no'),
        fx.app.reviews.approve(review.id, person('maria')),
      ]);
      const won = results.filter((r) => r.status === 'fulfilled');
      assert.equal(won.length, 1);
      for (const r of results) if (r.status === 'rejected') assert.ok(codeOf('ERR_STATE_CONFLICT')(r.reason));
      const decided = (won[0] as PromiseFulfilledResult<{ decidedBy: string; state: string }>).value;
      const result = await outcome;
      assert.equal(result.decision, decided.state);
      assert.equal((await fx.app.reviews.get(review.id)).decidedBy, decided.decidedBy);
    });

    it('a withdrawn review expires and can no longer be approved', async () => {
      const grant = await activeGrant(fx);
      const { review, outcome, controller } = await startReview(fx, grant);
      controller.abort();
      const result = await outcome;
      assert.equal(result.decision, 'expired');
      await assert.rejects(fx.app.reviews.approve(review.id, person('bob')), codeOf('ERR_STATE_CONFLICT'));
      assert.equal((await fx.app.reviews.get(review.id)).decidedBy, 'warden');
    });

    it('a review expires when its grant is revoked', async () => {
      const grant = await activeGrant(fx);
      const { review, outcome } = await startReview(fx, grant);
      await fx.app.broker.revoke(grant.id, person('carol'), 'done');
      assert.deepEqual(await outcome, {
        decision: 'expired',
        reviewId: review.id,
        reason: 'the grant ended',
      });
    });

    it('a review past its deadline expires (timer and sweep) and refuses late decisions', async () => {
      const grant = await activeGrant(fx);
      const result = await fx.app.reviews.review(submission(grant, 1_000), new AbortController().signal);
      assert.equal(result.decision, 'expired');
      assert.equal((await fx.app.reviews.get(result.reviewId)).decisionReason, 'timed out');
      // A review left pending by a process that went away: the next sweep expires it.
      let now = Date.now();
      const reviews = new StatementReviews({
        store: fx.store,
        broker: fx.app.broker,
        events: fx.app.broker.events,
        logger: createLogger({ level: 'silent', destination: new LogCapture() }),
        clock: () => now,
      });
      void reviews.review(submission(grant), new AbortController().signal);
      let pending: { id: string } | undefined;
      while (!pending) {
        [pending] = await reviews.list({ grantId: grant.id, states: ['pending'] });
        await new Promise((r) => setImmediate(r));
      }
      now += 61_000;
      await reviews.sweep();
      assert.equal((await reviews.get(pending.id)).state, 'expired');
      await assert.rejects(reviews.approve(pending.id, person('bob')), codeOf('ERR_STATE_CONFLICT'));
      reviews.stop();
    });

    /** A second Warden process on the same store, holding statements every `holdIntervalMs`. */
    const replica = (holdIntervalMs = 50) =>
      new StatementReviews({
        store: fx.store,
        broker: fx.app.broker,
        events: fx.app.broker.events,
        logger: createLogger({ level: 'silent', destination: new LogCapture() }),
        holdIntervalMs,
      });
    const within = <T>(promise: Promise<T>, ms: number, what: string) =>
      Promise.race([
        promise,
        new Promise<never>((_, reject) =>
          setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms),
        ),
      ]);

    it('a decision taken on another replica reaches the waiting statement within a holding interval', async () => {
      const grant = await activeGrant(fx);
      const [holder, other] = [replica(), replica()];
      try {
        const outcome = holder.review(submission(grant), new AbortController().signal);
        let pending: { id: string } | undefined;
        while (!pending) [pending] = await other.list({ grantId: grant.id, states: ['pending'] });
        await other.approve(pending.id, person('bob'), 'fine');
        const result = await within(outcome, 5_000, 'the approval on the other replica');
        assert.deepEqual(result, { decision: 'approved', reviewId: pending.id, by: 'bob', reason: 'fine' });
      } finally {
        holder.stop();
        other.stop();
      }
    });

    it('regression: a review whose Warden stopped expires, and nobody can approve a statement that cannot run', async () => {
      const grant = await activeGrant(fx);
      const [holder, other, crashed] = [replica(), replica(), replica()];
      try {
        // One statement waits in a live process, two in processes that stop (a crash leaves the same).
        const live = holder.review(submission(grant), new AbortController().signal);
        void crashed.review(submission(grant), new AbortController().signal);
        void crashed.review(submission(grant), new AbortController().signal);
        let ids: string[] = [];
        while (ids.length < 3)
          ids = (await other.list({ grantId: grant.id, states: ['pending'] })).map((r) => r.id);
        crashed.stop();
        // Past 10 holding intervals: the live holder said it still holds its statement, the others did not.
        await new Promise((resolve) => setTimeout(resolve, 800));
        const states = await Promise.all(ids.map((id) => other.get(id)));
        const held = states.filter((r) => (r.heldAt ?? 0) > Date.now() - 500);
        assert.equal(held.length, 1, 'only the live process holds its statement');
        const orphans = states.filter((r) => r.id !== held[0]!.id);
        // An approval of an orphan is refused, and the review says why.
        await assert.rejects(other.approve(orphans[0]!.id, person('bob')), codeOf('ERR_STATE_CONFLICT'));
        // The sweep expires the other one; the live one stays pending.
        await other.sweep();
        for (const orphan of orphans) {
          const review = await other.get(orphan.id);
          assert.equal(review.state, 'expired');
          assert.equal(review.decisionReason, 'the Warden process holding the statement stopped');
        }
        assert.equal((await other.get(held[0]!.id)).state, 'pending');
        await other.approve(held[0]!.id, person('bob'));
        assert.equal((await within(live, 5_000, 'the live approval')).decision, 'approved');
      } finally {
        holder.stop();
        other.stop();
      }
    });

    it('a review of a grant that is not active is refused', async () => {
      const grant = await activeGrant(fx);
      await fx.app.broker.revoke(grant.id, person('carol'), 'done');
      await assert.rejects(
        fx.app.reviews.review(submission(grant), new AbortController().signal),
        codeOf('ERR_STATE_CONFLICT'),
      );
      await assert.rejects(
        fx.app.reviews.review({ ...submission(grant), grantId: 'r_unknown' }, new AbortController().signal),
        codeOf('ERR_STATE_CONFLICT'),
      );
    });
  });
}
