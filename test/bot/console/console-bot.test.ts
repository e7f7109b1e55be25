import assert from 'node:assert/strict';
import { PassThrough, Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { ConsoleBot } from '../../../bot/console/console-bot.ts';
import { createSilentLogger } from '../../../broker/log.ts';
import { type BrokerFixture, startBrokerFixture, waitFor } from '../../helpers/broker-fixture.ts';
import { type PgCluster, startPgCluster } from '../../helpers/pg-cluster.ts';
import { parseLoginFromDm, runPsql } from '../../helpers/psql.ts';

class Screen extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.text += chunk.toString('utf8');
    done();
  }
  /** Everything printed after `mark`. */
  since(mark: number): string {
    return this.text.slice(mark);
  }
}

describe('console adapter', () => {
  let cluster: PgCluster;
  let fx: BrokerFixture;
  let input: PassThrough;
  let screen: Screen;
  let bot: ConsoleBot;
  let running: Promise<void>;

  /** Types a line and waits until the console printed `expect` after it. */
  async function type(line: string, expect: string | RegExp, timeoutMs = 10_000): Promise<string> {
    const mark = screen.text.length;
    input.write(`${line}\n`);
    return waitFor(
      () => {
        const out = screen.since(mark);
        return (typeof expect === 'string' ? out.includes(expect) : expect.test(out)) ? out : '';
      },
      timeoutMs,
      `"${String(expect)}" after "${line}"`,
    );
  }

  before(async () => {
    cluster = await startPgCluster();
    fx = await startBrokerFixture('embedded', cluster);
    input = new PassThrough();
    screen = new Screen();
    bot = new ConsoleBot({
      broker: fx.app.broker,
      input,
      output: screen,
      logger: createSilentLogger(),
      identity: 'alice',
      reviews: fx.app.reviews,
    });
    running = bot.run();
  });
  after(async () => {
    input.end();
    await running;
    await fx?.close();
    await cluster?.stop();
  });

  it('shows a statement held for review and decides it with review approve|deny', async () => {
    await type('as carol', 'You are now @carol');
    const created = await type('/access app-db 30m billing bug', /approved by policy/);
    const grantId = /(r[0-9a-z]{10})/.exec(created)![1]!;
    const mark = screen.text.length;
    const outcome = fx.app.reviews.review(
      {
        grantId,
        sessionId: 's_console',
        statement: "DELETE FROM invoices WHERE customer = 'acme'",
        rule: 'review-deletes',
        message: 'deletes need review',
        timeoutMs: 60_000,
      },
      new AbortController().signal,
    );
    const shown = await waitFor(
      () => /review approve (v[0-9a-z]{10})/.exec(screen.since(mark)),
      10_000,
      'review',
    );
    const reviewId = shown![1]!;
    assert.match(screen.since(mark), /\| DELETE FROM invoices WHERE customer = 'acme'/);
    await type(`review approve ${reviewId}`, /own request.*ERR_APPROVAL_SELF/);
    await type('review approve vnope0000000', /does not exist.*ERR_NOT_FOUND/);
    await type(`review maybe ${reviewId}`, /ERR_BOT_USAGE/);
    await type('as sam', 'You are now @sam');
    await type(`review deny ${reviewId}`, /ERR_APPROVAL_NOT_ELIGIBLE/);
    await type('as maria', 'You are now @maria');
    await type(`review approve ${reviewId} fine`, /Approved by @maria: fine/);
    assert.equal((await outcome).decision, 'approved');
    await type(`review deny ${reviewId}`, /already approved.*ERR_STATE_CONFLICT/);
    await type('as alice', 'You are now @alice');
  });

  it('answers mistakes with a helpful reply and an error code, changing nothing', async () => {
    const before = (await fx.app.broker.list({})).length;
    const cases: [string, string, RegExp][] = [
      ['/access app-dbb 30m fixing invoice 4411', 'ERR_TARGET_UNKNOWN', /Did you mean app-db\?/],
      ['/access app-db 3h fixing invoice 4411', 'ERR_REQUEST_DURATION', /Ask for 2h or less/],
      ['/access app-db 30m', 'ERR_REQUEST_REASON', /reason is required/],
      ['/access app-db:admin 30m fixing', 'ERR_LEVEL_UNKNOWN', /levels: read, write/],
      ['/access app-db:write 30m no ticket', 'ERR_REQUEST_REASON', /INC-123/],
      ['/access app-db 30x fixing', 'ERR_DURATION_INVALID', /not a duration/],
      ['/access status', 'ERR_BOT_USAGE', /say which request/i],
      ['/access status r0000000000', 'ERR_NOT_FOUND', /does not exist/],
      ['approve r0000000000', 'ERR_NOT_FOUND', /does not exist/],
      ['deny r0000000000', 'ERR_BOT_USAGE', /say why/i],
    ];
    for (const [line, code, text] of cases) {
      const out = await type(line, `[${code}]`);
      assert.match(out, text, line);
    }
    assert.equal((await fx.app.broker.list({})).length, before);
  });

  it('switches identity, refuses unknown people', async () => {
    assert.match(await type('as nobody', 'No person'), /as <person id>/);
    await type('as maria', 'You are now @maria.');
    await type('whoami', 'You are @maria.');
    await type('as alice', 'You are now @alice.');
  });

  it('runs the whole flow: request, approval by the manager, DM, psql login, expiry', async () => {
    const out = await type('/access app-db 5s fixing invoice 4411', 'is posted in #access-requests');
    const id = /Request (r[0-9a-z]{10})/.exec(out)![1]!;
    assert.match(screen.text, new RegExp(`#access-requests \\[${id}\\] @alice requests app-db:read for 5s`));
    assert.match(screen.text, /Needs: 1 approval from @maria \(manager\) or group dba/);
    assert.match(screen.text, new RegExp(`→ approve ${id}`));

    assert.match(await type(`approve ${id}`, '[ERR_APPROVAL_SELF]'), /own request/);
    await type('as carol', 'You are now @carol.');
    assert.match(
      await type(`approve ${id}`, '[ERR_APPROVAL_NOT_ELIGIBLE]'),
      /not an approver of this request: it needs 1 approval/,
    );

    await type('as maria', 'You are now @maria.');
    const approved = await type(`approve ${id}`, 'a DM for @alice is waiting');
    assert.match(approved, new RegExp(`↳ ${id}: @maria approved \\(1/1\\)`));
    assert.match(approved, /\(updated\).*\n {2}Active until \d\d:\d\d UTC/);
    assert.doesNotMatch(approved, /password/, 'the DM is not shown to maria');
    assert.match(await type(`approve ${id}`, '[ERR_STATE_CONFLICT]'), /already approved/);

    const dm = await type('as alice', 'password:');
    assert.match(dm, /\[DM to alice\] Your request .* is approved and active/);
    const login = parseLoginFromDm(dm);
    const ok = await runPsql(login, 'SELECT count(*) FROM invoices');
    assert.equal(ok.stdout, '2', ok.stderr);

    await waitFor(() => screen.text.includes(`↳ ${id}: Expired`), 20_000, 'expiry in the thread');
    assert.match(screen.text, /\[DM to alice\] Your access .* has expired/);
    const refused = await runPsql(login, 'SELECT 1');
    assert.equal(refused.ok, false);
    assert.match(refused.stderr, /authentication failed|does not exist|not permitted/);
    assert.equal((await fx.app.broker.show(id)).request.state, 'expired');
  });

  it('approves and denies by replying in the thread', async () => {
    await type('as alice', 'You are now @alice.');
    const out = await type('/access app-db 10m checking orders', 'is posted');
    const id = /Request (r[0-9a-z]{10})/.exec(out)![1]!;
    await type('as bob', 'You are now @bob.');
    assert.match(await type(`reply ${id} deny`, '[ERR_BOT_USAGE]'), /deny <reason>/);
    const denied = await type(`reply ${id} deny not during the freeze`, 'Denied by @bob');
    assert.match(denied, /Denied by @bob: not during the freeze/);
    assert.equal((await fx.app.broker.show(id)).request.state, 'denied');
    assert.match(await type('reply rnothere000 approve', 'No thread'), /reply <request id>/);
  });
});
