import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BotError } from '../../../bot/errors.ts';
import { ReplayCache, signSlackRequest, verifySlackSignature } from '../../../bot/slack/signature.ts';

const SECRET = 'signing-secret';
const NOW = 1_700_000_000_000;
const TS = String(NOW / 1000);
const BODY = Buffer.from('command=%2Faccess&text=list');
const GOOD = signSlackRequest(SECRET, TS, BODY);

const hasCode = (code: string) => (error: unknown) => error instanceof BotError && error.code === code;

describe('verifySlackSignature', () => {
  it('accepts what Slack signs (known vector)', () => {
    // The example from Slack's "Verifying requests from Slack" page.
    const body =
      'token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c';
    assert.equal(
      signSlackRequest('8f742231b10e8888abcd99yyyzzz85a5', '1531420618', body),
      'v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503',
    );
    verifySlackSignature(SECRET, { timestamp: TS, signature: GOOD, body: BODY }, NOW);
  });

  const refused: [
    string,
    { timestamp: string | undefined; signature: string | undefined; body: Buffer },
    number,
  ][] = [
    ['no timestamp', { timestamp: undefined, signature: GOOD, body: BODY }, NOW],
    ['no signature', { timestamp: TS, signature: undefined, body: BODY }, NOW],
    ['a malformed timestamp', { timestamp: '17e8', signature: GOOD, body: BODY }, NOW],
    ['a stale timestamp', { timestamp: TS, signature: GOOD, body: BODY }, NOW + 5 * 60_000 + 1000],
    ['a future timestamp', { timestamp: TS, signature: GOOD, body: BODY }, NOW - 5 * 60_000 - 1000],
    ['another secret', { timestamp: TS, signature: signSlackRequest('other', TS, BODY), body: BODY }, NOW],
    [
      'a changed body',
      { timestamp: TS, signature: GOOD, body: Buffer.from('command=%2Faccess&text=help') },
      NOW,
    ],
    ['another version', { timestamp: TS, signature: GOOD.replace('v0=', 'v1='), body: BODY }, NOW],
    ['a short signature', { timestamp: TS, signature: GOOD.slice(0, 20), body: BODY }, NOW],
  ];
  for (const [name, request, now] of refused) {
    it(`refuses ${name} with ERR_BOT_SIGNATURE and a generic message`, () => {
      assert.throws(
        () => verifySlackSignature(SECRET, request, now),
        (error: unknown) => {
          assert.ok(hasCode('ERR_BOT_SIGNATURE')(error));
          assert.equal((error as Error).message, 'request refused');
          return true;
        },
      );
    });
  }
});

describe('ReplayCache', () => {
  it('refuses the same timestamp and signature twice', () => {
    const cache = new ReplayCache();
    cache.remember({ timestamp: TS, signature: GOOD }, NOW);
    assert.throws(
      () => cache.remember({ timestamp: TS, signature: GOOD }, NOW + 1000),
      hasCode('ERR_BOT_REPLAY'),
    );
  });

  it('forgets entries once they left the five-minute window', () => {
    const cache = new ReplayCache();
    cache.remember({ timestamp: TS, signature: GOOD }, NOW);
    cache.remember({ timestamp: String(NOW / 1000 + 400), signature: 'v0=other' }, NOW + 400_000);
    assert.equal(cache.size, 1);
  });

  it('refuses new requests when full of live entries rather than forget one', () => {
    const cache = new ReplayCache(2);
    cache.remember({ timestamp: TS, signature: 'v0=a' }, NOW);
    cache.remember({ timestamp: TS, signature: 'v0=b' }, NOW);
    assert.throws(() => cache.remember({ timestamp: TS, signature: 'v0=c' }, NOW), hasCode('ERR_BOT_REPLAY'));
    assert.throws(() => cache.remember({ timestamp: TS, signature: 'v0=a' }, NOW), hasCode('ERR_BOT_REPLAY'));
  });
});
