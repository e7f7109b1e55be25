import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatDuration, parseDuration } from '../../broker/config/duration.ts';
import { BrokerError } from '../../broker/errors.ts';

describe('parseDuration', () => {
  const good: [string, number][] = [
    ['30m', 30 * 60_000],
    ['1h', 3_600_000],
    ['1h30m', 5_400_000],
    ['45s', 45_000],
    ['2d', 2 * 86_400_000],
    [' 15M ', 15 * 60_000],
  ];
  for (const [text, ms] of good) {
    it(`reads ${JSON.stringify(text)}`, () => assert.equal(parseDuration(text), ms));
  }
  for (const text of ['30x', '', '-5m', '1.5h', 'm', '30', '0m', '1h 30m', '9999999h']) {
    it(`refuses ${JSON.stringify(text)}`, () => {
      assert.throws(
        () => parseDuration(text),
        (e: unknown) => e instanceof BrokerError && e.code === 'ERR_DURATION_INVALID',
      );
    });
  }
  it('formats back', () => {
    assert.equal(formatDuration(5_400_000), '1h30m');
    assert.equal(formatDuration(45_000), '45s');
  });
});
