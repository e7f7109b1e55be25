/**
 * Statement review: a statement a guardrail rule sends to review waits in the proxy while the
 * approvers of its grant's level decide. A review is a stored record with compare-and-set
 * transitions (pending → approved | denied | expired), each audited and published as a broker
 * event so chat can post and update it. Exactly one transition wins; the requester never decides,
 * and nobody outside the grant's approvers does (deny by default). A pending review expires at
 * its deadline (the rule's timeout, and never after the grant's end), when the proxy withdraws it
 * (the session ended, the client cancelled) or when the grant ends.
 *
 * This is the review part of the proxy contract (`ports/proxy.ts`: `StatementReviewer`). The statement
 * waits in one process. While it waits, that process says so in the store about every second
 * (`heldAt`) and reads the review back, so a decision taken on another replica reaches it within
 * a second. A review whose holder stopped saying so (its Warden crashed or was stopped) cannot run
 * any more: it expires, and nobody can approve it (an approval that runs nothing would mislead the
 * approver and the audit log).
 */

import { createId } from '../../lib/ids.ts';
import { ForbiddenError, InvalidInputError, NotFoundError, StateConflictError } from '../errors.ts';
import type { BrokerEvent, EventBus } from '../events/events.ts';
import type { Logger } from '../log.ts';
import type { AccessRequest, ReviewState, StatementReview } from '../model.ts';
import { describeRequirement } from '../policy/evaluate.ts';
import type { ReviewOutcome, ReviewSubmission, StatementReviewer } from '../ports/proxy.ts';
import type { Actor, Broker } from '../requests/broker.ts';
import type { ReviewFilter, Store } from '../store/store.ts';

/** Longest statement text kept with a review (the proxy already cuts its recording). */
const MAX_STATEMENT = 4_000;
const MAX_REASON = 500;
/** Bounds of a rule's timeout, in ms. */
const MIN_TIMEOUT = 1_000;
const MAX_TIMEOUT = 24 * 3_600_000;
/** Holding intervals a review may miss before its statement counts as gone with its process. */
const MISSED_HOLDS = 10;
const GONE = 'the Warden process holding the statement stopped';
const SHUTDOWN = 'Warden is shutting down';

/** What reviews need of the broker: a grant's approvers, and the audit log. */
export type ReviewBroker = Pick<Broker, 'approversOf' | 'recordAudit'>;

/** Options of {@link StatementReviews}. */
export interface StatementReviewsOptions {
  store: Store;
  broker: ReviewBroker;
  events: EventBus;
  logger: Logger;
  clock?: () => number;
  /**
   * How often (ms) a process holding statements says so in the store and reads their reviews back
   * (decisions from other replicas). A review not held for 10 intervals expires. Default 1 000.
   */
  holdIntervalMs?: number;
}

interface Waiter {
  resolve: (result: ReviewOutcome) => void;
  timer: NodeJS.Timeout;
}

const STATE_MESSAGES: Record<ReviewState, string> = {
  pending: 'is pending',
  approved: 'was already approved',
  denied: 'was already denied',
  expired: 'has expired',
};

/** Statement reviews (see the module comment). */
export class StatementReviews implements StatementReviewer {
  readonly #store: Store;
  readonly #broker: ReviewBroker;
  readonly #events: EventBus;
  readonly #log: Logger;
  readonly #clock: () => number;
  readonly #holdInterval: number;
  readonly #waiters = new Map<string, Waiter>();
  #holding: NodeJS.Timeout | undefined;
  #holdRound: Promise<void> | undefined;
  #sweeper: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(options: StatementReviewsOptions) {
    this.#store = options.store;
    this.#broker = options.broker;
    this.#events = options.events;
    this.#log = options.logger;
    this.#clock = options.clock ?? Date.now;
    this.#holdInterval = options.holdIntervalMs ?? 1_000;
  }

  /**
   * Records a held statement's review, tells chat, and resolves with the outcome. Aborting
   * `signal` withdraws it (it expires). Rejects when the grant is not active or the store fails.
   */
  async review(submission: ReviewSubmission, signal: AbortSignal): Promise<ReviewOutcome> {
    const grant = await this.#store.getRequest(submission.grantId);
    if (grant?.state !== 'active' || grant.expiresAt === null) {
      throw new StateConflictError(`grant ${String(submission.grantId).slice(0, 64)} is not active`);
    }
    const now = this.#clock();
    const timeout = Math.min(Math.max(submission.timeoutMs, MIN_TIMEOUT), MAX_TIMEOUT);
    const review: StatementReview = {
      id: createId('v'),
      grantId: grant.id,
      requester: grant.requester,
      target: grant.target,
      level: grant.level,
      sessionId: submission.sessionId.slice(0, 64),
      statement: submission.statement.slice(0, MAX_STATEMENT),
      rule: submission.rule.slice(0, 64),
      message: submission.message.slice(0, MAX_REASON),
      state: 'pending',
      createdAt: now,
      deadline: Math.min(now + timeout, grant.expiresAt),
      decidedAt: null,
      decidedBy: null,
      decisionReason: null,
      version: 1,
      meta: {},
      heldAt: now,
    };
    await this.#store.insertReview(review);
    await this.#broker.recordAudit(
      grant.requester,
      'review.requested',
      review.id,
      {
        grant: grant.id,
        target: grant.target,
        level: grant.level,
        rule: review.rule,
        session: review.sessionId,
      },
      `session:${review.sessionId}`,
    );
    const outcome = new Promise<ReviewOutcome>((resolve) => {
      const timer = setTimeout(() => void this.#expireDue(review.id), Math.max(0, review.deadline - now));
      timer.unref();
      this.#waiters.set(review.id, { resolve, timer });
    });
    // Stopped while the review was being stored: it is not held, and its statement is refused.
    if (this.#stopped)
      this.#settle(review.id, { decision: 'expired', reviewId: review.id, reason: SHUTDOWN });
    else this.#holding ??= setInterval(() => void this.#hold(), this.#holdInterval).unref();
    const withdraw = () => void this.#expire(review.id, 'withdrawn by the proxy').catch(() => {});
    if (signal.aborted) withdraw();
    else signal.addEventListener('abort', withdraw, { once: true });
    this.#events.publish({ type: 'review.requested', request: grant, review });
    return outcome;
  }

  /** Approves a pending review: the held statement runs. Only an approver of the grant's level. */
  approve(id: string, actor: Actor, reason = ''): Promise<StatementReview> {
    return this.#decide(id, actor, 'approved', reason);
  }

  /** Denies a pending review: the client gets an error naming who denied it. */
  deny(id: string, actor: Actor, reason = ''): Promise<StatementReview> {
    return this.#decide(id, actor, 'denied', reason);
  }

  /** Reviews, newest first (`states: ['pending']` for those waiting). */
  list(filter: ReviewFilter): Promise<StatementReview[]> {
    return this.#store.listReviews(filter);
  }

  /** One review, or `ERR_NOT_FOUND`. */
  async get(id: string): Promise<StatementReview> {
    const review = typeof id === 'string' && id.length <= 64 ? await this.#store.getReview(id) : undefined;
    if (!review) throw new NotFoundError('review', String(id).slice(0, 64));
    return review;
  }

  /** The grant of a review (for chat: its request thread). */
  grantOf(review: StatementReview): Promise<AccessRequest | undefined> {
    return this.#store.getRequest(review.grantId);
  }

  /** Keeps caller facts (a chat message's ids) with a review; never secrets. Best effort. */
  async annotate(id: string, meta: Record<string, unknown>): Promise<void> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const review = await this.#store.getReview(id);
      if (!review) return;
      if (await this.#store.updateReview(id, review.version, { meta: { ...review.meta, ...meta } })) return;
    }
  }

  /** Expires pending reviews of grants as they end; returns the unsubscribe function. */
  follow(events: {
    subscribe(handler: (event: BrokerEvent) => void | Promise<void>): () => void;
  }): () => void {
    return events.subscribe(async (event) => {
      if (event.type !== 'grant.expired' && event.type !== 'grant.revoked') return;
      const pending = await this.#store.listReviews({ grantId: event.request.id, states: ['pending'] });
      for (const review of pending) await this.#expire(review.id, 'the grant ended');
    });
  }

  /**
   * Expires pending reviews past their deadline, and those whose holding process is gone (after a
   * crash, nothing else would).
   */
  async sweep(): Promise<void> {
    const now = this.#clock();
    for (const review of await this.#store.listReviews({ states: ['pending'], limit: 1000 })) {
      if (review.deadline <= now) await this.#expire(review.id, 'timed out');
      else if (this.#isGone(review, now)) await this.#expire(review.id, GONE);
    }
  }

  /** Sweeps now, then every `intervalMs` (the broker's `sweep_interval`), until {@link stop}. */
  async start(intervalMs: number): Promise<void> {
    await this.sweep();
    this.#sweeper ??= setInterval(
      () => void this.sweep().catch((error) => this.#log.error({ err: error }, 'review sweep failed')),
      intervalMs,
    ).unref();
  }

  /** Stops the timers; waiting statements are refused as expired. */
  stop(): void {
    this.#stopped = true;
    clearInterval(this.#sweeper);
    clearInterval(this.#holding);
    this.#sweeper = undefined;
    this.#holding = undefined;
    for (const [id, waiter] of this.#waiters) {
      clearTimeout(waiter.timer);
      waiter.resolve({ decision: 'expired', reviewId: id, reason: SHUTDOWN });
    }
    this.#waiters.clear();
  }

  async #decide(
    id: string,
    actor: Actor,
    state: 'approved' | 'denied',
    reason: string,
  ): Promise<StatementReview> {
    const verb = state === 'approved' ? 'approve' : 'deny';
    try {
      const review = await this.get(id);
      if (typeof reason !== 'string')
        throw new InvalidInputError('ERR_REQUEST_REASON', 'the reason must be text');
      const grant = await this.#store.getRequest(review.grantId);
      this.#checkDecider(review, grant, actor, verb);
      if (review.state === 'pending' && review.deadline <= this.#clock()) {
        await this.#expire(review.id, 'timed out');
      } else if (review.state === 'pending' && this.#isGone(review, this.#clock())) {
        await this.#expire(review.id, GONE);
      }
      return await this.#finish(review.id, {
        state,
        decidedAt: this.#clock(),
        decidedBy: actor.id,
        decisionReason: reason.trim().slice(0, MAX_REASON),
      });
    } catch (error) {
      await this.#broker.recordAudit(actor.id, 'review.refused', String(id).slice(0, 64), {
        verb,
        code: (error as { code?: string }).code,
        reason: (error as Error).message,
      });
      throw error;
    }
  }

  #checkDecider(
    review: StatementReview,
    grant: AccessRequest | undefined,
    actor: Actor,
    verb: 'approve' | 'deny',
  ): void {
    if (actor.id === review.requester) {
      throw new ForbiddenError('ERR_APPROVAL_SELF', `nobody can ${verb} their own statement`);
    }
    const requirement = grant ? this.#broker.approversOf(grant) : undefined;
    if (!requirement?.groups.some((g) => g.members.includes(actor.id))) {
      throw new ForbiddenError(
        'ERR_APPROVAL_NOT_ELIGIBLE',
        `${String(actor.id).slice(0, 64)} cannot ${verb} this statement: it needs ${
          requirement ? describeRequirement(requirement) : 'an approver of its grant'
        }`,
      );
    }
  }

  /** Whether `review`'s statement died with the process that held it (never one held here). */
  #isGone(review: StatementReview, now: number): boolean {
    return (
      review.heldAt !== null &&
      !this.#waiters.has(review.id) &&
      now - review.heldAt > MISSED_HOLDS * this.#holdInterval
    );
  }

  /**
   * One holding round: says the statements waiting here are still held, and settles those decided
   * elsewhere (another replica's API or chat). Rounds never overlap; a failed one is logged and the
   * next one tries again.
   */
  async #hold(): Promise<void> {
    if (this.#holdRound) return;
    const ids = [...this.#waiters.keys()];
    if (ids.length === 0) {
      clearInterval(this.#holding);
      this.#holding = undefined;
      return;
    }
    this.#holdRound = (async () => {
      await this.#store.holdReviews(ids, this.#clock());
      for (const id of ids) {
        const review = await this.#store.getReview(id);
        if (review && review.state !== 'pending') this.#settle(id, outcomeOf(review));
      }
    })()
      .catch((error) => this.#log.error({ err: error }, 'cannot hold the reviewed statements'))
      .finally(() => {
        this.#holdRound = undefined;
      });
    await this.#holdRound;
  }

  async #expireDue(id: string): Promise<void> {
    try {
      await this.#expire(id, 'timed out');
    } catch (error) {
      this.#log.error({ err: error, review: id }, 'review expiry failed');
      this.#settle(id, { decision: 'expired', reviewId: id, reason: 'timed out' });
    }
  }

  /** Expires a review if it is still pending; harmless otherwise. */
  async #expire(id: string, reason: string): Promise<void> {
    try {
      await this.#finish(id, {
        state: 'expired',
        decidedAt: this.#clock(),
        decidedBy: 'warden',
        decisionReason: reason,
      });
    } catch (error) {
      if ((error as { code?: string }).code !== 'ERR_STATE_CONFLICT') throw error;
    }
  }

  /** The compare-and-set out of `pending`: exactly one caller wins, the others get a conflict. */
  async #finish(id: string, patch: Partial<StatementReview>): Promise<StatementReview> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const current = await this.get(id);
      if (current.state !== 'pending') {
        const by = current.decidedBy ? ` by ${current.decidedBy}` : '';
        throw new StateConflictError(`review ${id} ${STATE_MESSAGES[current.state]}${by}`, {
          state: current.state,
        });
      }
      const done = await this.#store.updateReview(id, current.version, patch);
      if (!done) continue;
      await this.#broker.recordAudit(done.decidedBy ?? 'warden', `review.${done.state}`, id, {
        grant: done.grantId,
        rule: done.rule,
        reason: done.decisionReason,
      });
      this.#settle(id, outcomeOf(done));
      const grant = await this.#store.getRequest(done.grantId);
      if (grant) this.#events.publish({ type: 'review.decided', request: grant, review: done });
      return done;
    }
    throw new StateConflictError(`review ${id} is changing too fast; try again`);
  }

  #settle(id: string, result: ReviewOutcome): void {
    const waiter = this.#waiters.get(id);
    if (!waiter) return;
    this.#waiters.delete(id);
    clearTimeout(waiter.timer);
    waiter.resolve(result);
  }
}

function outcomeOf(review: StatementReview): ReviewOutcome {
  const reason = review.decisionReason ?? '';
  if (review.state === 'approved' || review.state === 'denied') {
    return { decision: review.state, reviewId: review.id, by: review.decidedBy ?? '', reason };
  }
  return { decision: 'expired', reviewId: review.id, reason };
}
