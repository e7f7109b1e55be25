import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { signSlackRequest } from '../../../bot/slack/signature.ts';
import { waitFor } from '../../helpers/broker-fixture.ts';
import { type PgCluster, startPgCluster } from '../../helpers/pg-cluster.ts';
import { parseLoginFromDm, runPsql } from '../../helpers/psql.ts';
import { SIGNING_SECRET, type SlackHarness, startSlackHarness } from '../../helpers/slack-harness.ts';
import type { StandinMessage } from '../../helpers/slack-standin.ts';

let keys = 0;

/** Waits for a defined value. */
async function until<T>(check: () => T | undefined, what: string, timeoutMs = 10_000): Promise<T> {
  return (await waitFor(check, timeoutMs, what)) as T;
}

describe('Slack adapter over HTTP', () => {
  let cluster: PgCluster;
  let h: SlackHarness;

  before(async () => {
    cluster = await startPgCluster();
    h = await startSlackHarness(cluster);
  });
  after(async () => {
    await h?.close();
    await cluster?.stop();
  });

  /** `/access <text>` as `user`: acknowledged at once, answered on the response_url. */
  async function access(user: string, text: string): Promise<string> {
    const key = `cmd-${++keys}`;
    const sent = await h.driver.command(user, text, key);
    assert.equal(sent.status, 200, `ack for ${text}`);
    return until(() => h.standin.responsesFor(key)[0], `reply to /access ${text}`);
  }

  async function rootOf(requestId: string): Promise<StandinMessage> {
    return until(
      () => h.standin.messages.find((m) => !m.threadTs && JSON.stringify(m.blocks ?? []).includes(requestId)),
      `root message of ${requestId}`,
    );
  }

  async function threadSays(root: StandinMessage, pattern: RegExp): Promise<string> {
    return until(
      () => h.standin.thread(root).find((t) => pattern.test(t)),
      `thread reply ${pattern}`,
      15_000,
    );
  }

  async function ephemeralFor(user: string, after: number, pattern: RegExp): Promise<string> {
    return until(
      () =>
        h.standin.ephemerals
          .slice(after)
          .filter((e) => e.user === user)
          .map((e) => e.text)
          .find((t) => pattern.test(t)),
      `ephemeral to ${user} ${pattern}`,
    );
  }

  const idIn = (text: string) => /(r[0-9a-z]{10})/.exec(text)![1]!;

  describe('request authentication', () => {
    const body = () => h.driver.commandBody('UALICE', 'app-db 30m fixing invoice 4411', `auth-${++keys}`);
    const now = () => Math.floor(Date.now() / 1000);
    const cases: [string, () => Parameters<SlackHarness['driver']['send']>[2]][] = [
      [
        'a forged signature',
        () => ({ signature: signSlackRequest('not-the-secret', String(now()), body()) }),
      ],
      ['a missing signature', () => ({ signature: null })],
      ['a malformed signature', () => ({ signature: 'v0=zz' })],
      ['a timestamp older than 5 minutes', () => ({ timestamp: now() - 301 })],
      ['a timestamp 5 minutes in the future', () => ({ timestamp: now() + 301 })],
    ];
    for (const [name, sign] of cases) {
      it(`refuses ${name} with 401 and changes nothing`, async () => {
        const before = (await h.fx.app.broker.list({})).length;
        const calls = h.standin.calls.filter((c) => c.method !== 'auth.test').length;
        const sent = await h.driver.send(body(), 'application/x-www-form-urlencoded', sign());
        assert.equal(sent.status, 401);
        await h.bot.core.idle();
        assert.equal((await h.fx.app.broker.list({})).length, before);
        assert.equal(h.standin.calls.filter((c) => c.method !== 'auth.test').length, calls);
      });
    }

    it('refuses a replayed request (same signature and timestamp) with 401', async () => {
      const text = h.driver.commandBody('UALICE', 'list', `replay-${++keys}`);
      const ts = now();
      const signature = signSlackRequest(SIGNING_SECRET, String(ts), text);
      const first = await h.driver.send(text, 'application/x-www-form-urlencoded', {
        timestamp: ts,
        signature,
      });
      assert.equal(first.status, 200);
      await waitFor(() => h.standin.responsesFor(`replay-${keys}`)[0], 5000, 'first reply');
      const again = await h.driver.send(text, 'application/x-www-form-urlencoded', {
        timestamp: ts,
        signature,
      });
      assert.equal(again.status, 401);
      await h.bot.core.idle();
      assert.equal(h.standin.responsesFor(`replay-${keys}`).length, 1);
    });

    it('answers 404 elsewhere and 413 for a body over the limit', async () => {
      const res = await fetch(new URL('/other', h.driver.url));
      assert.equal(res.status, 404);
      const big = await h.driver.send(`text=${'x'.repeat(70_000)}`, 'application/x-www-form-urlencoded');
      assert.equal(big.status, 413);
    });
  });

  it('answers mistakes with a helpful ephemeral reply that changes nothing', async () => {
    const before = (await h.fx.app.broker.list({})).length;
    const cases: [string, RegExp][] = [
      ['app-dbb 30m fixing invoice 4411', /Did you mean `app-db`\?/],
      ['app-db 3h fixing invoice 4411', /longer than the 2h maximum.*Ask for 2h or less/],
      ['app-db 30m', /reason is required/],
      ['app-db:admin 30m fixing', /no level "admin" \(levels: read, write\)/],
      ['status', /Say which request/],
    ];
    for (const [text, expected] of cases) assert.match(await access('UALICE', text), expected, text);
    assert.match(await access('UNOBODY1', 'list'), /does not know who you are/);
    // Slack shows `&lt;` as `<`: Warden's own text is entity-escaped too.
    assert.match(await access('UALICE', 'help'), /\/access &lt;target&gt;\[:&lt;level&gt;\]/);
    assert.equal((await h.fx.app.broker.list({})).length, before);
  });

  it('runs the full flow: request, approval in the thread, DM, psql login, expiry', async () => {
    const reply = await access('UALICE', 'app-db 8s fixing invoice 4411');
    assert.match(reply, /is posted in #access-requests/);
    const id = idIn(reply);
    const root = await rootOf(id);
    assert.equal(root.channel, 'CREQUESTS');
    const blocks = JSON.stringify(root.blocks);
    assert.match(blocks, /<@UALICE> requests app-db:read for 8s/);
    assert.match(blocks, /fixing invoice 4411/);
    assert.match(blocks, /1 approval from <@UMARIA> \(manager\) or group dba/);
    assert.match(blocks, /"action_id":"warden_approve"/);
    await threadSays(root, /Waiting for 1 approval/);

    let mark = h.standin.ephemerals.length;
    await h.driver.click('UALICE', 'warden_approve', id, root);
    assert.match(
      await ephemeralFor('UALICE', mark, /own request/),
      /cannot approve or deny your own request/,
    );
    await h.driver.click('UCAROL', 'warden_approve', id, root);
    assert.match(await ephemeralFor('UCAROL', mark, /not/), /Warden does not know who you are/);
    await h.driver.click('UBOB', 'warden_approve', `${id.slice(0, -1)}${id.endsWith('0') ? '1' : '0'}`, root);
    await ephemeralFor('UBOB', mark, /does not exist/);
    assert.equal((await h.fx.app.broker.show(id)).request.state, 'pending');

    const click = await h.driver.click('UMARIA', 'warden_approve', id, root);
    assert.equal(click.status, 200);
    await threadSays(root, /<@UMARIA> approved \(1\/1\)/);
    await threadSays(root, /Access is active until \d\d:\d\d UTC/);
    const dm = await until(() => h.standin.dmsTo('UALICE').find((t) => t.includes('password:')), 'DM');
    // Log in first: everything else can be checked while the grant runs out.
    const login = parseLoginFromDm(dm);
    const inside = await runPsql(login, 'SELECT count(*) FROM invoices');
    assert.equal(inside.stdout, '2', inside.stderr);
    assert.match(dm, /approved and active until/);
    await waitFor(
      () => root.updates > 0 && /Active until/.test(JSON.stringify(root.blocks)),
      10_000,
      'root update',
    );
    assert.doesNotMatch(JSON.stringify(root.blocks), /warden_approve/, 'no buttons once decided');
    assert.match(JSON.stringify(root.blocks), /Approved by\*\\n<@UMARIA>/);

    mark = h.standin.ephemerals.length;
    await h.driver.click('UMARIA', 'warden_approve', id, root);
    assert.match(await ephemeralFor('UMARIA', mark, /already/), /already approved/);

    assert.ok(!h.standin.publicText().includes(login.password), 'the password is never in a channel');
    assert.ok(!h.botLogs.lines.join('\n').includes(login.password), 'the password is never logged');
    assert.ok(!h.fx.logs.lines.join('\n').includes(login.password), 'the password is never logged');

    await threadSays(root, /Expired/);
    await waitFor(() => h.standin.dmsTo('UALICE').find((t) => /has expired/.test(t)), 10_000, 'expiry DM');
    await waitFor(() => /Expired/.test(JSON.stringify(root.blocks)), 10_000, 'root shows expired');
    const refused = await runPsql(login, 'SELECT 1');
    assert.equal(refused.ok, false);
    assert.equal((await h.fx.app.broker.show(id)).request.state, 'expired');
  });

  it('denies through the modal; an ineligible click gets an explanation and no modal', async () => {
    const id = idIn(await access('UALICE', 'app-db 10m checking orders'));
    const root = await rootOf(id);
    const mark = h.standin.ephemerals.length;
    const views = h.standin.views.length;
    await h.driver.click('UALICE', 'warden_deny', id, root);
    assert.match(await ephemeralFor('UALICE', mark, /cannot deny/), /own request/);
    assert.equal(h.standin.views.length, views);

    await h.driver.click('UBOB', 'warden_deny', id, root);
    const modal = await until(() => h.standin.views[views], 'deny modal');
    assert.equal(modal.view.callback_id, 'warden_deny_modal');
    const empty = await h.driver.submitDeny('UBOB', modal.view.private_metadata, '   ');
    assert.equal(empty.status, 200);
    assert.match(empty.body, /"response_action":"errors"/);
    assert.equal((await h.fx.app.broker.show(id)).request.state, 'pending');

    await h.driver.submitDeny('UBOB', modal.view.private_metadata, 'not during the freeze');
    await threadSays(root, /Denied by <@UBOB>: not during the freeze/);
    await waitFor(
      () => h.standin.dmsTo('UALICE').find((t) => /denied by <@UBOB>/.test(t)),
      10_000,
      'deny DM',
    );
    assert.equal((await h.fx.app.broker.show(id)).request.state, 'denied');
  });

  it('approves by a reply in the thread, and ignores chatter', async () => {
    const id = idIn(await access('UALICE', 'app-db 10m thread approval'));
    const root = await rootOf(id);
    await h.driver.threadReply('UDANA', root, 'looking at it');
    const mark = h.standin.ephemerals.length;
    await h.driver.threadReply('UDANA', root, 'deny');
    await ephemeralFor('UDANA', mark, /deny &lt;reason&gt;/);
    await h.driver.threadReply('UDANA', root, 'approve');
    await threadSays(root, /<@UDANA> approved \(1\/1\)/);
    // The thread says "approved" on the approval; the grant turns active once its role is minted.
    await waitFor(async () => (await h.fx.app.broker.show(id)).request.state === 'active', 10_000, 'active');
    await h.fx.app.broker.revoke(id, { id: 'alice', admin: false }, 'done');
    await threadSays(root, /Revoked by <@UALICE>: done/);
    await waitFor(
      () => h.standin.dmsTo('UALICE').find((t) => /was revoked by <@UALICE>: done/.test(t)),
      10_000,
      'revoke DM',
    );
  });

  it('a question counts as an approval (regression): "Approve?? …" in the thread approves nothing', async () => {
    const id = idIn(await access('UALICE', 'app-db 10m which customer'));
    const root = await rootOf(id);
    const mark = h.standin.ephemerals.length;
    await h.driver.threadReply(
      'UMARIA',
      root,
      'Approve?? Not before you tell me which customer this is for.',
    );
    assert.match(await ephemeralFor('UMARIA', mark, /Nothing was decided/), /exactly `approve`/);
    const details = await h.fx.app.broker.show(id);
    assert.equal(details.request.state, 'pending');
    assert.deepEqual(details.approvals, []);
    assert.equal(
      h.standin.thread(root).some((t) => /approved/.test(t)),
      false,
    );
    await h.fx.app.broker.cancel(id, { id: 'alice', admin: false });
  });

  it('lists, shows, extends and revokes by command', async () => {
    const id = idIn(await access('UALICE', 'app-db 10m list test'));
    await rootOf(id);
    assert.match(await access('UMARIA', 'list'), new RegExp(`Waiting on you:\\n.*${id}`));
    assert.match(await access('UALICE', `status ${id}`), /Waiting for approval \(0\/1\)/);
    await access('UMARIA', `approve ${id}`);
    assert.match(await access('UALICE', `extend ${id} 5m`), /now ends at/);
    assert.match(await access('UALICE', `extend ${id} 5h`), /would exceed the 2h maximum/);
    assert.match(await access('UCAROL', `revoke ${id}`), /does not know who you are/);
    assert.match(await access('UBOB', `revoke ${id}`), /is revoked/);
    assert.equal((await h.fx.app.broker.show(id)).request.state, 'revoked');
  });

  it('retries rate limits and 5xx, and never loses the broker state when Slack fails', async () => {
    h.standin.failNext('chat.postMessage', { status: 429, retryAfter: 1 });
    h.standin.failNext('chat.postMessage', { status: 503 });
    const id = idIn(await access('UALICE', 'app-db 10m retry test'));
    const root = await rootOf(id);
    assert.equal(root.channel, 'CREQUESTS');
    assert.ok(h.standin.calls.some((c) => c.error === 'http_429'));
    assert.ok(h.standin.calls.some((c) => c.error === 'http_503'));

    h.standin.channels.get('CREQUESTS')!.member = false;
    try {
      const lost = idIn(await access('UALICE', 'app-db 10m channel test'));
      const dm = await until(
        () => h.standin.dmsTo('UALICE').find((t) => t.includes(lost) && /could not post/.test(t)),
        'channel failure DM',
      );
      assert.match(dm, /not a member of that channel/);
      assert.equal((await h.fx.app.broker.show(lost)).request.state, 'pending');
      assert.ok(h.botLogs.lines.some((l) => l.includes('ERR_BOT_SLACK_NOT_IN_CHANNEL')));
    } finally {
      h.standin.channels.get('CREQUESTS')!.member = true;
    }
  });
});

describe('Slack adapter with e-mail user mapping', () => {
  let cluster: PgCluster;
  let h: SlackHarness;
  before(async () => {
    cluster = await startPgCluster();
    h = await startSlackHarness(cluster, { userMapping: 'email' });
  });
  after(async () => {
    await h?.close();
    await cluster?.stop();
  });

  it('maps a Slack user without a configured id through users.info', async () => {
    const key = `email-${++keys}`;
    await h.driver.command('UCAROL', 'list', key);
    const reply = await until(() => h.standin.responsesFor(key)[0], 'reply');
    assert.match(reply, /You have no open requests/);
    assert.ok(h.standin.calls.some((c) => c.method === 'users.info' && c.args.user === 'UCAROL'));
  });
});
