/**
 * Markup injection (issue 14): user text went verbatim into Slack mrkdwn, so a reason such as
 * `<!channel>` pinged the channel and `<https://evil.example|Approve rSHOP123>` showed a disguised
 * link. Each message that shows user text is checked here the way Slack would read it (both ways a
 * zero-width space may count): no broadcast, link or channel token, no mention Warden did not make,
 * no formatting from the text, and the text shown exactly as typed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { AccessRequest } from '../../../broker/model.ts';
import { waitFor } from '../../helpers/broker-fixture.ts';
import { HOSTILE_REASON, shownAsTyped } from '../../helpers/hostile-text.ts';
import { type PgCluster, startPgCluster } from '../../helpers/pg-cluster.ts';
import { type SlackHarness, startSlackHarness } from '../../helpers/slack-harness.ts';
import { mrkdwnTexts, readMrkdwn } from '../../helpers/slack-mrkdwn.ts';
import type { StandinMessage } from '../../helpers/slack-standin.ts';

const TYPED = shownAsTyped(HOSTILE_REASON);
/** What the hostile reason would format, were it markup. */
const FORMATTED_BY_THE_REASON = ['URGENT', 'ok', 'x'];
/** Slack ids of the test people: the only mentions Warden itself makes. */
const PEOPLE = new Set(['UALICE', 'UMARIA', 'UBOB', 'UDANA']);

let keys = 0;

/** Checks one text as Slack would show it; true when it shows the hostile reason. */
function checkInert(text: string, where: string): boolean {
  let shows = false;
  for (const zwspIsBlank of [true, false]) {
    const read = readMrkdwn(text, zwspIsBlank);
    assert.deepEqual(
      read.tokens.filter((t) => t.kind !== 'user'),
      [],
      `${where}: a broadcast, channel or link token in ${JSON.stringify(text)}`,
    );
    for (const t of read.tokens) assert.ok(PEOPLE.has(t.value), `${where}: mention of ${t.value}`);
    for (const s of read.styled) {
      assert.ok(s.style !== 'quote', `${where}: a quote in ${JSON.stringify(text)}`);
      assert.ok(!FORMATTED_BY_THE_REASON.includes(s.text), `${where}: "${s.text}" formatted (${s.style})`);
    }
    shows ||= read.shown.includes(TYPED);
  }
  return shows;
}

describe('hostile text in Slack (markup injection)', () => {
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

  async function access(user: string, text: string): Promise<string> {
    const key = `hostile-${++keys}`;
    assert.equal((await h.driver.command(user, text, key)).status, 200);
    return (await waitFor(() => h.standin.responsesFor(key)[0], 10_000, `reply to ${text}`)) as string;
  }
  const idIn = (text: string) => /(r[0-9a-z]{10})/.exec(text)![1]!;
  const rootOf = (id: string) =>
    waitFor(
      () => h.standin.messages.find((m) => !m.threadTs && JSON.stringify(m.blocks ?? []).includes(id)),
      10_000,
      `root of ${id}`,
    ) as Promise<StandinMessage>;
  const shows = (message: StandinMessage, where: string) =>
    mrkdwnTexts(message).some((t) => checkInert(t, where));
  /** Every message, reply and ephemeral so far passes, whether or not it shows the reason. */
  const checkAll = () => {
    for (const m of h.standin.messages) for (const t of mrkdwnTexts(m)) checkInert(t, `message ${m.ts}`);
    for (const e of h.standin.ephemerals) checkInert(e.text, 'ephemeral');
    for (const r of h.standin.responses) checkInert(String(r.body.text ?? ''), 'response');
  };

  it('the request: root message, status and list show the reason as typed', async () => {
    const id = idIn(await access('UALICE', `app-db 10m ${HOSTILE_REASON}`));
    const root = await rootOf(id);
    assert.ok(shows(root, 'root message'), 'the root shows the reason as typed');
    assert.ok(checkInert(await access('UALICE', `status ${id}`), 'status reply'));
    assert.ok(checkInert(await access('UALICE', 'list'), 'list reply'));
    assert.ok(checkInert(await access('UMARIA', 'list'), 'the approver sees it waiting on them'));
    checkAll();
  });

  it('a deny reason in a thread reply: the thread, the DM and the root status', async () => {
    const id = idIn(await access('UALICE', 'app-db 10m plain reason'));
    const root = await rootOf(id);
    await h.driver.threadReply('UBOB', root, `deny ${HOSTILE_REASON}`);
    const step = await waitFor(
      () => h.standin.thread(root).find((t) => t.startsWith('Denied by')),
      10_000,
      'step',
    );
    assert.ok(checkInert(step as string, 'deny step'));
    const dm = await waitFor(
      () => h.standin.dmsTo('UALICE').find((t) => t.includes(id) && /denied/.test(t)),
      10_000,
      'deny DM',
    );
    assert.ok(checkInert(dm as string, 'deny DM'));
    await waitFor(
      () => root.updates > 0 && /Denied/.test(JSON.stringify(root.blocks)),
      10_000,
      'root update',
    );
    assert.ok(shows(root, 'denied root'));
    assert.equal((await h.fx.app.broker.show(id)).request.endReason, HOSTILE_REASON, 'stored as typed');
    checkAll();
  });

  it('a deny reason from the modal, and a revoke reason', async () => {
    const denied = idIn(await access('UALICE', 'app-db 10m modal'));
    const root = await rootOf(denied);
    const views = h.standin.views.length;
    await h.driver.click('UDANA', 'warden_deny', denied, root);
    const modal = (await waitFor(() => h.standin.views[views], 10_000, 'modal')) as {
      view: { private_metadata: string };
    };
    await h.driver.submitDeny('UDANA', modal.view.private_metadata, HOSTILE_REASON);
    await waitFor(() => h.standin.thread(root).some((t) => checkInert(t, 'modal deny step')), 10_000, 'step');

    const granted = idIn(await access('UALICE', 'app-db 10m revoke me'));
    const grantRoot = await rootOf(granted);
    await h.driver.click('UMARIA', 'warden_approve', granted, grantRoot);
    await waitFor(
      async () => (await h.fx.app.broker.show(granted)).request.state === 'active',
      10_000,
      'active',
    );
    assert.match(await access('UALICE', `revoke ${granted} ${HOSTILE_REASON}`), /is revoked/);
    await waitFor(
      () => h.standin.thread(grantRoot).some((t) => checkInert(t, 'revoke step')),
      10_000,
      'step',
    );
    await waitFor(
      () => h.standin.dmsTo('UALICE').some((t) => t.includes(granted) && checkInert(t, 'revoke DM')),
      10_000,
      'revoke DM',
    );
    await waitFor(() => shows(grantRoot, 'revoked root'), 10_000, 'revoked root');
    checkAll();
  });

  it('input echoed in an error reply', async () => {
    for (const text of [
      `${HOSTILE_REASON} 30m x`,
      'status <https://evil.example|Approve rSHOP123>',
      'deny <!channel>',
    ]) {
      const reply = await access('UALICE', text);
      checkInert(reply, `reply to ${text}`);
      assert.doesNotMatch(reply, /<!channel>|<https:/);
    }
  });

  it('a held statement and the reason it was denied', async () => {
    const grant: AccessRequest = await h.fx.app.broker.request({
      requester: 'carol',
      target: 'app-db',
      level: 'read',
      duration: '30m',
      reason: 'on call',
      source: 'chat',
    });
    const outcome = h.fx.app.reviews.review(
      {
        grantId: grant.id,
        sessionId: 's_hostile',
        statement: `DELETE FROM invoices WHERE note = '${HOSTILE_REASON}' -- \`\`\``,
        rule: 'review-deletes',
        message: 'deletes need review',
        timeoutMs: 120_000,
      },
      new AbortController().signal,
    );
    const posted = (await waitFor(
      () =>
        h.standin.messages.find((m) =>
          JSON.stringify(m.blocks ?? []).includes('DELETE FROM invoices WHERE note'),
        ),
      10_000,
      'review message',
    )) as StandinMessage;
    const reviewId = /"value":"(v[0-9a-z]{10})"/.exec(JSON.stringify(posted.blocks))![1]!;
    await access('UMARIA', `review deny ${reviewId} ${HOSTILE_REASON}`);
    assert.equal((await outcome).decision, 'denied');
    await waitFor(() => /Denied by/.test(JSON.stringify(posted.blocks)), 10_000, 'review update');
    assert.ok(shows(posted, 'decided review'));
    checkAll();
  });
});
