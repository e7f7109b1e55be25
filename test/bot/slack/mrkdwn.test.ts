import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { code, line, literal, mention, strong } from '../../../bot/core/message.ts';
import {
  clipMrkdwn,
  codeBlock,
  decodeSlackText,
  escapeLiteral,
  renderLine,
  renderMessage,
} from '../../../bot/slack/mrkdwn.ts';
import { HOSTILE_TEXTS, shownAsTyped } from '../../helpers/hostile-text.ts';
import { readMrkdwn } from '../../helpers/slack-mrkdwn.ts';

const names = (id: string) => ({ maria: 'UMARIA', alice: 'UALICE' })[id];

describe('Slack mrkdwn escaping', () => {
  for (const hostile of HOSTILE_TEXTS) {
    for (const zwspIsBlank of [true, false]) {
      it(`shows ${JSON.stringify(hostile)} literally (zero-width space read as ${zwspIsBlank ? 'a blank' : 'a letter'})`, () => {
        const read = readMrkdwn(escapeLiteral(hostile), zwspIsBlank);
        assert.deepEqual(read.tokens, [], 'no mention, broadcast or link');
        assert.deepEqual(read.styled, [], 'no formatting');
        assert.equal(read.shown, shownAsTyped(hostile).replace(/[\u202e]/g, ''));
      });
    }
  }

  it('leaves characters inside words alone, so names copy as they are', () => {
    for (const name of ['app_db:read', 'snake_case_target', 'a*b', 'v1~2', 'rab12cd34ef']) {
      assert.equal(escapeLiteral(name), name);
    }
  });

  it("renders Warden's own mentions, code and emphasis as Slack markup, and only those", () => {
    const text = renderLine(
      line`${mention('maria')} approved ${literal('<@UALICE>')}: ${code('deny <reason>')} ${strong(literal('a *x* b'))}`,
      names,
    );
    const read = readMrkdwn(text, true);
    assert.deepEqual(read.tokens, [{ kind: 'user', value: 'UMARIA' }]);
    assert.deepEqual(
      read.styled.map((s) => s.style),
      ['bold', 'code'],
    );
    assert.equal(read.shown, '@UMARIA approved <@UALICE>: `deny <reason>` *a *x* b*');
  });

  it('names a person without a Slack id by their Warden id, escaped', () => {
    assert.equal(renderLine([mention('carol')], names), '@carol');
  });

  it('puts a message block in a code block no fence inside can close, whatever its ends', () => {
    for (const block of ['```evil```', '`x`', 'a < b && c > d']) {
      const text = codeBlock(block);
      assert.ok(text.startsWith('```') && text.endsWith('```'));
      assert.equal(text.slice(3, -3).includes('```'), false);
      assert.equal(
        text.slice(3, 4) === '`' || text.slice(-4, -3) === '`',
        false,
        'no backtick against a fence',
      );
      assert.equal(readMrkdwn(text, true).tokens.length, 0);
    }
    assert.match(
      renderMessage({ lines: [line`head`], block: 'password: abc' }, names),
      /^head\n```password: abc```$/,
    );
  });

  it('cuts long text without leaving half an entity or half a mention', () => {
    assert.equal(clipMrkdwn(`${'x'.repeat(8)}&amp;`, 10), `${'x'.repeat(8)}…`);
    assert.equal(clipMrkdwn(`${'x'.repeat(6)}<@UMARIA>`, 10), `${'x'.repeat(6)}…`);
    assert.equal(clipMrkdwn('short', 10), 'short');
  });

  it('reads inbound Slack text back to what the person typed', () => {
    assert.equal(decodeSlackText('a &lt;b&gt; &amp;lt; &amp;'), 'a <b> &lt; &');
  });

  it('marks an alert with a siren', () => {
    assert.match(
      renderMessage({ lines: [line`Break-glass`], alert: true }, names),
      /^:rotating_light: Break-glass$/,
    );
  });
});
