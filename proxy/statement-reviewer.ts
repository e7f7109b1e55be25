/**
 * The proxy's view of statement review. A statement a guardrail rule sends to review is held by
 * the proxy while the broker asks the grant's approvers; the proxy only learns the outcome. In
 * `warden serve` the broker implements it in process (`broker/reviews/reviews.ts`), matching this
 * interface structurally so the broker does not import the proxy.
 */

/** A held statement, as the proxy describes it to the reviewer. */
export interface ReviewSubmission {
  grantId: string;
  /** The proxied session that holds the statement. */
  sessionId: string;
  /** The statement as recorded: masked by the proxy's masker and cut; never the raw text. */
  statement: string;
  /** The guardrail rule that asked for review, and its message. */
  rule: string;
  message: string;
  /** How long to wait for a decision, in ms (the rule's `timeout`). */
  timeoutMs: number;
}

/** How a review ended, as the proxy acts on it. */
export type ReviewOutcome =
  | { decision: 'approved'; reviewId: string; by: string; reason: string }
  | { decision: 'denied'; reviewId: string; by: string; reason: string }
  /** Timed out, withdrawn, or the grant ended: the statement does not run. */
  | { decision: 'expired'; reviewId: string; reason: string };

/** The broker as a statement-holding proxy sees it. */
export interface StatementReviewer {
  /**
   * Records the review, asks the approvers and resolves with the outcome. Aborting `signal`
   * (session end, cancel) withdraws the review; the promise then resolves as `expired`. Rejects
   * only when the review cannot be recorded (the proxy refuses the statement: fail closed).
   */
  review(submission: ReviewSubmission, signal: AbortSignal): Promise<ReviewOutcome>;
}
