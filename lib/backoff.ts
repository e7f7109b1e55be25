/**
 * Exponential back-off with jitter, for reconnecting to a service that is down. Pure: the caller
 * sleeps. "Equal jitter": half the delay is fixed, half random, so many processes that lost the
 * same service do not all come back at the same instant, and none waits less than half its turn.
 */

/** How long to wait between tries. */
export interface BackoffPolicy {
  /** Wait after the first failure, in ms. */
  initialMs: number;
  /** Longest wait, in ms. */
  maxMs: number;
}

/**
 * The wait before try `attempt + 1`, after `attempt` (from 1) failures: `initialMs`, doubled each
 * time up to `maxMs`, then jittered into its upper half. `random` returns [0, 1).
 */
export function backoffDelay(
  attempt: number,
  policy: BackoffPolicy,
  random: () => number = Math.random,
): number {
  const exponent = Math.min(Math.max(attempt, 1) - 1, 30);
  const full = Math.min(policy.maxMs, policy.initialMs * 2 ** exponent);
  return Math.round(full / 2 + (full / 2) * random());
}
