/**
 * Two Warden processes (two brokers, two Slack adapters) on one PostgreSQL store, as replicas run.
 * A request posted by one is approved on the other: the other updates the root message the first
 * posted (found through the store) instead of posting a second one, replies in its thread, and
 * finds the thread of a reply Slack sends it. Before message references were stored, the second
 * process knew nothing of the root and posted a duplicate.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { SlackSettings } from '../../../bot/config.ts';
import { SlackBot } from '../../../bot/slack/slack-bot.ts';
import { type BrokerApp, createBrokerApp } from '../../../broker/app.ts';
import { parseConfig } from '../../../broker/config/load.ts';
import { Secret } from '../../../broker/config/secrets.ts';
import { createLogger } from '../../../broker/log.ts';
import { openPostgresStore, type SqlStore } from '../../../broker/store/sql-store.ts';
import {
  buildTestConfig,
  createTargetDatabase,
  LogCapture,
  TARGET_ADMIN_ENV,
  waitFor,
} from '../../helpers/broker-fixture.ts';
import { createDatabase, execSql, type PgCluster, startPgCluster } from '../../helpers/pg-cluster.ts';
import { SlackDriver } from '../../helpers/slack-driver.ts';
import { BOT_TOKEN, SIGNING_SECRET } from '../../helpers/slack-harness.ts';
import { SlackStandin, type StandinMessage } from '../../helpers/slack-standin.ts';

interface Replica {
  store: SqlStore;
  app: BrokerApp;
  bot: SlackBot;
  driver: SlackDriver;
}

describe('two processes on one PostgreSQL store', () => {
  let cluster: PgCluster;
  let standin: SlackStandin;
  let a: Replica;
  let b: Replica;
  let keys = 0;

  before(async () => {
    cluster = await startPgCluster();
    const database = await createTargetDatabase(cluster);
    await execSql(cluster, database, 'CREATE TABLE invoices (id int); INSERT INTO invoices VALUES (1)');
    const storeUrl = cluster.urlFor(await createDatabase(cluster, 'store'));
    const config = parseConfig(buildTestConfig(cluster, database), 'test');
    standin = await SlackStandin.start({
      token: BOT_TOKEN,
      channels: [{ id: 'CREQUESTS', name: 'access-requests', member: true }],
    });
    const start = async (name: string): Promise<Replica> => {
      const logger = createLogger({ level: 'debug', destination: new LogCapture(), name });
      const store = openPostgresStore(storeUrl);
      await store.migrate();
      const app = await createBrokerApp(config, {
        logger,
        env: { [TARGET_ADMIN_ENV]: cluster.password },
        store,
        replicaId: name,
      });
      const settings: SlackSettings = {
        mode: 'http',
        host: '127.0.0.1',
        port: 0,
        signingSecret: new Secret(SIGNING_SECRET),
        botToken: new Secret(BOT_TOKEN),
        appToken: undefined,
        userMapping: 'id',
        apiUrl: standin.apiUrl,
      };
      const bot = new SlackBot({
        broker: app.broker,
        settings,
        logger,
        defaultChannel: '#access-requests',
        retry: { baseDelayMs: 10 },
        reviews: app.reviews,
        messages: store,
      });
      const { port } = await bot.start();
      const driver = new SlackDriver(`http://127.0.0.1:${port}/slack/events`, SIGNING_SECRET, standin);
      return { store, app, bot, driver };
    };
    a = await start('replica-a');
    b = await start('replica-b');
  });

  after(async () => {
    for (const r of [a, b]) {
      await r?.bot.stop();
      await r?.app.close();
      await r?.store.close();
    }
    await standin?.close();
    await cluster?.stop();
  });

  async function request(on: Replica, reason: string): Promise<{ id: string; root: StandinMessage }> {
    const key = `replica-${++keys}`;
    await on.driver.command('UALICE', `app-db 10m ${reason}`, key);
    const reply = (await waitFor(() => standin.responsesFor(key)[0], 10_000, 'reply')) as string;
    const id = /(r[0-9a-z]{10})/.exec(reply)![1]!;
    const root = (await waitFor(
      () => standin.messages.find((m) => !m.threadTs && JSON.stringify(m.blocks ?? []).includes(id)),
      10_000,
      'root',
    )) as StandinMessage;
    return { id, root };
  }

  const rootsOf = (id: string) =>
    standin.messages.filter((m) => !m.threadTs && JSON.stringify(m.blocks ?? []).includes(id));

  it('an approval on one process updates the root message the other posted', async () => {
    const { id, root } = await request(a, 'posted by a');
    await waitFor(() => standin.thread(root).some((t) => /Waiting for 1 approval/.test(t)), 10_000, 'step');
    await b.driver.click('UMARIA', 'warden_approve', id, root);
    await waitFor(
      () => root.updates > 0 && /Active until/.test(JSON.stringify(root.blocks)),
      10_000,
      'the root updated by b',
    );
    await waitFor(
      () => standin.thread(root).some((t) => /<@UMARIA> approved \(1\/1\)/.test(t)),
      10_000,
      'b in the thread',
    );
    await waitFor(
      () => standin.thread(root).some((t) => /Access is active until/.test(t)),
      10_000,
      'active step',
    );
    assert.equal(rootsOf(id).length, 1, 'one root message, not a duplicate');
    assert.equal(
      standin.calls.filter((c) => c.method === 'chat.update' && c.args.ts === root.ts && c.ok).length >= 1,
      true,
    );
    await b.bot.core.idle();
    await b.app.broker.revoke(id, { id: 'alice', admin: false }, 'done');
    await waitFor(() => /Revoked/.test(JSON.stringify(root.blocks)), 10_000, 'revoked on the root');
    assert.equal(rootsOf(id).length, 1);
  });

  it('finds the thread of a reply sent to the process that did not post its root', async () => {
    const { id, root } = await request(a, 'thread on b');
    await b.driver.threadReply('UDANA', root, 'approve');
    await waitFor(
      async () => (await b.app.broker.show(id)).request.state === 'active',
      10_000,
      'approved on b',
    );
    await waitFor(() => /Active until/.test(JSON.stringify(root.blocks)), 10_000, 'root updated');
    assert.equal(rootsOf(id).length, 1);
    await b.app.broker.revoke(id, { id: 'alice', admin: false }, 'done');
  });
});
