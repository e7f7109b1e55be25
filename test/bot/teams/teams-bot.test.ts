/**
 * The Teams adapter end to end: the real Teams SDK app on its real HTTP endpoint, activities
 * signed by a local key whose OpenID metadata the SDK's cloud overrides point at, every outbound
 * call checked by the Bot Connector stand-in, and a real PostgreSQL target reached with psql.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TeamsBot } from '../../../bot/teams/teams-bot.ts';
import { createLogger } from '../../../broker/log.ts';
import type { AccessRequest } from '../../../broker/model.ts';
import type { ReviewOutcome } from '../../../broker/ports/proxy.ts';
import { LogCapture, waitFor } from '../../helpers/broker-fixture.ts';
import { type PgCluster, startPgCluster } from '../../helpers/pg-cluster.ts';
import { parseLoginFromDm, runPsql } from '../../helpers/psql.ts';
import {
  REQUESTS_CHANNEL,
  startTeamsHarness,
  TeamsDriver,
  type TeamsHarness,
  USERS,
} from '../../helpers/teams-harness.ts';
import { type PostedActivity, TeamsStandin } from '../../helpers/teams-standin.ts';

async function until<T>(check: () => T | undefined | false, what: string, timeoutMs = 15_000): Promise<T> {
  return (await waitFor(check, timeoutMs, what)) as T;
}

const text = (a: PostedActivity) => TeamsStandin.textOf(a);
const idIn = (t: string) => /(r[0-9a-z]{10})/.exec(t)![1]!;
type CardBody = { statusCode: number; type: string; value: unknown };

describe('Teams adapter', () => {
  let cluster: PgCluster;
  let h: TeamsHarness;

  before(async () => {
    cluster = await startPgCluster();
    h = await startTeamsHarness(cluster);
  });
  after(async () => {
    await h?.close();
    await cluster?.stop();
  });

  const personal = { personal: true } as const;
  const channel = { channel: REQUESTS_CHANNEL };
  const threadOf = (root: PostedActivity) => `${REQUESTS_CHANNEL};messageid=${root.id}`;

  /** `access <text>` from a user in their 1:1 chat; the bot's answer there. */
  async function access(user: string, command: string): Promise<string> {
    const conv = TeamsDriver.personalOf(user);
    const activity = h.driver.message(user, personal, `access ${command}`);
    const sent = await h.driver.send(activity);
    assert.equal(sent.status, 200);
    const answer = () => h.standin.in(conv).find((a) => a.replyToId === activity.id);
    return text(await until(answer, `answer to access ${command}`));
  }

  function rootOf(id: string): Promise<PostedActivity> {
    return until(
      () => h.standin.in(REQUESTS_CHANNEL).find((a) => text(a).includes(id)),
      `root card of ${id}`,
    );
  }

  function threadSays(root: PostedActivity, pattern: RegExp): Promise<PostedActivity> {
    return until(
      () => h.standin.in(threadOf(root)).find((a) => pattern.test(text(a))),
      `thread reply ${pattern}`,
    );
  }

  function dmTo(user: string, pattern: RegExp): Promise<PostedActivity> {
    return until(
      () => h.standin.in(TeamsDriver.personalOf(user)).find((a) => pattern.test(text(a))),
      `DM ${pattern}`,
    );
  }

  async function click(user: string, verb: string, id: string, extra: Record<string, unknown> = {}) {
    const sent = await h.driver.send(
      h.driver.invoke(user, channel, verb, { warden: 1, kind: 'request', id, ...extra }),
    );
    assert.equal(sent.status, 200, JSON.stringify(sent.body));
    return sent.body as CardBody;
  }

  const cardText = (body: CardBody) =>
    TeamsStandin.textOf({ body: { attachments: [{ content: body.value }] } } as unknown as PostedActivity);

  it('runs the full flow: request, card, approval in the card, update in place, thread, DM, psql, expiry', async () => {
    const reply = await access('alice', 'app-db 8s fixing invoice 4411');
    assert.match(reply, /is posted in #access-requests/);
    const id = idIn(reply);
    const root = await rootOf(id);
    const card = (root.body.attachments as { content: Record<string, unknown> }[])[0]!.content;
    assert.equal(card.version, '1.4');
    const actions = card.actions as { type: string; verb: string; data: unknown }[];
    assert.deepEqual(
      actions.map((a) => [a.type, a.verb]),
      [
        ['Action.Execute', 'approve'],
        ['Action.Execute', 'deny'],
      ],
    );
    assert.deepEqual(actions[0]!.data, { warden: 1, kind: 'request', id });
    assert.ok(
      (card.refresh as { userIds: string[] }).userIds.includes(`8:orgid:${USERS.maria!.aadObjectId}`),
    );
    assert.match(text(root), /@alice requests app-db:read for 8s/);
    assert.match(text(root), /Reason: fixing invoice 4411/);
    assert.match(text(root), /Requested in: Microsoft Teams/);
    await threadSays(root, /Waiting for 1 approval/);

    // Refused, changing nothing: the requester, someone outside the policy, a stranger.
    const own = await click('alice', 'approve', id);
    assert.match(cardText(own), /cannot approve this request: nobody can approve their own request/);
    const sam = await click('sam', 'approve', id);
    assert.match(cardText(sam), /not an approver|cannot/);
    const stranger = await click('stranger', 'approve', id);
    assert.match(
      cardText(stranger),
      /does not know who you are in Teams: ask maria@example\.com \(Warden admin\)/,
    );
    assert.equal((await h.fx.app.broker.show(id)).request.state, 'pending');
    assert.equal(root.updates, 0);

    const approve = h.driver.invoke('maria', channel, 'approve', { warden: 1, kind: 'request', id });
    const approved = await h.driver.send(approve);
    assert.equal(approved.status, 200);
    const answer = approved.body as CardBody;
    assert.equal(answer.type, 'application/vnd.microsoft.card.adaptive');
    // Active (or, when activation takes longer than the answer may wait, the card says it is under way).
    assert.match(cardText(answer), /Active until|Approved|Working on it/);
    assert.doesNotMatch(JSON.stringify(answer.value), /Action\.Execute/);

    // A replayed invoke (the same activity again) is refused and changes nothing.
    const replayed = await h.driver.send(approve);
    assert.equal(replayed.status, 409);

    await threadSays(root, /@maria approved \(1\/1\)/);
    await threadSays(root, /Access is active until \d\d:\d\d UTC/);
    await until(() => root.updates > 0 && /Active until/.test(text(root)), 'root updated in place');
    assert.doesNotMatch(JSON.stringify(root.body), /Action\.Execute/, 'no buttons once decided');
    assert.match(text(root), /Approved by: @maria/);

    const dm = text(await dmTo('alice', /password:/));
    const login = parseLoginFromDm(dm);
    const inside = await runPsql(login, 'SELECT count(*) FROM invoices');
    assert.equal(inside.stdout, '2', inside.stderr);
    const channelText = h.standin.activities
      .filter((a) => !a.conversationId.startsWith('a:'))
      .map((a) => JSON.stringify(a.body))
      .join('\n');
    assert.ok(!channelText.includes(login.password), 'the password is never in a channel');
    assert.ok(!h.botLogs.lines.join('\n').includes(login.password), 'the password is never logged');
    assert.ok(!h.fx.logs.lines.join('\n').includes(login.password), 'the password is never logged');

    await threadSays(root, /Expired/);
    await dmTo('alice', /has expired/);
    await until(() => /Expired/.test(text(root)), 'root shows expired');
    assert.equal((await runPsql(login, 'SELECT 1')).ok, false);
    assert.equal((await h.fx.app.broker.show(id)).request.state, 'expired');

    // A card action on a request that has ended changes nothing.
    const late = await click('bob', 'approve', id);
    assert.match(cardText(late), /Expired/);
    assert.match(cardText(late), /not pending|already|expired/i);
    assert.equal((await h.fx.app.broker.show(id)).request.state, 'expired');

    assert.deepEqual(h.standin.rejected, [], 'the Connector accepted every call');
    assert.equal(h.standin.tokensIssued, 1, 'one bot token, cached');
  });

  describe('inbound authentication', () => {
    const cases: [string, () => Promise<string | null>][] = [
      ['a forged signature', () => h.standin.sign({ forged: true })],
      ['an expired token', () => h.standin.sign({ expiredSecondsAgo: 600 })],
      ['another audience', () => h.standin.sign({ audience: '00000000-0000-4000-8000-000000000000' })],
      ['another issuer', () => h.standin.sign({ issuer: 'https://evil.example' })],
      ['a token for another serviceUrl', () => h.standin.sign({ serviceUrl: 'https://evil.example/teams/' })],
      ['an unknown key', () => h.standin.sign({ kid: 'not-a-key' })],
      ['a key not endorsed for msteams', () => h.standin.sign({ unendorsed: true })],
      ['no token', async () => null],
      ['a token that is not a JWT', async () => 'not.a.jwt'],
    ];
    for (const [name, token] of cases) {
      it(`refuses ${name} with 401 and changes nothing`, async () => {
        const requests = (await h.fx.app.broker.list({})).length;
        const calls = h.standin.calls.length;
        const sent = await h.driver.send(
          h.driver.message('alice', personal, 'access app-db 30m forged'),
          await token(),
        );
        assert.equal(sent.status, 401);
        await h.bot.core.idle();
        assert.equal((await h.fx.app.broker.list({})).length, requests);
        assert.equal(h.standin.calls.length, calls, 'no Connector call');
      });
    }

    it('refuses an activity that names no serviceUrl', async () => {
      const activity = h.driver.message('alice', personal, 'access app-db 30m x');
      delete activity.serviceUrl;
      assert.equal((await h.driver.send(activity)).status, 401);
    });

    it('refuses a body that is not an activity, and one too large', async () => {
      const res = await fetch(h.driver.url, {
        method: 'POST',
        body: '{nope',
        headers: { 'content-type': 'application/json' },
      });
      assert.equal(res.status, 400);
      const big = await fetch(h.driver.url, { method: 'POST', body: 'x'.repeat(300 * 1024) });
      assert.equal(big.status, 413);
    });
  });

  it('denies in the card: the reason is asked inside the card, only of an eligible approver', async () => {
    const id = idIn(await access('alice', 'app-db 30m checking **totals**'));
    const root = await rootOf(id);
    const refused = await click('sam', 'deny', id);
    assert.doesNotMatch(JSON.stringify(refused.value), /Input\.Text/);
    assert.match(cardText(refused), /cannot deny this request/);
    const form = await click('bob', 'deny', id);
    assert.match(JSON.stringify(form.value), /"type":"Input\.Text","id":"reason"/);
    assert.equal((await h.fx.app.broker.show(id)).request.state, 'pending');
    const denied = await click('bob', 'deny', id, { reason: 'use the replica' });
    assert.match(cardText(denied), /Denied by @bob: use the replica/);
    await until(() => /Denied by @bob: use the replica/.test(text(root)), 'root shows the denial');
    await dmTo('alice', /denied/i);
    const again = await click('maria', 'approve', id);
    assert.match(cardText(again), /Denied by @bob/);
    assert.equal((await h.fx.app.broker.show(id)).request.state, 'denied');
  });

  it('decides by an exact reply in the card thread, and hints at a near miss', async () => {
    const id = idIn(await access('alice', 'app-db 30m thread decision'));
    const root = await rootOf(id);
    const where = { channel: REQUESTS_CHANNEL, thread: root.id };
    await h.driver.send(h.driver.message('maria', where, 'approve?'));
    await threadSays(root, /Nothing was decided/);
    assert.equal((await h.fx.app.broker.show(id)).request.state, 'pending');
    await h.driver.send(h.driver.message('maria', where, '<at>Warden</at> approve'));
    await until(async () => (await h.fx.app.broker.show(id)).request.state === 'active', 'approved by reply');
    await h.fx.app.broker.revoke(id, { id: 'root', admin: true }, 'done');
    await dmTo('alice', /revoked/i);
  });

  it('shows hostile text as written, never as markup', async () => {
    const hostile =
      '**bold** _it_ [click](https://evil.example) <at>maria</at> {{DATE(2017-02-14T06:08:39Z, SHORT)}} &amp;';
    const id = idIn(await access('alice', `app-db 30m ${hostile}`));
    const root = await rootOf(id);
    const json = JSON.stringify(root.body);
    assert.doesNotMatch(json, /"type":"TextBlock"/, 'no markdown TextBlock on a card');
    assert.doesNotMatch(json, /\{\{DATE/);
    assert.doesNotMatch(json, /\]\(https/);
    assert.doesNotMatch(json, /\*\*bold/);
    assert.ok(text(root).includes(`Reason: ${hostile}`), 'shown exactly as typed');
    await h.fx.app.broker.cancel(id, { id: 'alice', admin: false });
  });

  it('puts a held statement in the grant thread and decides it from the card', async () => {
    const id = idIn(await access('alice', 'app-db 30m review flow'));
    const root = await rootOf(id);
    await click('maria', 'approve', id);
    await until(async () => (await h.fx.app.broker.show(id)).request.state === 'active', 'active');
    const grant: AccessRequest = (await h.fx.app.broker.show(id)).request;
    const outcome: Promise<ReviewOutcome> = h.fx.app.reviews.review(
      {
        grantId: grant.id,
        sessionId: 's_teams',
        statement: 'DELETE FROM invoices',
        rule: 'review-deletes',
        message: 'deletes need review',
        timeoutMs: 120_000,
      },
      new AbortController().signal,
    );
    const held = await threadSays(root, /DELETE FROM invoices/);
    const reviewId = (held.body.attachments as { content: { actions: { data: { id: string } }[] } }[])[0]!
      .content.actions[0]!.data.id;
    const outsider = await h.driver.send(
      h.driver.invoke('stranger', channel, 'approve', { warden: 1, kind: 'review', id: reviewId }),
    );
    assert.match(JSON.stringify(outsider.body), /does not know who you are/);
    const ok = await h.driver.send(
      h.driver.invoke('bob', channel, 'approve', { warden: 1, kind: 'review', id: reviewId }),
    );
    assert.match(JSON.stringify(ok.body), /You approved statement/);
    assert.equal((await outcome).decision, 'approved');
    await until(() => held.updates > 0 && /approved/i.test(text(held)), 'held statement updated in place');
    await h.fx.app.broker.revoke(id, { id: 'root', admin: true }, 'done');
  });

  it('retries a rate limit and a 5xx from the Connector', async () => {
    h.standin.failNext({ status: 429, retryAfter: 0 }, { status: 503 });
    const id = idIn(await access('alice', 'app-db 30m after a rate limit'));
    await rootOf(id);
    await h.fx.app.broker.cancel(id, { id: 'alice', admin: false });
  });

  it('keeps the broker working while Teams is down, and posts what it missed when it is back', async () => {
    h.standin.down = true;
    const request = await h.fx.app.broker.request({
      requester: 'alice',
      target: 'app-db',
      level: 'read',
      duration: '30m',
      reason: 'during the outage',
      source: 'cli',
    });
    await until(() => h.bot.status().state === 'degraded', 'degraded');
    assert.equal((await h.fx.app.broker.show(request.id)).request.state, 'pending');
    h.standin.down = false;
    await rootOf(request.id);
    await until(() => h.bot.status().state === 'connected', 'connected again');
    await h.fx.app.broker.cancel(request.id, { id: 'alice', admin: false });
  });

  it('draws a request whose first call finds Teams back, and stops without hanging (regression)', async () => {
    // A call that succeeds while the bot counts Teams as down starts the catch-up. That call may run
    // in a request's own drawing queue, where the catch-up queues work too: awaiting it there held
    // the queue forever (the request never got its card, and stopping the bot never returned).
    h.bot.core.stop();
    const bot = new TeamsBot({
      broker: h.fx.app.broker,
      settings: h.settings,
      logger: createLogger({ level: 'silent' }),
      defaultChannel: '#access-requests',
      retry: { baseDelayMs: 5, attempts: 2 },
      conversations: h.fx.store,
      // No probe during the test: only a call can find Teams back.
      reconnectInitialDelayMs: 600_000,
      reconnectMaxDelayMs: 600_000,
    });
    await bot.start();
    const ask = (reason: string) =>
      h.fx.app.broker.request({
        requester: 'alice',
        target: 'app-db',
        level: 'read',
        duration: '30m',
        reason,
        source: 'cli',
      });
    const ids: string[] = [];
    try {
      await until(() => bot.status().state === 'connected', 'connected');
      h.standin.down = true;
      ids.push((await ask('made while Teams is down')).id);
      await until(() => bot.status().state === 'degraded', 'degraded');
      await bot.core.idle();
      h.standin.down = false;
      ids.push((await ask('made once Teams is back')).id);
      for (const id of ids) await rootOf(id);
      assert.equal(bot.status().state, 'connected');
    } finally {
      const stopped = await Promise.race([
        bot.stop().then(() => true),
        new Promise<false>((r) => setTimeout(() => r(false), 10_000).unref()),
      ]);
      for (const id of ids) await h.fx.app.broker.cancel(id, { id: 'alice', admin: false });
      h.bot.core.start();
      assert.ok(stopped, 'the bot stops');
    }
  });

  it('switches authentication off only by the explicit flag, and says so loudly at start-up', async () => {
    const logs = new LogCapture();
    const insecure = new TeamsBot({
      broker: h.fx.app.broker,
      settings: { ...h.settings, insecureSkipAuth: true },
      logger: createLogger({ level: 'info', destination: logs }),
      defaultChannel: '#access-requests',
    });
    const { port } = await insecure.start();
    try {
      const line = logs.lines.find((l) => l.includes('INSECURE: Teams inbound authentication is OFF'));
      assert.ok(line, 'the start-up warning');
      assert.equal(JSON.parse(line).level, 'error', 'logged at error level');
      const driver = new TeamsDriver(`http://127.0.0.1:${port}/api/messages`, h.standin);
      const sent = await driver.send(driver.message('alice', personal, 'access help'), null);
      assert.equal(sent.status, 200, 'an unsigned activity is accepted only with the flag');
    } finally {
      await insecure.stop();
    }
  });

  it('answers the usage verbs in 1:1', async () => {
    assert.match(await access('alice', 'help'), /Warden: just-in-time access/);
    assert.match(await access('alice', 'list'), /open requests|no open requests/);
    assert.match(await access('alice', 'extend'), /extend|Usage|usage/i);
  });
});
