/** A broker on PostgreSQL, the Slack Web API stand-in, and the Slack bot over HTTP on 127.0.0.1:0. */

import type { SlackSettings } from '../../bot/config.ts';
import { SlackBot } from '../../bot/slack/slack-bot.ts';
import type { ConfigInput } from '../../broker/config/schema.ts';
import { Secret } from '../../broker/config/secrets.ts';
import { createLogger } from '../../broker/log.ts';
import { type BrokerFixture, LogCapture, startBrokerFixture } from './broker-fixture.ts';
import type { PgCluster } from './pg-cluster.ts';
import { SlackDriver } from './slack-driver.ts';
import { SlackStandin } from './slack-standin.ts';

export const SIGNING_SECRET = 'test-signing-secret-8f3a';
export const BOT_TOKEN = 'xoxb-test-0000-warden';

export interface SlackHarness {
  fx: BrokerFixture;
  standin: SlackStandin;
  bot: SlackBot;
  driver: SlackDriver;
  /** The bot's own log lines (the broker's are in `fx.logs`). */
  botLogs: LogCapture;
  close(): Promise<void>;
}

export async function startSlackHarness(
  cluster: PgCluster,
  options: { userMapping?: 'id' | 'email'; overrides?: Partial<ConfigInput> } = {},
): Promise<SlackHarness> {
  const fx = await startBrokerFixture('embedded', cluster, options.overrides);
  const standin = await SlackStandin.start({
    token: BOT_TOKEN,
    channels: [
      { id: 'CREQUESTS', name: 'access-requests', member: true },
      { id: 'CGENERAL', name: 'general', member: true },
      { id: 'CPRIVATE', name: 'private', member: false },
    ],
    users: { UALICE: 'alice@example.com', UMARIA: 'maria@example.com', UCAROL: 'carol@example.com' },
  });
  const settings: SlackSettings = {
    mode: 'http',
    host: '127.0.0.1',
    port: 0,
    signingSecret: new Secret(SIGNING_SECRET),
    botToken: new Secret(BOT_TOKEN),
    appToken: undefined,
    userMapping: options.userMapping ?? 'id',
    apiUrl: standin.apiUrl,
  };
  const botLogs = new LogCapture();
  const bot = new SlackBot({
    broker: fx.app.broker,
    settings,
    logger: createLogger({ level: 'debug', destination: botLogs }),
    defaultChannel: '#access-requests',
    retry: { baseDelayMs: 10 },
    reviews: fx.app.reviews,
  });
  const { port } = await bot.start();
  const driver = new SlackDriver(`http://127.0.0.1:${port}/slack/events`, SIGNING_SECRET, standin);
  return {
    fx,
    standin,
    bot,
    driver,
    botLogs,
    async close() {
      await bot.stop();
      await standin.close();
      await fx.close();
    },
  };
}
