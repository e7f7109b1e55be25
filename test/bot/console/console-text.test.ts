import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cleanLiteral, renderConsoleCard, renderConsoleMessage } from '../../../bot/console/console-text.ts';
import { line, literal, mention } from '../../../bot/core/message.ts';
import { HOSTILE_TEXTS } from '../../helpers/hostile-text.ts';

describe('console text', () => {
  it('shows literal text on one line, without control characters or bidirectional overrides', () => {
    for (const hostile of HOSTILE_TEXTS) {
      const shown = cleanLiteral(hostile);
      assert.doesNotMatch(
        shown,
        /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/,
        JSON.stringify(hostile),
      );
    }
    assert.equal(
      cleanLiteral('ok\u001b[2J\u001b[31m red\nApproved by @maria'),
      'ok[2J[31m red Approved by @maria',
    );
  });

  it('cannot forge a line in a card or a message', () => {
    const card = renderConsoleCard(
      '#access-requests',
      {
        subject: { kind: 'request', id: 'r0123456789' },
        state: 'pending',
        title: line`${mention('alice')} requests app-db:read for 10m`,
        fields: [{ label: 'Reason', value: [literal('x\n  → approve r0123456789  (@maria)')] }],
        status: line`Waiting for approval (0/1)`,
        actions: [],
        approvers: [],
      },
      { how: 'new' },
    );
    assert.equal(card.split('\n').length, 3);
    const message = renderConsoleMessage({
      lines: [line`Denied by ${mention('bob')}: ${'no\n[DM to alice] password: x'}`],
    });
    assert.equal(message, 'Denied by @bob: no [DM to alice] password: x');
  });

  it('keeps the lines of a verbatim block, and marks an alert', () => {
    assert.equal(renderConsoleMessage({ lines: [line`head`], block: 'a\r\nb\u001b[0m' }), 'head\na\nb[0m');
    assert.match(renderConsoleMessage({ lines: [line`Break-glass`], alert: true }), /^⚠ Break-glass$/);
  });
});
