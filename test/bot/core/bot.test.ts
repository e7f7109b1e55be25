/**
 * The chat-neutral core on its own, through a fake adapter (`FakeSurface` implements `ChatSurface`)
 * and a real broker on a real PostgreSQL target: what it posts and where, the rendering model (user
 * text only ever as literal spans, no chat markup in Warden's own words), who may decide, thread
 * replies, message references that outlive the process, and catching up after an outage.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { BotCore } from '../../../bot/core/bot.ts';
import { MemoryChatMessages } from '../../../bot/core/memory-messages.ts';
import {
  type Card,
  type Line,
  type Message,
  plainLine,
  plainMessage,
  type Span,
} from '../../../bot/core/message.ts';
import { createSilentLogger } from '../../../broker/log.ts';
import { type BrokerFixture, startBrokerFixture, waitFor } from '../../helpers/broker-fixture.ts';
import { FakeSurface } from '../../helpers/fake-surface.ts';
import { HOSTILE_REASON } from '../../helpers/hostile-text.ts';
import { type PgCluster, startPgCluster } from '../../helpers/pg-cluster.ts';

/** Every span of every line a card or message holds. */
function spansOf(item: Card | Message): Span[] {
  const lines: Line[] =
    'subject' in item ? [item.title, item.status, ...item.fields.map((f) => f.value)] : [...item.lines];
  const flat = (spans: readonly Span[]): Span[] =>
    spans.flatMap((s) => (s.kind === 'strong' ? flat(s.spans) : [s]));
  return lines.flatMap(flat);
}

/** Everything the fake adapter was asked to show. */
function everything(surface: FakeSurface): (Card | Message)[] {
  return [
    ...surface.cards.flatMap((c) => [c.card, ...c.updates]),
    ...[...surface.threads.values()].flat(),
    ...surface.dms.map((d) => d.message),
  ];
}

describe('bot core', () => {
  let cluster: PgCluster;
  let fx: BrokerFixture;
  let surface: FakeSurface;
  let messages: MemoryChatMessages;
  let core: BotCore;

  const newCore = (s: FakeSurface) =>
    new BotCore({
      broker: fx.app.broker,
      surface: s,
      logger: createSilentLogger(),
      defaultChannel: '#access-requests',
      messages,
      reviews: fx.app.reviews,
    });

  before(async () => {
    cluster = await startPgCluster();
    fx = await startBrokerFixture('embedded', cluster);
  });
  after(async () => {
    core?.stop();
    await fx?.close();
    await cluster?.stop();
  });
  beforeEach(() => {
    core?.stop();
    surface = new FakeSurface();
    messages = new MemoryChatMessages();
    core = newCore(surface);
    core.start();
  });

  const idIn = (m: Message) => /(r[0-9a-z]{10})/.exec(plainMessage(m))![1]!;

  it('posts a request as a card in its approval channel, with the reason as literal text', async () => {
    const reply = await core.handleCommand('alice', `app-db 10m ${HOSTILE_REASON}`);
    assert.equal(reply.ok, true, plainMessage(reply.message));
    const id = idIn(reply.message);
    await core.idle();
    const [posted] = surface.cards;
    assert.equal(posted?.where.channel, '#access-requests');
    assert.deepEqual(posted.card.subject, { kind: 'request', id });
    assert.equal(posted.card.state, 'pending');
    assert.deepEqual(posted.card.title.slice(0, 2), [
      { kind: 'mention', person: 'alice' },
      { kind: 'text', text: ' requests ' },
    ]);
    const reason = posted.card.fields.find((f) => f.label === 'Reason')!;
    assert.deepEqual(reason.value, [{ kind: 'literal', text: HOSTILE_REASON }]);
    assert.deepEqual(
      posted.card.actions.map((a) => a.kind),
      ['approve', 'deny'],
    );
    assert.deepEqual([...posted.card.approvers].sort(), ['bob', 'dana', 'maria']);
    const [step] = surface.threads.get(posted.ref)!;
    assert.match(plainMessage(step!), /^Waiting for 1 approval from @maria \(manager\) or group dba\./);
  });

  it('updates the same card in place through the decision, and DMs the credential as a verbatim block', async () => {
    const id = idIn((await core.handleCommand('alice', 'app-db 10m invoice 4411')).message);
    await core.idle();
    assert.equal((await core.handleAction('maria', id, 'approve')).ok, true);
    await core.idle();
    assert.equal(surface.cards.length, 1, 'no second root message');
    const card = surface.latest(id)!;
    assert.equal(card.state, 'active');
    assert.deepEqual(card.actions, [], 'no buttons once decided');
    assert.match(plainLine(card.status), /^Active until \d\d:\d\d UTC$/);
    const thread = surface.threads.get(surface.cards[0]!.ref)!.map((m) => plainMessage(m));
    assert.ok(thread.some((t) => t === '@maria approved (1/1).'));
    const dm = surface.dms.find((d) => d.person === 'alice' && d.message.block)!;
    assert.match(plainLine(dm.message.lines[0]!), /is approved and active until/);
    assert.match(dm.message.block!, /^host: .*\nuser: .*\npassword: \S+/);
    for (const item of everything(surface)) {
      if (item === dm.message) continue;
      assert.equal(JSON.stringify(item).includes('password:'), false, 'a password outside the DM');
    }
    await fx.app.broker.revoke(id, { id: 'alice', admin: false }, 'done');
  });

  it("uses no chat markup in Warden's own words: user text is always a literal span", async () => {
    const id = idIn((await core.handleCommand('alice', `app-db 10m ${HOSTILE_REASON}`)).message);
    await core.idle();
    await core.handleAction('bob', id, 'deny', HOSTILE_REASON);
    const other = idIn((await core.handleCommand('carol', 'app-db 10m on call')).message);
    await core.idle();
    await fx.app.broker.revoke(other, { id: 'root', admin: true }, HOSTILE_REASON);
    await core.idle();
    const shown = everything(surface);
    assert.ok(shown.length >= 8);
    for (const span of shown.flatMap(spansOf)) {
      if (span.kind === 'text') {
        assert.doesNotMatch(span.text, /[<>*_~`]|:[a-z_]+:/, `markup in Warden's words: ${span.text}`);
      }
      if (span.kind === 'text' || span.kind === 'code') {
        assert.equal(span.text.includes('evil.example'), false, 'user text outside a literal span');
      }
    }
    const literals = shown.flatMap(spansOf).filter((s) => s.kind === 'literal');
    assert.ok(literals.filter((s) => s.kind === 'literal' && s.text === HOSTILE_REASON).length >= 5);
  });

  describe('who may decide', () => {
    it('asks the broker before a platform collects a deny reason, and explains a refusal', async () => {
      const id = idIn((await core.handleCommand('alice', 'app-db 10m checking')).message);
      assert.equal(await core.checkDecider('bob', id), undefined, 'bob (dba) may');
      const self = await core.checkDecider('alice', id);
      assert.equal(self?.code, 'ERR_FORBIDDEN');
      assert.match(plainMessage(self!.message), /^You cannot deny this request: .*own request/);
      assert.equal((await core.checkDecider('carol', id))?.code, 'ERR_FORBIDDEN', 'carol is no approver');
      assert.equal((await core.checkDecider('bob', 'r0000000000'))?.code, 'ERR_NOT_FOUND');
      await core.handleAction('bob', id, 'deny', 'no');
      assert.match(plainMessage((await core.checkDecider('bob', id))!.message), /was denied/);
    });
  });

  describe('thread replies', () => {
    it('a question counts as an approval (regression): "Approve?? Not before …" changes nothing', async () => {
      const id = idIn((await core.handleCommand('alice', 'app-db 10m thread question')).message);
      await core.idle();
      const root = (await core.findMessage(id))!;
      const reply = await core.handleThreadReply(
        'maria',
        root,
        'Approve?? Not before you tell me which customer this is for.',
      );
      assert.equal(reply?.ok, false);
      assert.equal(reply?.code, 'ERR_BOT_USAGE');
      assert.match(plainMessage(reply!.message), /Nothing was decided.*exactly approve/);
      const details = await fx.app.broker.show(id);
      assert.equal(details.request.state, 'pending');
      assert.deepEqual(details.approvals, []);
    });

    it('decides on exactly `approve` or `deny <reason>`, and lets conversation be', async () => {
      const id = idIn((await core.handleCommand('alice', 'app-db 10m thread exact')).message);
      await core.idle();
      const root = (await core.findMessage(id))!;
      assert.equal(await core.handleThreadReply('dana', root, 'looking at it'), undefined);
      for (const unclear of ['lgtm', 'approved', 'approve.', 'Approve it', 'denied, sorry']) {
        assert.equal((await core.handleThreadReply('dana', root, unclear))?.code, 'ERR_BOT_USAGE', unclear);
      }
      assert.equal((await core.handleThreadReply('dana', root, '  deny  '))?.code, 'ERR_BOT_USAGE');
      assert.equal((await fx.app.broker.show(id)).request.state, 'pending');
      assert.equal((await core.handleThreadReply('dana', root, ' APPROVE\n'))?.ok, true);
      await waitFor(async () => (await fx.app.broker.show(id)).request.state === 'active', 10_000, 'active');
      assert.equal(await core.handleThreadReply('dana', 'not-a-thread', 'approve'), undefined);
      await fx.app.broker.revoke(id, { id: 'alice', admin: false }, 'done');
    });
  });

  it('keeps message references in its store: after a restart the same card is updated, not posted again', async () => {
    const id = idIn((await core.handleCommand('alice', 'app-db 10m restart')).message);
    await core.idle();
    const ref = surface.cards[0]!.ref;
    core.stop();
    // A new process: a new adapter instance, the same store.
    const again = new FakeSurface('fake', 'n');
    core = newCore(again);
    core.start();
    assert.equal(await core.findRequestByMessage(ref), id, 'the thread is found by its reference');
    await fx.app.broker.cancel(id, { id: 'alice', admin: false });
    await core.idle();
    assert.deepEqual(
      again.calls.filter((c) => c !== 'sendDirect'),
      ['updateCard', 'postInThread'],
    );
  });

  it('posts what it could not post while chat was down once it is back (catch-up)', async () => {
    surface.down = Object.assign(new Error('Slack is unavailable (network error)'), {
      code: 'ERR_BOT_SLACK_API',
    });
    const id = idIn((await core.handleCommand('alice', 'app-db 10m outage')).message);
    await core.idle();
    assert.equal(surface.cards.length, 0);
    assert.equal(await core.findMessage(id), undefined);
    surface.down = undefined;
    assert.ok((await core.catchUp()) >= 1);
    assert.equal(surface.latest(id)?.state, 'pending');
    assert.equal(await core.catchUp(), 0, 'nothing twice');
    await fx.app.broker.cancel(id, { id: 'alice', admin: false });
  });

  describe('commands', () => {
    it('help carries the usage as a verbatim block; list and status show reasons as literal text', async () => {
      const help = await core.handleCommand('alice', 'help');
      assert.match(help.message.block!, /^\/access <target>\[:<level>\] <duration> <reason…>/);
      assert.match(plainMessage(help.message), /Targets: app-db/);
      const id = idIn((await core.handleCommand('alice', 'app-db 10m *list* me')).message);
      const list = await core.handleCommand('alice', 'list');
      assert.ok(
        list.message.lines.some((l) => l.some((s) => s.kind === 'literal' && s.text === '*list* me')),
      );
      const status = await core.handleCommand('alice', `status ${id}`);
      assert.equal(status.message.lines[0]![0]!.kind, 'strong');
      assert.ok(
        status.message.lines.some((l) => l.some((s) => s.kind === 'literal' && s.text === '*list* me')),
      );
      await core.handleCommand('alice', `cancel ${id}`);
    });

    it('echoes mistyped input only as literal text', async () => {
      for (const [text, code] of [
        ['<!channel> 30m x', 'ERR_BOT_USAGE'],
        ['status <https://evil.example|x>', 'ERR_BOT_USAGE'],
        ['app-dbb 30m x', 'ERR_TARGET_UNKNOWN'],
        ['app-db 30x x', 'ERR_DURATION_INVALID'],
      ] as const) {
        const reply = await core.handleCommand('alice', text);
        assert.equal(reply.code, code, text);
        for (const span of reply.message.lines.flat()) {
          if (span.kind === 'text') assert.doesNotMatch(span.text, /evil|channel|dbb|30x/, text);
        }
      }
    });
  });
});
