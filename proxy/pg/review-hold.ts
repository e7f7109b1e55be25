/**
 * The review hold of a proxied Postgres session. A statement a rule sends to review (a Query or a
 * Parse) is held while the grant's approvers decide: the reviewer (the broker, through the proxy
 * contract) is asked, the client's later messages are kept in order, bounded by
 * {@link MAX_HELD_INPUT}, and the session stops reading its client. The outcome (approved, denied,
 * expired, or the client's CancelRequest) goes back to the relay, which forwards the statement or
 * substitutes a refusal on the wire, then the kept messages are processed as if they had just
 * arrived. The hold owns the waiting; the relay owns the protocol. No sockets or timers.
 */
import type { ReviewOutcome, StatementReviewer } from '../../broker/ports/proxy.ts';
import { DEFAULT_REVIEW_TIMEOUT_MS, type Verdict } from '../guardrails/sql/index.ts';
import { PgProxyError } from './errors.ts';
import {
  type BindMessage,
  type FrontendMessage,
  FrontendParser,
  type ParseMessage,
  type QueryMessage,
} from './protocol/frontend-parser.ts';
import type { NoticeInput } from './protocol/serializer.ts';

/** Most bytes of client input kept while a statement is held for review. */
export const MAX_HELD_INPUT = 1024 * 1024;

/**
 * A message that can be held: a simple Query, an extended-protocol Parse, or a Bind (a write
 * whose estimate over the given parameters exceeds a `max_rows` rule).
 */
export type HeldMessage = QueryMessage | ParseMessage | BindMessage;

/** How a held statement's wait ended: the reviewer's outcome, or the client's CancelRequest. */
export type HoldOutcome = ReviewOutcome | { decision: 'cancelled' };

/** What the relay does for the hold. */
export interface HoldHost {
  /**
   * Runs the decision on the wire: forwards the approved statement, or substitutes a refusal for
   * it. `review` is what the timeline records of the wait (outcome, time waited, who, why).
   */
  settle(message: HeldMessage, verdict: Verdict, outcome: HoldOutcome, review: Record<string, unknown>): void;
  /** Processes a client message kept while the statement waited, as if it had just arrived. */
  receive(message: FrontendMessage): void;
  /** Brackets what {@link settle} and {@link receive} write outside a feed of client bytes. */
  beginOutput(): void;
  endOutput(): void;
}

/** Options of {@link ReviewHold}. */
export interface ReviewHoldOptions {
  /** Decides on held statements; without it a statement that needs review is refused (fail closed). */
  reviewer: StatementReviewer | undefined;
  /** Grant and session ids the reviewer is told. */
  ids: { grantId: string; sessionId: string };
  clock: () => number;
  host: HoldHost;
  /** Called with true when a statement is held (stop reading the client), false when released. */
  onHold?: ((holding: boolean) => void) | undefined;
  /** Called when processing the kept input after a release fails: end the session. */
  onFail?: ((error: unknown) => void) | undefined;
}

/** A statement held for review and the client input that arrived after it. */
interface Held {
  message: HeldMessage;
  verdict: Verdict;
  startedAt: number;
  abort: AbortController;
  queued: FrontendMessage[];
  queuedBytes: number;
}

/**
 * A copy of a client message that owns its bytes. Messages are views of the received chunk, and
 * the session reads into one reused buffer (static-read.ts): a message kept past the chunk (held
 * for review) must not be overwritten by the next read.
 */
export function detach(message: FrontendMessage): FrontendMessage {
  // A message kept twice (by the guard hold, then by a review it started) stays the same object:
  // the relay knows a Bind whose estimate was taken with its Parse by identity.
  if (detached.has(message)) return message;
  let copy: FrontendMessage | undefined;
  new FrontendParser({ phase: 'normal' }).feed(Buffer.from(message.raw), (parsed) => {
    copy = parsed;
  });
  if (!copy) return message;
  detached.add(copy);
  return copy;
}

/** Messages {@link detach} made (they own their bytes). */
const detached = new WeakSet<FrontendMessage>();

/** The review hold of one session (see the module comment). */
export class ReviewHold {
  private readonly options: ReviewHoldOptions;
  private held: Held | null = null;
  private closed = false;

  constructor(options: ReviewHoldOptions) {
    this.options = options;
  }

  /** Whether a reviewer decides on held statements (else they are refused). */
  get available(): boolean {
    return this.options.reviewer !== undefined;
  }

  /** Whether a statement is held: the client's messages go to {@link keep}. */
  get holding(): boolean {
    return this.held !== null;
  }

  /**
   * Holds `message` and asks the reviewer; `statement` is its text as recorded (masked, cut).
   * Call only when {@link available}.
   */
  hold(message: HeldMessage, verdict: Verdict, statement: string): void {
    const held: Held = {
      message: detach(message) as HeldMessage,
      verdict,
      startedAt: this.options.clock(),
      abort: new AbortController(),
      queued: [],
      queuedBytes: 0,
    };
    this.held = held;
    this.options.onHold?.(true);
    const { grantId, sessionId } = this.options.ids;
    this.options
      .reviewer!.review(
        {
          grantId,
          sessionId,
          statement,
          rule: verdict.rule ?? 'guardrail',
          message: verdict.message ?? 'this statement needs review',
          timeoutMs: verdict.timeoutMs ?? DEFAULT_REVIEW_TIMEOUT_MS,
        },
        held.abort.signal,
      )
      .then(
        (outcome) => this.release(held, outcome),
        () => this.release(held, { decision: 'expired', reviewId: '', reason: 'review unavailable' }),
      );
  }

  /**
   * Keeps a client message until the held statement's outcome.
   * @throws PgProxyError `ERR_PGPROXY_HELD_INPUT` past {@link MAX_HELD_INPUT} bytes: end the session.
   */
  keep(message: FrontendMessage): void {
    const held = this.held!;
    held.queuedBytes += message.raw.length;
    if (held.queuedBytes > MAX_HELD_INPUT) {
      throw new PgProxyError(
        'ERR_PGPROXY_HELD_INPUT',
        `more than ${MAX_HELD_INPUT} bytes arrived while a statement waited for review`,
      );
    }
    held.queued.push(detach(message));
  }

  /**
   * Ends the wait of a held statement on a client's CancelRequest: the statement fails with
   * SQLSTATE 57014 and the review is withdrawn. False when nothing is held (cancel the server's work).
   */
  cancel(): boolean {
    const held = this.held;
    if (!held) return false;
    held.abort.abort();
    this.release(held, { decision: 'cancelled' });
    return true;
  }

  /** Withdraws a held statement's review (the session ended); nothing more is sent. */
  close(): void {
    this.closed = true;
    this.held?.abort.abort();
  }

  private release(held: Held, outcome: HoldOutcome): void {
    if (this.held !== held || this.closed) return;
    this.held = null;
    const review: Record<string, unknown> = {
      outcome: outcome.decision,
      waitedMs: this.options.clock() - held.startedAt,
    };
    if ('reviewId' in outcome && outcome.reviewId) review.id = outcome.reviewId;
    if ('by' in outcome) review.by = outcome.by;
    if ('reason' in outcome && outcome.reason) review.reason = outcome.reason;
    const host = this.options.host;
    host.beginOutput();
    try {
      host.settle(held.message, held.verdict, outcome, review);
      let next = held.queued.shift();
      while (next) {
        host.receive(next);
        const again = this.held as Held | null;
        if (again) {
          // Another held statement: the rest waits behind it.
          again.queued.push(...held.queued);
          again.queuedBytes += held.queuedBytes;
          return;
        }
        next = held.queued.shift();
      }
    } catch (error) {
      this.options.onFail?.(error);
      return;
    } finally {
      host.endOutput();
    }
    this.options.onHold?.(false);
  }
}

/** The error a client gets for a held statement that does not run. */
export function refusalOf(
  rule: string,
  outcome: Exclude<ReviewOutcome, { decision: 'approved' }> | { decision: 'cancelled' },
): NoticeInput {
  if (outcome.decision === 'cancelled') {
    return {
      severity: 'ERROR',
      code: '57014',
      message: `canceling statement due to user request (it was waiting for review under rule ${rule})`,
      extra: [['R', 'warden_review']],
    };
  }
  const why =
    outcome.decision === 'denied'
      ? `denied by ${outcome.by}${outcome.reason ? `: ${outcome.reason}` : ''}`
      : `review timed out${outcome.reason && outcome.reason !== 'timed out' ? ` (${outcome.reason})` : ''}`;
  return {
    severity: 'ERROR',
    code: '42501',
    message: `Warden blocked this statement (rule ${rule}): ${why}`,
    extra: [['R', 'warden_review']],
  };
}
