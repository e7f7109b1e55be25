/**
 * Statement review in Slack, against the Slack stand-in: the held statement is posted in the
 * grant's request thread (code block, rule, requester, Approve/Deny), clicks are checked by the
 * broker (outsiders and unknown ids change nothing), and the message is updated in place.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { renderReview } from '../../../bot/core/render.ts';
import { renderReviewBlocks } from '../../../bot/slack/blocks.ts';
import type { AccessRequest, StatementReview } from '../../../broker/model.ts';
import type { ReviewOutcome } from '../../../broker/ports/proxy.ts';
import { waitFor } from '../../helpers/broker-fixture.ts';
import { type PgCluster, startPgCluster } from '../../helpers/pg-cluster.ts';
import { type SlackHarness, startSlackHarness } from '../../helpers/slack-harness.ts';
import type { StandinMessage } from '../../helpers/slack-standin.ts';

async function until<T>(check: () => T | undefined, what: string): Promise<T> {
  return (await waitFor(check, 10_000, what)) as T;
}

describe('statement review in Slack', () => {
  let cluster: PgCluster;
  let h: SlackHarness;
  let grant: AccessRequest;
  let root: StandinMessage;

  before(async () => {
    cluster = await startPgCluster();
    h = await startSlackHarness(cluster);
    // Carol is on call: auto-approved; maria (her manager) and the dba group approve for her grant.
    grant = await h.fx.app.broker.request({
      requester: 'carol',
      target: 'app-db',
      level: 'read',
      duration: '30m',
      reason: 'billing bug',
      source: 'chat',
    });
    root = await until(
      () => h.standin.messages.find((m) => !m.threadTs && JSON.stringify(m.blocks ?? []).includes(grant.id)),
      'the grant root message',
    );
  });
  after(async () => {
    await h?.close();
    await cluster?.stop();
  });

  const hold = (statement: string): { outcome: Promise<ReviewOutcome>; message: Promise<StandinMessage> } => {
    const outcome = h.fx.app.reviews.review(
      {
        grantId: grant.id,
        sessionId: 's_slack',
        statement,
        rule: 'review-deletes',
        message: 'deletes need review',
        timeoutMs: 120_000,
      },
      new AbortController().signal,
    );
    const message = until(
      () =>
        h.standin.messages.find(
          (m) => m.threadTs === root.ts && JSON.stringify(m.blocks ?? []).includes(statement.slice(0, 30)),
        ),
      'the review message in the thread',
    );
    return { outcome, message };
  };

  const reviewIdOf = (message: StandinMessage) =>
    /"value":"(v[0-9a-z]{10})"/.exec(JSON.stringify(message.blocks))![1]!;

  it('posts the statement in the request thread with buttons; an approver approves; the message updates', async () => {
    const { outcome, message } = hold("DELETE FROM invoices WHERE customer = 'acme'");
    const posted = await message;
    const blocks = JSON.stringify(posted.blocks);
    assert.equal(posted.channel, root.channel);
    assert.match(blocks, /```DELETE FROM invoices WHERE customer = 'acme'```/);
    assert.match(blocks, /review-deletes/);
    assert.match(blocks, /Requester\*\\n@carol/);
    assert.match(blocks, /"action_id":"warden_review_approve"/);
    assert.match(blocks, /"action_id":"warden_review_deny"/);
    const id = reviewIdOf(posted);

    let mark = h.standin.ephemerals.length;
    await h.driver.click('UALICE', 'warden_review_approve', id, posted);
    await until(
      () =>
        h.standin.ephemerals.slice(mark).find((e) => e.user === 'UALICE' && /not an approver/.test(e.text)),
      'the outsider is told',
    );
    await h.driver.click('UMARIA', 'warden_review_approve', 'v0000000000', posted);
    await until(
      () =>
        h.standin.ephemerals.slice(mark).find((e) => e.user === 'UMARIA' && /does not exist/.test(e.text)),
      'an unknown review id is refused',
    );
    assert.equal((await h.fx.app.reviews.get(id)).state, 'pending');

    await h.driver.click('UMARIA', 'warden_review_approve', id, posted);
    assert.equal((await outcome).decision, 'approved');
    await waitFor(
      () => posted.updates > 0 && /Approved by/.test(JSON.stringify(posted.blocks)),
      10_000,
      'update',
    );
    assert.doesNotMatch(JSON.stringify(posted.blocks), /warden_review_approve/, 'no buttons once decided');
    assert.match(JSON.stringify(posted.blocks), /Approved by <@UMARIA>/);

    mark = h.standin.ephemerals.length;
    await h.driver.click('UBOB', 'warden_review_deny', id, posted);
    await until(
      () =>
        h.standin.ephemerals.slice(mark).find((e) => e.user === 'UBOB' && /already approved/.test(e.text)),
      'deciding twice is refused',
    );
  });

  it('a deny click refuses the statement and shows who denied it', async () => {
    const { outcome, message } = hold('DELETE FROM invoices WHERE id = 2');
    const posted = await message;
    await h.driver.click('UBOB', 'warden_review_deny', reviewIdOf(posted), posted);
    const result = await outcome;
    assert.equal(result.decision, 'denied');
    assert.ok(result.decision === 'denied' && result.by === 'bob');
    await waitFor(() => /Denied by/.test(JSON.stringify(posted.blocks)), 10_000, 'update');
  });
});

describe('renderReviewBlocks', () => {
  const review: StatementReview = {
    id: 'v0123456789',
    grantId: 'r0123456789',
    requester: 'carol',
    target: 'app-db',
    level: 'read',
    sessionId: 's_1',
    statement: `DELETE FROM t WHERE note = '\`\`\`'; ${'x'.repeat(5000)}`,
    rule: 'review-deletes',
    message: 'deletes need review',
    state: 'pending',
    createdAt: 0,
    deadline: 60_000,
    decidedAt: null,
    decidedBy: null,
    decisionReason: null,
    version: 1,
    meta: {},
    heldAt: null,
  };

  it('cuts long statements and keeps a fence inside the statement from closing the code block', () => {
    const blocks = renderReviewBlocks(renderReview(review));
    const code = blocks[1]!.text.text as string;
    assert.ok(code.length <= 3000);
    assert.ok(code.startsWith('```') && code.endsWith('```'));
    assert.equal(code.slice(3, -3).includes('```'), false);
  });

  it('shows no buttons once decided', () => {
    const blocks = renderReviewBlocks(
      renderReview({ ...review, state: 'expired', decidedBy: 'warden', decisionReason: 'timed out' }),
    );
    assert.equal(
      blocks.some((b) => b.type === 'actions'),
      false,
    );
    assert.match(JSON.stringify(blocks), /Expired \(timed out\)/);
  });
});
