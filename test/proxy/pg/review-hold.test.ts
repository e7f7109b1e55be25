/**
 * The review hold on its own: what it asks the reviewer, how it keeps the client's later input
 * (in order, bounded, in bytes of its own), and what it hands the relay at each outcome.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ReviewOutcome, ReviewSubmission, StatementReviewer } from '../../../broker/ports/proxy.ts';
import type { Verdict } from '../../../proxy/guardrails/sql/index.ts';
import { isPgProxyError } from '../../../proxy/pg/errors.ts';
import { type FrontendMessage, FrontendParser } from '../../../proxy/pg/protocol/frontend-parser.ts';
import { type HeldMessage, MAX_HELD_INPUT, ReviewHold, refusalOf } from '../../../proxy/pg/review-hold.ts';
import { frontend } from './protocol/test-buffers.ts';

const VERDICT: Verdict = {
  action: 'review',
  rule: 'review-deletes',
  message: 'deletes need a second pair of eyes',
  timeoutMs: 120_000,
  statements: [],
};

function messageOf(bytes: Buffer): FrontendMessage {
  let message: FrontendMessage | undefined;
  new FrontendParser({ phase: 'normal' }).feed(bytes, (m) => {
    message = m;
  });
  return message!;
}

class ManualReviewer implements StatementReviewer {
  readonly asked: {
    submission: ReviewSubmission;
    signal: AbortSignal;
    decide: (o: ReviewOutcome) => void;
    fail: () => void;
  }[] = [];
  review(submission: ReviewSubmission, signal: AbortSignal): Promise<ReviewOutcome> {
    return new Promise((resolve, reject) =>
      this.asked.push({ submission, signal, decide: resolve, fail: () => reject(new Error('store down')) }),
    );
  }
}

function createHold(options: { onReceive?: (hold: ReviewHold, message: FrontendMessage) => void } = {}) {
  const reviewer = new ManualReviewer();
  const events: unknown[][] = [];
  let now = 5_000;
  const hold: ReviewHold = new ReviewHold({
    reviewer,
    ids: { grantId: 'r_grant', sessionId: 's_one' },
    clock: () => now,
    host: {
      settle: (message, verdict, outcome, review) =>
        events.push(['settle', (message as { sql: string }).sql, verdict.rule, outcome.decision, review]),
      receive: (message) => {
        events.push(['receive', message.type === 'query' ? message.sql : message.type]);
        options.onReceive?.(hold, message);
      },
      beginOutput: () => events.push(['begin']),
      endOutput: () => events.push(['end']),
    },
    onHold: (holding) => events.push(['onHold', holding]),
    onFail: (error) => events.push(['onFail', (error as Error).message]),
  });
  const deleteAll = messageOf(frontend.query('delete from t')) as HeldMessage;
  return { hold, reviewer, events, deleteAll, advance: (ms: number) => (now += ms) };
}

const flush = () => new Promise((resolve) => setImmediate(resolve));

describe('ReviewHold', () => {
  it('asks the reviewer with the recorded text, the rule and its timeout', () => {
    const { hold, reviewer, events, deleteAll } = createHold();
    hold.hold(deleteAll, VERDICT, 'delete from t');
    assert.equal(hold.holding, true);
    assert.deepEqual(reviewer.asked[0]!.submission, {
      grantId: 'r_grant',
      sessionId: 's_one',
      statement: 'delete from t',
      rule: 'review-deletes',
      message: 'deletes need a second pair of eyes',
      timeoutMs: 120_000,
    });
    assert.deepEqual(events, [['onHold', true]]);
  });

  it('on approval, settles the statement and then the kept input, in order, and lets the client go on', async () => {
    const { hold, reviewer, events, deleteAll, advance } = createHold();
    hold.hold(deleteAll, VERDICT, 'delete from t');
    hold.keep(messageOf(frontend.query('select 1')));
    hold.keep(messageOf(frontend.sync()));
    advance(1_500);
    reviewer.asked[0]!.decide({ decision: 'approved', reviewId: 'v1', by: 'maria', reason: 'ok' });
    await flush();
    assert.equal(hold.holding, false);
    assert.deepEqual(events.slice(1), [
      ['begin'],
      [
        'settle',
        'delete from t',
        'review-deletes',
        'approved',
        { outcome: 'approved', waitedMs: 1_500, id: 'v1', by: 'maria', reason: 'ok' },
      ],
      ['receive', 'select 1'],
      ['receive', 'sync'],
      ['end'],
      ['onHold', false],
    ]);
  });

  it('keeps its own copy of each message: the reused read buffer may be overwritten', async () => {
    const { hold, reviewer, events, deleteAll } = createHold();
    hold.hold(deleteAll, VERDICT, 'delete from t');
    const bytes = frontend.query('select 1');
    hold.keep(messageOf(bytes));
    bytes.fill(0x41, 5);
    reviewer.asked[0]!.decide({ decision: 'denied', reviewId: 'v1', by: 'maria', reason: '' });
    await flush();
    assert.deepEqual(
      events.find((e) => e[0] === 'receive'),
      ['receive', 'select 1'],
    );
  });

  it(`refuses more than ${MAX_HELD_INPUT} bytes of kept input (ERR_PGPROXY_HELD_INPUT)`, () => {
    const { hold, deleteAll } = createHold();
    hold.hold(deleteAll, VERDICT, 'delete from t');
    const big = messageOf(frontend.query('x'.repeat(64 * 1024)));
    assert.throws(
      () => {
        for (let i = 0; i < 20; i++) hold.keep(big);
      },
      (error) => isPgProxyError(error) && error.code === 'ERR_PGPROXY_HELD_INPUT',
    );
  });

  it('a CancelRequest withdraws the review and settles the statement as cancelled', () => {
    const { hold, reviewer, events, deleteAll } = createHold();
    assert.equal(hold.cancel(), false, 'nothing held: the server gets the cancel');
    hold.hold(deleteAll, VERDICT, 'delete from t');
    assert.equal(hold.cancel(), true);
    assert.equal(reviewer.asked[0]!.signal.aborted, true);
    assert.equal(events.find((e) => e[0] === 'settle')![3], 'cancelled');
    assert.equal(hold.holding, false);
  });

  it('a reviewer that cannot record the review counts as an expiry (the statement does not run)', async () => {
    const { hold, reviewer, events, deleteAll } = createHold();
    hold.hold(deleteAll, VERDICT, 'delete from t');
    reviewer.asked[0]!.fail();
    await flush();
    const settled = events.find((e) => e[0] === 'settle')!;
    assert.equal(settled[3], 'expired');
    assert.deepEqual(settled[4], { outcome: 'expired', waitedMs: 0, reason: 'review unavailable' });
  });

  it('after close, an outcome that arrives late changes nothing', async () => {
    const { hold, reviewer, events, deleteAll } = createHold();
    hold.hold(deleteAll, VERDICT, 'delete from t');
    hold.close();
    assert.equal(reviewer.asked[0]!.signal.aborted, true);
    reviewer.asked[0]!.decide({ decision: 'approved', reviewId: 'v1', by: 'maria', reason: '' });
    await flush();
    assert.deepEqual(events, [['onHold', true]]);
  });

  it('a second held statement in the kept input holds the rest behind it', async () => {
    const { hold, reviewer, events, deleteAll } = createHold({
      onReceive: (h, message) => {
        if (message.type === 'query' && message.sql.startsWith('delete'))
          h.hold(message as HeldMessage, VERDICT, message.sql);
      },
    });
    hold.hold(deleteAll, VERDICT, 'delete from t');
    hold.keep(messageOf(frontend.query('delete from u')));
    hold.keep(messageOf(frontend.query('select after')));
    reviewer.asked[0]!.decide({ decision: 'approved', reviewId: 'v1', by: 'maria', reason: '' });
    await flush();
    assert.equal(hold.holding, true);
    assert.equal(reviewer.asked.length, 2);
    assert.ok(!events.some((e) => e[0] === 'receive' && e[1] === 'select after'), 'the rest waits');
    assert.ok(!events.some((e) => e[0] === 'onHold' && e[1] === false), 'the client stays paused');
    reviewer.asked[1]!.decide({ decision: 'approved', reviewId: 'v2', by: 'maria', reason: '' });
    await flush();
    assert.deepEqual(events.at(-3), ['receive', 'select after']);
    assert.deepEqual(events.at(-1), ['onHold', false]);
  });

  it('a failure while the kept input is processed ends the session (onFail), the output closed', async () => {
    const { hold, reviewer, events, deleteAll } = createHold({
      onReceive: () => {
        throw new Error('protocol error');
      },
    });
    hold.hold(deleteAll, VERDICT, 'delete from t');
    hold.keep(messageOf(frontend.query('select 1')));
    reviewer.asked[0]!.decide({ decision: 'approved', reviewId: 'v1', by: 'maria', reason: '' });
    await flush();
    assert.deepEqual(events.slice(-2), [['onFail', 'protocol error'], ['end']]);
  });
});

describe('refusalOf', () => {
  for (const [outcome, code, message] of [
    [
      { decision: 'cancelled' },
      '57014',
      /canceling statement due to user request \(it was waiting for review under rule r\)/,
    ],
    [
      { decision: 'denied', reviewId: 'v', by: 'maria', reason: 'not now' },
      '42501',
      /\(rule r\): denied by maria: not now$/,
    ],
    [{ decision: 'denied', reviewId: 'v', by: 'maria', reason: '' }, '42501', /denied by maria$/],
    [{ decision: 'expired', reviewId: 'v', reason: 'timed out' }, '42501', /review timed out$/],
    [
      { decision: 'expired', reviewId: 'v', reason: 'the grant ended' },
      '42501',
      /review timed out \(the grant ended\)$/,
    ],
  ] as const) {
    it(`${outcome.decision}${'reason' in outcome ? ` (${outcome.reason || 'no reason'})` : ''}: ${code}`, () => {
      const notice = refusalOf('r', outcome);
      assert.equal(notice.code, code);
      assert.match(notice.message, message);
      assert.deepEqual(notice.extra, [['R', 'warden_review']]);
    });
  }
});
