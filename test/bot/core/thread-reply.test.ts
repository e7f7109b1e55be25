import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseThreadReply, type ThreadReply } from '../../../bot/core/commands.ts';

describe('parseThreadReply', () => {
  const cases: [string, ThreadReply | undefined][] = [
    ['approve', { kind: 'approve' }],
    ['  Approve \n', { kind: 'approve' }],
    ['APPROVE', { kind: 'approve' }],
    ['deny not during the freeze', { kind: 'deny', reason: 'not during the freeze' }],
    ['Deny\nwrong customer', { kind: 'deny', reason: 'wrong customer' }],
    ['deny', { kind: 'deny-without-reason' }],
    ['deny   ', { kind: 'deny-without-reason' }],
    // A question is not an approval (regression: this text approved a grant).
    ['Approve?? Not before you tell me which customer this is for.', { kind: 'unclear' }],
    ['approve?', { kind: 'unclear' }],
    ['approve.', { kind: 'unclear' }],
    ['approve r1a2b3c4d5e', { kind: 'unclear' }],
    ['approved', { kind: 'unclear' }],
    ['LGTM', { kind: 'unclear' }],
    ['Rejected: see above', { kind: 'unclear' }],
    ['*approve*', { kind: 'unclear' }],
    ['denying?', undefined],
    ['looking at it', undefined],
    ['I would approve if you said which customer', undefined],
    ['', undefined],
    ['+1', undefined],
  ];
  for (const [text, expected] of cases) {
    it(`reads ${JSON.stringify(text)}`, () => assert.deepEqual(parseThreadReply(text), expected));
  }
});
