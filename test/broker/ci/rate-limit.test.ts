import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isCiError } from '../../../broker/ci/errors.ts';
import { CiRateLimiter, TokenBucketLimiter } from '../../../broker/ci/rate-limit.ts';

const limited = (scope: string, retryAfterMs?: number) => (e: unknown) =>
  isCiError(e) &&
  e.code === 'ERR_CI_RATE_LIMITED' &&
  e.details.scope === scope &&
  (retryAfterMs === undefined || e.details.retryAfterMs === retryAfterMs);

describe('CiRateLimiter', () => {
  it('allows a burst per subject, then refuses until a token refills', () => {
    const limiter = new CiRateLimiter({ perSubjectPerMinute: 3, perIssuerPerMinute: 100 });
    const job = { issuer: 'gh', subject: 'repo:o/r:ref:refs/heads/main' };
    for (let i = 0; i < 3; i++) limiter.consume(job, 0);
    assert.throws(() => limiter.consume(job, 0), limited('subject', 20_000));
    assert.throws(() => limiter.consume(job, 19_999), limited('subject', 1));
    limiter.consume(job, 20_000);
    assert.throws(() => limiter.consume(job, 20_000), limited('subject'));
    limiter.consume({ ...job, subject: 'repo:o/other:ref:refs/heads/main' }, 20_000);
  });

  it('limits the issuer across subjects, and a refusal spends nothing', () => {
    const limiter = new CiRateLimiter({ perSubjectPerMinute: 5, perIssuerPerMinute: 4 });
    for (let i = 0; i < 4; i++) limiter.consume({ issuer: 'gh', subject: `s${i}` }, 0);
    assert.throws(() => limiter.consume({ issuer: 'gh', subject: 's9' }, 0), limited('issuer', 15_000));
    limiter.consume({ issuer: 'gl', subject: 's9' }, 0);
    // s9's own bucket was not charged by the refusal: it still has 5 - 1 (gl is another issuer key).
    for (let i = 0; i < 4; i++) limiter.consume({ issuer: 'gh2', subject: 's9' }, 0);
  });
});

describe('TokenBucketLimiter', () => {
  it('bounds the tracked keys, dropping full buckets first', () => {
    const limiter = new TokenBucketLimiter({ perMinute: 2, maxKeys: 3 });
    limiter.take('a', 0);
    limiter.take('a', 0);
    limiter.take('b', 0);
    limiter.take('c', 0);
    limiter.take('d', 60_000);
    assert.ok(limiter.size <= 3);
    for (let i = 0; i < 1_000; i++) limiter.take(`flood-${i}`, 60_000);
    assert.equal(limiter.size, 3);
  });

  it('evicts the least recently used bucket when none is full', () => {
    const limiter = new TokenBucketLimiter({ perMinute: 1, maxKeys: 2 });
    limiter.take('old', 0);
    limiter.take('recent', 0);
    limiter.take('new', 0);
    assert.equal(limiter.waitFor('recent', 0), 60_000);
    assert.equal(limiter.waitFor('new', 0), 60_000);
    assert.equal(limiter.waitFor('old', 0), 0);
  });
});
