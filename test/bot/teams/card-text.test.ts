/**
 * Teams escaping and card rendering (pure): hostile literals cannot form markdown spans, links,
 * HTML, entities or Teams' date functions, and still read as typed once zero-width spaces are
 * removed; cards carry Action.Execute with schema 1.4 and no markdown TextBlock.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { line, literal } from '../../../bot/core/message.ts';
import {
  CARD_VERSION,
  parseActionData,
  renderCard,
  renderLineText,
  renderMessageCard,
  renderMessageText,
} from '../../../bot/teams/adaptive-card.ts';
import { escapeCardLiteral, MAX_LITERAL } from '../../../bot/teams/card-text.ts';
import {
  formatTeamsRef,
  parseTeamsRef,
  threadConversation,
  threadRootOf,
} from '../../../bot/teams/teams-refs.ts';
import { HOSTILE_TEXTS } from '../../helpers/hostile-text.ts';

const shown = (s: string) => s.replace(/\u200b/g, '');

/** Markdown that an Adaptive Card host could act on, in text that came through the escaper. */
function findMarkup(escaped: string): string | undefined {
  const checks: [RegExp, string][] = [
    [/\*\*[^\u200b*]+\*\*/, 'bold'],
    [/(?<![\p{L}\p{N}])_[^\u200b_]+_(?![\p{L}\p{N}])/u, 'italic'],
    [/\[[^\]\u200b]*\]\(/, 'link'],
    [/<[a-z/!]/i, 'HTML tag'],
    [/&[a-z#0-9]+;/i, 'entity'],
    [/\{\{/, 'date function'],
    [/^\s*(#|>|[-+] |\d+[.)] )/, 'block at line start'],
    [/[\r\n]/, 'line break'],
    [/[\u202a-\u202e\u2066-\u2069]/, 'bidi override'],
  ];
  return checks.find(([re]) => re.test(escaped))?.[1];
}

describe('escapeCardLiteral', () => {
  const cases = [
    '**bold** and _it_',
    '[click here](https://evil.example)',
    '<at>maria</at> <b>x</b>',
    '&amp; &lt;script&gt;',
    '{{DATE(2017-02-14T06:08:39Z, SHORT)}}',
    '# heading',
    '> quote',
    '- item',
    '1. item',
    'line one\nline two\r\n\tthree',
    'abc\u202edcba',
    ...HOSTILE_TEXTS,
  ];
  for (const input of cases) {
    it(`makes ${JSON.stringify(input).slice(0, 60)} inert and shows it as typed`, () => {
      const out = escapeCardLiteral(input);
      assert.equal(findMarkup(out), undefined, out);
      const flat = input
        .replace(
          /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g,
          '',
        )
        .replace(/\s*[\r\n\t]+\s*/g, ' ');
      assert.equal(shown(out), flat.length > MAX_LITERAL ? `${flat.slice(0, MAX_LITERAL - 1)}…` : flat);
    });
  }

  it('leaves characters inside words alone (app_db copies as it is)', () => {
    assert.equal(escapeCardLiteral('app_db:read'), 'app_db:read');
  });

  it('cuts a literal at 1,500 characters', () => {
    assert.equal(shown(escapeCardLiteral('x'.repeat(5000))).length, MAX_LITERAL);
  });
});

describe('renderCard', () => {
  const card = {
    subject: { kind: 'request' as const, id: 'r0123456789' },
    state: 'pending',
    title: line`${'**alice**'} requests app-db:read`,
    fields: [{ label: 'Reason', value: [literal('[x](https://evil) {{DATE(1)}}')] }],
    status: line`Waiting for approval (0/1)`,
    actions: [
      { kind: 'approve' as const, label: 'Approve', style: 'primary' as const },
      { kind: 'deny' as const, label: 'Deny', style: 'danger' as const },
    ],
    approvers: ['maria'],
  };

  it('draws Approve and Deny as Action.Execute on schema 1.4, with a refresh for the approvers', () => {
    const out = renderCard(card, { refreshUsers: ['8:orgid:x'] });
    assert.equal(out.version, CARD_VERSION);
    assert.deepEqual(
      out.actions?.map((a) => [a.type, (a as { verb?: string }).verb]),
      [
        ['Action.Execute', 'approve'],
        ['Action.Execute', 'deny'],
      ],
    );
    assert.deepEqual(out.refresh?.userIds, ['8:orgid:x']);
    assert.doesNotMatch(JSON.stringify(out), /"TextBlock"/);
    assert.doesNotMatch(JSON.stringify(out), /\{\{DATE|\]\(https/);
  });

  it('asks for a deny reason inside the card', () => {
    const out = renderCard(card, { askReason: true });
    assert.match(JSON.stringify(out.body), /"type":"Input.Text","id":"reason"/);
    assert.deepEqual(
      out.actions?.map((a) => (a as { verb?: string }).verb),
      ['deny', 'refresh'],
    );
  });

  it('draws no buttons and no refresh once decided', () => {
    const out = renderCard({ ...card, state: 'denied', actions: [] }, { refreshUsers: ['8:orgid:x'] });
    assert.equal(out.actions, undefined);
    assert.equal(out.refresh, undefined);
  });

  it('keeps a verbatim block monospace and out of the notification text', () => {
    const message = { lines: [line`Access granted`], block: 'password: s3cr3t_{{x}}' };
    assert.match(JSON.stringify(renderMessageCard(message)), /"fontType":"Monospace"/);
    assert.doesNotMatch(renderMessageText(message), /s3cr3t/);
    assert.equal(renderLineText(line`Denied: ${'<b>x</b>'}`).replace(/\u200b/g, ''), 'Denied: <b>x</b>');
  });

  it('reads back only Warden action data', () => {
    assert.deepEqual(parseActionData({ warden: 1, kind: 'request', id: 'r1' }), {
      warden: 1,
      kind: 'request',
      id: 'r1',
    });
    for (const bad of [
      null,
      'x',
      { kind: 'request', id: 'r1' },
      { warden: 1, kind: 'other', id: 'r1' },
      { warden: 1, kind: 'review', id: '../x' },
    ]) {
      assert.equal(parseActionData(bad), undefined);
    }
  });
});

describe('Teams message references', () => {
  it('gives a channel root and a reply in its thread the same reference', () => {
    const root = formatTeamsRef('19:abc@thread.tacv2', '1700000000001');
    assert.equal(threadRootOf('19:abc@thread.tacv2;messageid=1700000000001'), root);
    assert.deepEqual(threadConversation(root), {
      conversationId: '19:abc@thread.tacv2;messageid=1700000000001',
      replyToId: '1700000000001',
    });
    assert.deepEqual(parseTeamsRef(root), {
      conversationId: '19:abc@thread.tacv2',
      activityId: '1700000000001',
    });
  });

  it('replies in the same chat outside channels', () => {
    const root = formatTeamsRef('a:1personal', '42');
    assert.deepEqual(threadConversation(root), { conversationId: 'a:1personal', replyToId: '42' });
    assert.equal(threadRootOf('a:1personal'), undefined);
    assert.throws(() => parseTeamsRef('nope'), { code: 'ERR_BOT_INTERNAL' });
  });
});
