/**
 * Single use of CI tokens: a token's `jti` is recorded until the token could no longer be accepted,
 * and a second presentation is refused. The broker backs {@link ReplayCache} with its store so
 * replicas share it; {@link MemoryReplayCache} serves one process and the tests.
 */
import { CiTokenError } from './errors.ts';

/** Remembers used token ids. */
export interface ReplayCache {
  /**
   * Records `key` until `expiresAtMs`. Returns true on first use, false when `key` is already
   * recorded and not yet expired. Must be atomic across callers sharing the cache.
   */
  markUsed(key: string, expiresAtMs: number, nowMs: number): boolean | Promise<boolean>;
}

/** Options of {@link MemoryReplayCache}. */
export interface MemoryReplayCacheOptions {
  /** Most ids held at once; default 100,000. When full of live ids, new tokens are refused. */
  readonly maxEntries?: number;
}

/** In-memory, bounded {@link ReplayCache}. */
export class MemoryReplayCache implements ReplayCache {
  readonly #entries = new Map<string, number>();
  readonly #maxEntries: number;

  constructor(options: MemoryReplayCacheOptions = {}) {
    this.#maxEntries = options.maxEntries ?? 100_000;
  }

  /** Number of ids currently held (expired ones included until swept). */
  get size(): number {
    return this.#entries.size;
  }

  /** Throws `ERR_CI_REPLAY_CACHE_FULL` rather than forget a live id, which would allow a replay. */
  markUsed(key: string, expiresAtMs: number, nowMs: number): boolean {
    const seen = this.#entries.get(key);
    if (seen !== undefined && seen > nowMs) return false;
    if (seen === undefined && this.#entries.size >= this.#maxEntries) {
      this.#sweep(nowMs);
      if (this.#entries.size >= this.#maxEntries) {
        throw new CiTokenError('ERR_CI_REPLAY_CACHE_FULL', { details: { maxEntries: this.#maxEntries } });
      }
    }
    this.#entries.set(key, expiresAtMs);
    return true;
  }

  #sweep(nowMs: number): void {
    for (const [key, expiresAt] of this.#entries) {
      if (expiresAt <= nowMs) this.#entries.delete(key);
    }
  }
}
