/**
 * Token buckets for CI exchanges: one per subject (a repository's jobs) and one per issuer (all
 * its jobs together). Pure: the caller passes the time. The number of tracked keys is bounded;
 * full buckets are dropped first (an absent bucket is a full one, so nothing is lost), then the
 * least recently used.
 */
import type { CiConfig } from './config.ts';
import { CiRateLimitError } from './errors.ts';

/** Options of {@link TokenBucketLimiter}. */
export interface TokenBucketOptions {
  /** Burst size and tokens refilled per minute. */
  readonly perMinute: number;
  /** Most keys tracked at once; default 10,000. */
  readonly maxKeys?: number;
}

interface Bucket {
  tokens: number;
  updatedAt: number;
}

const MINUTE_MS = 60_000;

/** A keyed token bucket refilling `perMinute` tokens per minute up to `perMinute`. */
export class TokenBucketLimiter {
  readonly #perMinute: number;
  readonly #maxKeys: number;
  readonly #buckets = new Map<string, Bucket>();

  constructor(options: TokenBucketOptions) {
    this.#perMinute = options.perMinute;
    this.#maxKeys = options.maxKeys ?? 10_000;
  }

  /** Keys currently tracked. */
  get size(): number {
    return this.#buckets.size;
  }

  /** Milliseconds until `key` has a token; 0 when it has one now. */
  waitFor(key: string, nowMs: number): number {
    const tokens = this.#tokens(key, nowMs);
    return tokens >= 1 ? 0 : Math.ceil(((1 - tokens) * MINUTE_MS) / this.#perMinute);
  }

  /** Takes one token from `key`; call after {@link waitFor} returned 0. */
  take(key: string, nowMs: number): void {
    const tokens = this.#tokens(key, nowMs);
    this.#buckets.delete(key);
    if (this.#buckets.size >= this.#maxKeys) this.#evict(nowMs);
    // Re-insertion keeps the map in least-recently-used order.
    this.#buckets.set(key, { tokens: tokens - 1, updatedAt: nowMs });
  }

  #tokens(key: string, nowMs: number): number {
    const bucket = this.#buckets.get(key);
    if (!bucket) return this.#perMinute;
    const refill = (Math.max(0, nowMs - bucket.updatedAt) * this.#perMinute) / MINUTE_MS;
    return Math.min(this.#perMinute, bucket.tokens + refill);
  }

  #evict(nowMs: number): void {
    for (const key of this.#buckets.keys()) {
      if (this.#tokens(key, nowMs) >= this.#perMinute) this.#buckets.delete(key);
    }
    if (this.#buckets.size >= this.#maxKeys) this.#buckets.delete(this.#buckets.keys().next().value!);
  }
}

/** The two limits of the CI exchange. */
export class CiRateLimiter {
  readonly #subjects: TokenBucketLimiter;
  readonly #issuers: TokenBucketLimiter;

  constructor(limits: CiConfig['rateLimit'], options: { maxKeys?: number } = {}) {
    this.#subjects = new TokenBucketLimiter({ perMinute: limits.perSubjectPerMinute, ...options });
    this.#issuers = new TokenBucketLimiter({ perMinute: limits.perIssuerPerMinute, ...options });
  }

  /**
   * Spends one exchange of `subject` at `issuer`, or throws `ERR_CI_RATE_LIMITED` (with
   * `retryAfterMs`) spending nothing.
   */
  consume(identity: { issuer: string; subject: string }, nowMs: number): void {
    const subjectKey = `${identity.issuer}\u0000${identity.subject}`;
    const subjectWait = this.#subjects.waitFor(subjectKey, nowMs);
    if (subjectWait > 0) {
      throw new CiRateLimitError({ scope: 'subject', key: identity.subject, retryAfterMs: subjectWait });
    }
    const issuerWait = this.#issuers.waitFor(identity.issuer, nowMs);
    if (issuerWait > 0) {
      throw new CiRateLimitError({ scope: 'issuer', key: identity.issuer, retryAfterMs: issuerWait });
    }
    this.#subjects.take(subjectKey, nowMs);
    this.#issuers.take(identity.issuer, nowMs);
  }
}
