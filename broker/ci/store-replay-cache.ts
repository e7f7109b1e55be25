/**
 * The {@link ReplayCache} replicas share: each used token id is one row of the broker store,
 * inserted with `rememberOnce` (an atomic insert-if-absent), so a token accepted by one replica is
 * refused by every other until it could no longer be accepted anyway.
 */
import { createHash } from 'node:crypto';
import type { Store } from '../store/store.ts';
import { CiExchangeError } from './errors.ts';
import type { ReplayCache } from './replay-cache.ts';

/** Prefix of the store keys, so CI token ids never collide with other one-time keys. */
export const CI_REPLAY_KEY_PREFIX = 'ci-jti:';

/**
 * Turns the verifier's `issuer NUL jti` key into a store key: a SHA-256 digest, because the raw key
 * holds a NUL (PostgreSQL `text` refuses it) and an attacker-chosen length.
 */
export function toStoreReplayKey(key: string): string {
  return `${CI_REPLAY_KEY_PREFIX}${createHash('sha256').update(key, 'utf8').digest('base64url')}`;
}

/** A replay cache in the broker store. */
export class StoreReplayCache implements ReplayCache {
  readonly #store: Pick<Store, 'rememberOnce'>;

  constructor(store: Pick<Store, 'rememberOnce'>) {
    this.#store = store;
  }

  /** Throws `ERR_CI_UNAVAILABLE` when the store fails: without the record, the token is refused. */
  async markUsed(key: string, expiresAtMs: number, nowMs: number): Promise<boolean> {
    try {
      return await this.#store.rememberOnce(toStoreReplayKey(key), expiresAtMs, nowMs);
    } catch (error) {
      throw new CiExchangeError('ERR_CI_UNAVAILABLE', {
        details: { reason: 'replay cache unavailable' },
        cause: error,
      });
    }
  }
}
