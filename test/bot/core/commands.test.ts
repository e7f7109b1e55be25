import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Command, MAX_COMMAND_LENGTH, parseCommand } from '../../../bot/core/commands.ts';
import { BotError } from '../../../bot/errors.ts';

describe('parseCommand', () => {
  const accepted: [string, Command][] = [
    ['', { kind: 'help' }],
    ['help', { kind: 'help' }],
    ['  LIST ', { kind: 'list' }],
    ['status r1a2b3c4d5e', { kind: 'status', id: 'r1a2b3c4d5e' }],
    ['show R1A2B3C4D5E', { kind: 'status', id: 'r1a2b3c4d5e' }],
    ['cancel r1a2b3c4d5e', { kind: 'cancel', id: 'r1a2b3c4d5e' }],
    ['revoke r1a2b3c4d5e', { kind: 'revoke', id: 'r1a2b3c4d5e', reason: undefined }],
    ['revoke r1a2b3c4d5e done early', { kind: 'revoke', id: 'r1a2b3c4d5e', reason: 'done early' }],
    ['extend r1a2b3c4d5e 15m', { kind: 'extend', id: 'r1a2b3c4d5e', duration: '15m' }],
    ['approve r1a2b3c4d5e', { kind: 'approve', id: 'r1a2b3c4d5e' }],
    ['deny r1a2b3c4d5e not now', { kind: 'deny', id: 'r1a2b3c4d5e', reason: 'not now' }],
    ['review approve v1a2b3c4d5e', { kind: 'review', verb: 'approve', id: 'v1a2b3c4d5e', reason: '' }],
    [
      'review DENY v1a2b3c4d5e not in prod',
      { kind: 'review', verb: 'deny', id: 'v1a2b3c4d5e', reason: 'not in prod' },
    ],
    [
      'prod-db 30m fixing invoice 4411',
      {
        kind: 'request',
        target: 'prod-db',
        level: undefined,
        duration: '30m',
        reason: 'fixing invoice 4411',
        breakGlass: false,
      },
    ],
    [
      'prod-db:write 1h INC-2231 hotfix',
      {
        kind: 'request',
        target: 'prod-db',
        level: 'write',
        duration: '1h',
        reason: 'INC-2231 hotfix',
        breakGlass: false,
      },
    ],
    [
      'prod-db fixing invoice',
      {
        kind: 'request',
        target: 'prod-db',
        level: undefined,
        duration: undefined,
        reason: 'fixing invoice',
        breakGlass: false,
      },
    ],
    [
      'prod-db 30x typo',
      {
        kind: 'request',
        target: 'prod-db',
        level: undefined,
        duration: '30x',
        reason: 'typo',
        breakGlass: false,
      },
    ],
    [
      'prod-db 10m --break-glass outage',
      {
        kind: 'request',
        target: 'prod-db',
        level: undefined,
        duration: '10m',
        reason: 'outage',
        breakGlass: true,
      },
    ],
    [
      'prod-db 30m',
      {
        kind: 'request',
        target: 'prod-db',
        level: undefined,
        duration: '30m',
        reason: '',
        breakGlass: false,
      },
    ],
  ];
  for (const [text, expected] of accepted) {
    it(`parses "${text}"`, () => assert.deepEqual(parseCommand(text), expected));
  }

  const refused: [string, string][] = [
    ['status', 'ERR_BOT_USAGE'],
    ['status not/an/id', 'ERR_BOT_USAGE'],
    ['extend r1a2b3c4d5e', 'ERR_BOT_USAGE'],
    ['deny r1a2b3c4d5e', 'ERR_BOT_USAGE'],
    ['approve', 'ERR_BOT_USAGE'],
    ['review', 'ERR_BOT_USAGE'],
    ['review maybe v1a2b3c4d5e', 'ERR_BOT_USAGE'],
    ['review approve', 'ERR_BOT_USAGE'],
    ['review approve not/an/id', 'ERR_BOT_USAGE'],
    ['Prod_DB! 30m x', 'ERR_BOT_USAGE'],
    ['prod-db: 30m x', 'ERR_BOT_USAGE'],
    ['prod-db:wr!te 30m x', 'ERR_BOT_USAGE'],
    ['<@U123> 30m x', 'ERR_BOT_USAGE'],
    [`prod-db 30m ${'x'.repeat(MAX_COMMAND_LENGTH)}`, 'ERR_BOT_INPUT_TOO_LONG'],
  ];
  for (const [text, code] of refused) {
    it(`refuses "${text.slice(0, 40)}" with ${code}`, () => {
      assert.throws(
        () => parseCommand(text),
        (error: unknown) => error instanceof BotError && error.code === code,
      );
    });
  }
});
