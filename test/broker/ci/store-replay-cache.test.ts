import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isCiError } from '../../../broker/ci/errors.ts';
import {
  CI_REPLAY_KEY_PREFIX,
  StoreReplayCache,
  toStoreReplayKey,
} from '../../../broker/ci/store-replay-cache.ts';
import { openEmbeddedStore } from '../../../broker/store/sql-store.ts';

describe('StoreReplayCache', () => {
  it('records a key once until it expires, across caches sharing one store', async () => {
    const store = openEmbeddedStore(':memory:');
    await store.migrate();
    try {
      const a = new StoreReplayCache(store);
      const b = new StoreReplayCache(store);
      const key = 'https://token.actions.githubusercontent.com\u0000jti-1';
      assert.equal(await a.markUsed(key, 2_000, 1_000), true);
      assert.equal(await b.markUsed(key, 2_000, 1_500), false, 'another replica sees it');
      assert.equal(await a.markUsed(`${key}x`, 2_000, 1_500), true, 'another jti is new');
      assert.equal(await b.markUsed(key, 4_000, 2_001), true, 'usable again once expired');
    } finally {
      await store.close();
    }
  });

  it('hashes keys: no NUL, bounded length, distinct per issuer', () => {
    const long = `iss\u0000${'j'.repeat(10_000)}`;
    const stored = toStoreReplayKey(long);
    assert.ok(stored.startsWith(CI_REPLAY_KEY_PREFIX));
    assert.ok(!stored.includes('\u0000'));
    assert.ok(stored.length < 100);
    assert.notEqual(toStoreReplayKey('a\u0000j'), toStoreReplayKey('b\u0000j'));
  });

  it('fails closed with ERR_CI_UNAVAILABLE when the store fails', async () => {
    const cache = new StoreReplayCache({
      rememberOnce: () => Promise.reject(new Error('connection refused')),
    });
    await assert.rejects(
      cache.markUsed('k', 2, 1),
      (e: unknown) => isCiError(e) && e.code === 'ERR_CI_UNAVAILABLE',
    );
  });
});
