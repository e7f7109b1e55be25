import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  callSlack,
  classifySlackFailure,
  DEFAULT_RETRY,
  type RetryPolicy,
} from '../../../bot/slack/slack-calls.ts';

const policy: RetryPolicy = { ...DEFAULT_RETRY, attempts: 3, baseDelayMs: 100, maxDelayMs: 5000 };
const rateLimited = (retryAfter: number) => ({ code: 'slack_webapi_rate_limited_error', retryAfter });
const http = (statusCode: number) => ({ code: 'slack_webapi_http_error', statusCode });
const platform = (error: string) => ({ code: 'slack_webapi_platform_error', data: { error } });

describe('classifySlackFailure', () => {
  const retried: [string, unknown, number, number][] = [
    ['a 429 waits its Retry-After', rateLimited(2), 1, 2000],
    ['a long Retry-After is capped', rateLimited(600), 1, 5000],
    ['a 503 backs off', http(503), 1, 100],
    ['a second 500 backs off longer', http(500), 2, 200],
    ['a network error backs off', { code: 'slack_webapi_request_error' }, 1, 100],
  ];
  for (const [name, error, attempt, delayMs] of retried) {
    it(name, () => {
      const failure = classifySlackFailure(error, attempt, policy);
      assert.equal(failure.retry, true);
      assert.equal(failure.retry && failure.delayMs, delayMs);
    });
  }

  const final: [string, unknown, number, string, RegExp][] = [
    ['not_in_channel', platform('not_in_channel'), 1, 'ERR_BOT_SLACK_NOT_IN_CHANNEL', /invite it/],
    ['channel_not_found', platform('channel_not_found'), 1, 'ERR_BOT_SLACK_NOT_IN_CHANNEL', /does not exist/],
    ['invalid_auth', platform('invalid_auth'), 1, 'ERR_BOT_SLACK_API', /bot_token/],
    [
      'an unknown platform error',
      platform('cant_update_message'),
      1,
      'ERR_BOT_SLACK_API',
      /cant_update_message/,
    ],
    ['a 400', http(400), 1, 'ERR_BOT_SLACK_API', /failed/],
    ['a 500 on the last attempt', http(500), 3, 'ERR_BOT_SLACK_API', /HTTP 500/],
    ['a 429 on the last attempt', rateLimited(1), 3, 'ERR_BOT_SLACK_API', /rate limiting/],
    ['a non-Slack error', new TypeError('boom'), 1, 'ERR_BOT_SLACK_API', /failed/],
  ];
  for (const [name, error, attempt, code, text] of final) {
    it(`gives up on ${name} with ${code}`, () => {
      const failure = classifySlackFailure(error, attempt, policy);
      assert.equal(failure.retry, false);
      if (failure.retry) return;
      assert.equal(failure.error.code, code);
      assert.match(failure.error.message, text);
    });
  }
});

describe('callSlack', () => {
  it('retries until the call succeeds, waiting as told', async () => {
    const waits: number[] = [];
    const errors = [rateLimited(1), http(502)];
    const result = await callSlack(
      async () => {
        const error = errors.shift();
        if (error) throw error;
        return 'posted';
      },
      { ...policy, sleep: async (ms) => void waits.push(ms) },
    );
    assert.equal(result, 'posted');
    assert.deepEqual(waits, [1000, 200]);
  });

  it('stops after the last attempt', async () => {
    let calls = 0;
    await assert.rejects(
      callSlack(
        async () => {
          calls++;
          throw http(500);
        },
        { ...policy, sleep: async () => {} },
      ),
      (error: unknown) => (error as { code: string }).code === 'ERR_BOT_SLACK_API',
    );
    assert.equal(calls, 3);
  });
});
