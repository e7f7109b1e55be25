import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isCiError } from '../../../broker/ci/errors.ts';
import { MemoryReplayCache } from '../../../broker/ci/replay-cache.ts';

describe('MemoryReplayCache', () => {
  it('accepts an id once until it expires', () => {
    const cache = new MemoryReplayCache();
    assert.equal(cache.markUsed('iss\u0000a', 1_000, 0), true);
    assert.equal(cache.markUsed('iss\u0000a', 1_000, 999), false);
    assert.equal(cache.markUsed('iss\u0000b', 1_000, 999), true);
    assert.equal(cache.markUsed('iss\u0000a', 2_000, 1_000), true);
  });

  it('refuses new ids rather than forget live ones when full, and frees expired ones', () => {
    const cache = new MemoryReplayCache({ maxEntries: 2 });
    cache.markUsed('a', 1_000, 0);
    cache.markUsed('b', 2_000, 0);
    assert.throws(
      () => cache.markUsed('c', 3_000, 500),
      (e: unknown) => isCiError(e) && e.code === 'ERR_CI_REPLAY_CACHE_FULL',
    );
    assert.equal(cache.markUsed('b', 2_000, 500), false);
    assert.equal(cache.markUsed('c', 3_000, 1_000), true);
    assert.equal(cache.size, 2);
  });
});
