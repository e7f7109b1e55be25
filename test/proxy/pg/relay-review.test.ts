/**
 * Statement review in the relay core: a statement a `review` rule matches is held with the
 * client's later input kept in order, then forwarded exactly once on approval, or refused like a
 * blocked statement on denial, timeout or cancel.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ReviewOutcome, ReviewSubmission, StatementReviewer } from '../../../broker/ports/proxy.ts';
import { compileSqlGuardrails } from '../../../proxy/guardrails/sql/index.ts';
import { compileMasking, createMasker } from '../../../proxy/masking/index.ts';
import type { ByteSink } from '../../../proxy/pg/chunk-output.ts';
import { isPgProxyError } from '../../../proxy/pg/errors.ts';
import {
  type BackendMessage,
  BackendParser,
  decodeBackendMessage,
} from '../../../proxy/pg/protocol/backend-parser.ts';
import { type FrontendMessage, FrontendParser } from '../../../proxy/pg/protocol/frontend-parser.ts';
import { TransactionStatus } from '../../../proxy/pg/protocol/message-codes.ts';
import {
  encodeMessages,
  writeBind,
  writeCommandComplete,
  writeErrorResponse,
  writeExecute,
  writeParse,
  writeQuery,
  writeReadyForQuery,
  writeSync,
} from '../../../proxy/pg/protocol/serializer.ts';
import { type BlockedStatement, PgRelay } from '../../../proxy/pg/relay.ts';
import { MAX_HELD_INPUT } from '../../../proxy/pg/review-hold.ts';

class Sink implements ByteSink {
  readonly writes: Buffer[] = [];
  write(buffer: Buffer): boolean {
    this.writes.push(Buffer.from(buffer));
    return true;
  }
  cork(): void {}
  uncork(): void {}
  take(): Buffer {
    const bytes = Buffer.concat(this.writes);
    this.writes.length = 0;
    return bytes;
  }
}

/** A reviewer whose outcomes the test gives by hand. */
class ManualReviewer implements StatementReviewer {
  readonly asked: {
    submission: ReviewSubmission;
    signal: AbortSignal;
    decide: (o: ReviewOutcome) => void;
  }[] = [];
  review(submission: ReviewSubmission, signal: AbortSignal): Promise<ReviewOutcome> {
    return new Promise((resolve) => this.asked.push({ submission, signal, decide: resolve }));
  }
}

const GUARDRAILS = {
  rules: [
    {
      name: 'review-deletes',
      match: { kinds: ['delete'] },
      action: 'review',
      message: 'deletes need a second pair of eyes',
      timeout: '2m',
    },
  ],
};

function createRelay(other?: StatementReviewer) {
  const upstream = new Sink();
  const client = new Sink();
  const reviewer = new ManualReviewer();
  const recorded: { kind: string; data: Record<string, unknown> }[] = [];
  const holds: boolean[] = [];
  const failures: unknown[] = [];
  const blocked: BlockedStatement[] = [];
  const relay = new PgRelay({
    guardrails: compileSqlGuardrails(GUARDRAILS),
    masker: createMasker(compileMasking({})),
    level: 'write',
    groups: [],
    recordRows: false,
    catalog: undefined,
    toUpstream: upstream,
    toClient: client,
    record: (kind, data) => recorded.push({ kind, data }),
    token: 'feedface',
    clock: () => 1000,
    reviewer: other ?? reviewer,
    review: { grantId: 'r_grant', sessionId: 's_one' },
    onHold: (holding) => holds.push(holding),
    onFail: (error) => failures.push(error),
    onBlocked: (b) => blocked.push(b),
  });
  return { relay, upstream, client, reviewer, recorded, holds, failures, blocked };
}

function sentBy(bytes: Buffer): FrontendMessage[] {
  const out: FrontendMessage[] = [];
  new FrontendParser({ phase: 'normal' }).feed(bytes, (m) => out.push(m));
  return out;
}

function receivedBy(bytes: Buffer): BackendMessage[] {
  const out: BackendMessage[] = [];
  new BackendParser().feed(bytes, (_c, raw) => out.push(decodeBackendMessage(Buffer.from(raw))));
  return out;
}

/** Lets the reviewer's promise settle (its `then` runs in a microtask). */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

/** The server's answer to a substituted statement. */
function rejectSubstitute(relay: PgRelay, n: number): void {
  relay.feedUpstream(
    encodeMessages((w) => {
      writeErrorResponse(w, {
        severity: 'ERROR',
        code: '42601',
        message: `syntax error at or near "warden_blocked_feedface_${n}"`,
      });
      writeReadyForQuery(w, TransactionStatus.Idle);
    }),
  );
}

const DELETE = "DELETE FROM orders WHERE note = 'card 4111 1111 1111 1111'";

describe('PgRelay statement review', () => {
  it('holds a Query, keeps later input, and forwards both exactly once on approval', async () => {
    const { relay, upstream, reviewer, recorded, holds } = createRelay();
    relay.feedClient(
      encodeMessages((w) => {
        writeQuery(w, DELETE);
        writeQuery(w, 'SELECT 1');
      }),
    );
    assert.equal(upstream.take().length, 0);
    assert.ok(relay.holding);
    assert.deepEqual(holds, [true]);
    assert.equal(reviewer.asked.length, 1);
    const { submission } = reviewer.asked[0]!;
    assert.equal(submission.rule, 'review-deletes');
    assert.equal(submission.timeoutMs, 120_000);
    assert.equal(submission.grantId, 'r_grant');
    assert.equal(submission.sessionId, 's_one');
    assert.doesNotMatch(submission.statement, /4111 1111 1111 1111/, 'the reviewer sees the masked text');
    relay.feedClient(encodeMessages((w) => writeQuery(w, 'SELECT 2')));
    assert.equal(upstream.take().length, 0, 'input after the held statement waits');
    reviewer.asked[0]!.decide({ decision: 'approved', reviewId: 'v_1', by: 'maria', reason: '' });
    await settle();
    const sent = sentBy(upstream.take());
    assert.deepEqual(
      sent.map((m) => (m.type === 'query' ? m.sql : m.type)),
      [DELETE, 'SELECT 1', 'SELECT 2'],
    );
    assert.deepEqual(holds, [true, false]);
    relay.feedUpstream(
      encodeMessages((w) => {
        writeCommandComplete(w, 'DELETE 1');
        writeReadyForQuery(w, TransactionStatus.Idle);
      }),
    );
    assert.equal(recorded[0]!.kind, 'statement');
    assert.deepEqual(recorded[0]!.data.review, { outcome: 'approved', waitedMs: 0, id: 'v_1', by: 'maria' });
    reviewer.asked[0]!.decide({ decision: 'approved', reviewId: 'v_1', by: 'maria', reason: '' });
    await settle();
    assert.equal(upstream.take().length, 0, 'a second outcome forwards nothing');
  });

  it('holds a Parse in a pipeline and replaces it on denial; the rest of the pipeline follows in order', async () => {
    const { relay, upstream, client, reviewer, recorded } = createRelay();
    relay.feedClient(
      encodeMessages((w) => {
        writeParse(w, { name: '', sql: DELETE });
        writeBind(w, { portal: '', statement: '', parameters: [] });
        writeExecute(w, '', 0);
        writeSync(w);
      }),
    );
    assert.equal(upstream.take().length, 0);
    reviewer.asked[0]!.decide({ decision: 'denied', reviewId: 'v_2', by: 'maria', reason: 'not today' });
    await settle();
    const sent = sentBy(upstream.take());
    assert.deepEqual(
      sent.map((m) => m.type),
      // The relay's own Describe asks for the portal's columns (masking needs them).
      ['parse', 'bind', 'describe', 'execute', 'sync'],
    );
    assert.ok(sent[0]!.type === 'parse' && sent[0]!.sql === 'warden_blocked_feedface_1');
    rejectSubstitute(relay, 1);
    const [error, ready] = receivedBy(client.take());
    assert.ok(error?.type === 'errorResponse');
    assert.equal(error.code, '42501');
    assert.equal(
      error.message,
      'Warden blocked this statement (rule review-deletes): denied by maria: not today',
    );
    assert.equal(ready?.type, 'readyForQuery');
    assert.equal(recorded[0]!.kind, 'blocked');
    assert.equal((recorded[0]!.data.review as { outcome: string }).outcome, 'denied');
  });

  it('tells onBlocked of a denied statement, with its review, and of no approved one', async () => {
    const { relay, reviewer, blocked } = createRelay();
    relay.feedClient(encodeMessages((w) => writeQuery(w, DELETE)));
    assert.deepEqual(blocked, [], 'held: not refused yet');
    reviewer.asked[0]!.decide({ decision: 'denied', reviewId: 'v_9', by: 'maria', reason: 'no' });
    await settle();
    assert.deepEqual(blocked, [
      {
        // As recorded: masked.
        statement: "DELETE FROM orders WHERE note = 'card **** **** **** 1111'",
        rule: 'review-deletes',
        review: { outcome: 'denied', waitedMs: 0, id: 'v_9', by: 'maria', reason: 'no' },
      },
    ]);
    relay.feedClient(encodeMessages((w) => writeQuery(w, DELETE)));
    reviewer.asked[1]!.decide({ decision: 'approved', reviewId: 'v_10', by: 'maria', reason: '' });
    await settle();
    assert.equal(blocked.length, 1);
  });

  it('forwards an approved Parse and keeps it prepared for its Execute', async () => {
    const { relay, upstream, reviewer, recorded } = createRelay();
    relay.feedClient(
      encodeMessages((w) => {
        writeParse(w, { name: 'del', sql: DELETE });
        writeBind(w, { portal: '', statement: 'del', parameters: [] });
        writeExecute(w, '', 0);
        writeSync(w);
      }),
    );
    reviewer.asked[0]!.decide({ decision: 'approved', reviewId: 'v_3', by: 'maria', reason: '' });
    await settle();
    const sent = sentBy(upstream.take());
    assert.ok(sent[0]!.type === 'parse' && sent[0]!.sql === DELETE);
    assert.equal(sent.filter((m) => m.type === 'parse').length, 1);
    assert.equal(recorded[0]!.kind, 'review');
    assert.equal((recorded[0]!.data.review as { outcome: string }).outcome, 'approved');
  });

  it('refuses a held statement whose review timed out, naming the rule', async () => {
    const { relay, upstream, client, reviewer } = createRelay();
    relay.feedClient(encodeMessages((w) => writeQuery(w, DELETE)));
    reviewer.asked[0]!.decide({ decision: 'expired', reviewId: 'v_4', reason: 'timed out' });
    await settle();
    const [sent] = sentBy(upstream.take());
    assert.ok(sent?.type === 'query' && sent.sql === 'warden_blocked_feedface_1');
    rejectSubstitute(relay, 1);
    const [error] = receivedBy(client.take());
    assert.ok(error?.type === 'errorResponse');
    assert.equal(error.code, '42501');
    assert.equal(error.message, 'Warden blocked this statement (rule review-deletes): review timed out');
  });

  it('ends the wait on cancel with SQLSTATE 57014 and withdraws the review', async () => {
    const { relay, upstream, client, reviewer, holds } = createRelay();
    relay.feedClient(encodeMessages((w) => writeQuery(w, DELETE)));
    assert.equal(relay.cancelHeld(), true);
    assert.equal(reviewer.asked[0]!.signal.aborted, true);
    assert.deepEqual(holds, [true, false]);
    const [sent] = sentBy(upstream.take());
    assert.ok(sent?.type === 'query' && sent.sql === 'warden_blocked_feedface_1');
    rejectSubstitute(relay, 1);
    const [error] = receivedBy(client.take());
    assert.ok(error?.type === 'errorResponse');
    assert.equal(error.code, '57014');
    reviewer.asked[0]!.decide({ decision: 'approved', reviewId: 'v_5', by: 'maria', reason: '' });
    await settle();
    assert.equal(upstream.take().length, 0, 'an approval after the cancel runs nothing');
    assert.equal(relay.cancelHeld(), false, 'nothing held: the cancel goes to the server');
  });

  it('withdraws the review when the session closes and sends nothing afterwards', async () => {
    const { relay, upstream, reviewer } = createRelay();
    relay.feedClient(encodeMessages((w) => writeQuery(w, DELETE)));
    relay.close();
    assert.equal(reviewer.asked[0]!.signal.aborted, true);
    reviewer.asked[0]!.decide({ decision: 'approved', reviewId: 'v_6', by: 'maria', reason: '' });
    await settle();
    assert.equal(upstream.take().length, 0);
  });

  it('holds a second reviewed statement behind the first and keeps the rest behind it', async () => {
    const { relay, upstream, reviewer } = createRelay();
    relay.feedClient(
      encodeMessages((w) => {
        writeQuery(w, DELETE);
        writeQuery(w, 'DELETE FROM orders WHERE id = 2');
        writeQuery(w, 'SELECT 3');
      }),
    );
    reviewer.asked[0]!.decide({ decision: 'approved', reviewId: 'v_7', by: 'maria', reason: '' });
    await settle();
    assert.deepEqual(
      sentBy(upstream.take()).map((m) => (m.type === 'query' ? m.sql : m.type)),
      [DELETE],
    );
    assert.equal(reviewer.asked.length, 2);
    reviewer.asked[1]!.decide({ decision: 'approved', reviewId: 'v_8', by: 'maria', reason: '' });
    await settle();
    assert.deepEqual(
      sentBy(upstream.take()).map((m) => (m.type === 'query' ? m.sql : m.type)),
      ['DELETE FROM orders WHERE id = 2', 'SELECT 3'],
    );
  });

  it('refuses when the reviewer fails (fail closed)', async () => {
    const { relay, upstream } = createRelay({ review: () => Promise.reject(new Error('store down')) });
    relay.feedClient(encodeMessages((w) => writeQuery(w, DELETE)));
    await settle();
    const [sent] = sentBy(upstream.take());
    assert.ok(sent?.type === 'query' && sent.sql === 'warden_blocked_feedface_1');
  });

  it('ends the session when more input than allowed arrives while a statement is held', () => {
    const { relay } = createRelay();
    relay.feedClient(encodeMessages((w) => writeQuery(w, DELETE)));
    const big = encodeMessages((w) => writeQuery(w, `SELECT '${'x'.repeat(64 * 1024)}'`));
    assert.throws(
      () => {
        for (let sent = 0; sent <= MAX_HELD_INPUT; sent += big.length) relay.feedClient(big);
      },
      (error) => isPgProxyError(error) && error.code === 'ERR_PGPROXY_HELD_INPUT',
    );
  });

  it('refuses a review verdict when no reviewer is wired (fail closed)', () => {
    const upstream = new Sink();
    const relay = new PgRelay({
      guardrails: compileSqlGuardrails(GUARDRAILS),
      masker: createMasker(compileMasking({})),
      level: 'write',
      groups: [],
      recordRows: false,
      catalog: undefined,
      toUpstream: upstream,
      toClient: new Sink(),
      record: () => {},
      token: 'feedface',
    });
    relay.feedClient(encodeMessages((w) => writeQuery(w, DELETE)));
    const [sent] = sentBy(upstream.take());
    assert.ok(sent?.type === 'query' && sent.sql === 'warden_blocked_feedface_1');
  });
});
