/**
 * A broker on PostgreSQL, the Teams stand-in (Connector, Entra ID, OpenID metadata), and the
 * Teams bot (the real Teams SDK app) on its real HTTP endpoint on 127.0.0.1:0, with a driver that
 * sends activities as the Bot Connector does.
 */
import type { TeamsSettings } from '../../bot/config.ts';
import { TeamsBot } from '../../bot/teams/teams-bot.ts';
import type { ConfigInput } from '../../broker/config/schema.ts';
import { Secret } from '../../broker/config/secrets.ts';
import { createLogger } from '../../broker/log.ts';
import {
  type BrokerFixture,
  buildTestConfig,
  LogCapture,
  startBrokerFixture,
  waitFor,
} from './broker-fixture.ts';
import type { PgCluster } from './pg-cluster.ts';
import {
  APP_ID,
  APP_PASSWORD,
  BOT_SCOPE,
  ISSUER,
  type StandinUser,
  TENANT_ID,
  TeamsStandin,
} from './teams-standin.ts';

/** The approval channel and the people's Entra object ids. */
export const REQUESTS_CHANNEL = '19:requests0a1b2c@thread.tacv2';
export const USERS: Record<string, StandinUser> = {
  alice: { aadObjectId: 'a11ce000-0000-4000-8000-000000000001', upn: 'alice@example.com', name: 'Alice' },
  maria: { aadObjectId: '3a41a000-0000-4000-8000-000000000002', upn: 'maria@example.com', name: 'Maria' },
  bob: { aadObjectId: 'b0b00000-0000-4000-8000-000000000003', upn: 'bob@example.com', name: 'Bob' },
  carol: { aadObjectId: 'ca201000-0000-4000-8000-000000000004', upn: 'carol@example.com', name: 'Carol' },
  sam: { aadObjectId: '5a300000-0000-4000-8000-000000000006', upn: 'sam@example.com', name: 'Sam' },
  stranger: { aadObjectId: '5e4a0000-0000-4000-8000-000000000005', upn: 'stranger@example.com', name: 'Eve' },
};

export interface TeamsHarness {
  fx: BrokerFixture;
  standin: TeamsStandin;
  bot: TeamsBot;
  driver: TeamsDriver;
  botLogs: LogCapture;
  settings: TeamsSettings;
  close(): Promise<void>;
}

/** The test organisation with Teams ids: carol has none (she is found by UPN, or not at all). */
export function teamsPeople(cluster: PgCluster): ConfigInput['people'] {
  const base = buildTestConfig(cluster, 'unused').people;
  return (base ?? []).map((p) => {
    const user = USERS[p.id];
    return user && p.id !== 'carol' ? { ...p, teams: user.aadObjectId } : p;
  });
}

export async function startTeamsHarness(
  cluster: PgCluster,
  options: { userMapping?: 'id' | 'upn'; overrides?: Partial<ConfigInput>; insecureSkipAuth?: boolean } = {},
): Promise<TeamsHarness> {
  const fx = await startBrokerFixture('postgres', cluster, {
    people: teamsPeople(cluster),
    ...options.overrides,
  });
  const standin = await TeamsStandin.start(Object.values(USERS));
  const settings: TeamsSettings = {
    appId: APP_ID,
    appPassword: new Secret(APP_PASSWORD),
    tenantId: TENANT_ID,
    host: '127.0.0.1',
    port: 0,
    channels: { '#access-requests': REQUESTS_CHANNEL },
    serviceUrl: standin.serviceUrl,
    userMapping: options.userMapping ?? 'id',
    contact: 'maria@example.com (Warden admin)',
    loginEndpoint: standin.url,
    openIdMetadataUrl: standin.openIdMetadataUrl,
    tokenIssuer: ISSUER,
    botScope: BOT_SCOPE,
    insecureSkipAuth: options.insecureSkipAuth ?? false,
  };
  const botLogs = new LogCapture();
  const bot = new TeamsBot({
    broker: fx.app.broker,
    settings,
    logger: createLogger({ level: 'debug', destination: botLogs }),
    defaultChannel: '#access-requests',
    retry: { baseDelayMs: 10 },
    reviews: fx.app.reviews,
    messages: fx.store,
    conversations: fx.store,
    once: fx.store,
    reconnectInitialDelayMs: 50,
    reconnectMaxDelayMs: 400,
  });
  const { port } = await bot.start();
  // The bot's first token (its start-up check) is fetched before any test counts calls.
  await waitFor(() => bot.status().state === 'connected', 10_000, 'the Teams bot to reach the stand-in');
  const driver = new TeamsDriver(`http://127.0.0.1:${port}/api/messages`, standin);
  return {
    fx,
    standin,
    bot,
    driver,
    botLogs,
    settings,
    async close() {
      await bot.stop();
      await standin.close();
      await fx.close();
    },
  };
}

let sequence = 0;

/** Where an activity happens: a 1:1 chat with the bot, or a channel (optionally in a thread). */
export type Where = { personal: true } | { channel: string; thread?: string };

/** Sends activities to the bot as the Bot Connector does. */
export class TeamsDriver {
  constructor(
    readonly url: string,
    readonly standin: TeamsStandin,
  ) {}

  /** The 1:1 conversation id of a user (as Teams names it). */
  static personalOf(user: string): string {
    return `a:1personal-${USERS[user]!.aadObjectId}`;
  }

  activity(user: string, where: Where, extra: Record<string, unknown>): Record<string, unknown> {
    const u = USERS[user]!;
    const conversation =
      'personal' in where
        ? { id: TeamsDriver.personalOf(user), conversationType: 'personal', tenantId: TENANT_ID }
        : {
            id: where.thread ? `${where.channel};messageid=${where.thread}` : where.channel,
            conversationType: 'channel',
            tenantId: TENANT_ID,
            isGroup: true,
          };
    return {
      id: `f:${Date.now()}-${++sequence}`,
      channelId: 'msteams',
      serviceUrl: this.standin.serviceUrl,
      timestamp: new Date().toISOString(),
      from: { id: `29:${u.aadObjectId}`, aadObjectId: u.aadObjectId, name: u.name },
      recipient: { id: `28:${APP_ID}`, name: 'Warden' },
      conversation,
      channelData: { tenant: { id: TENANT_ID } },
      ...extra,
    };
  }

  /** A message; `<at>Warden</at>` in the text is a mention of the bot, as Teams marks it. */
  message(user: string, where: Where, text: string): Record<string, unknown> {
    const mention = text.includes('<at>Warden</at>')
      ? {
          entities: [
            { type: 'mention', text: '<at>Warden</at>', mentioned: { id: `28:${APP_ID}`, name: 'Warden' } },
          ],
        }
      : {};
    return this.activity(user, where, { type: 'message', text, textFormat: 'plain', ...mention });
  }

  invoke(user: string, where: Where, verb: string, data: Record<string, unknown>): Record<string, unknown> {
    return this.activity(user, where, {
      type: 'invoke',
      name: 'adaptiveCard/action',
      value: { action: { type: 'Action.Execute', verb, data }, trigger: 'manual' },
    });
  }

  /** Posts an activity; `token` null sends none, undefined a valid one. */
  async send(
    activity: Record<string, unknown>,
    token?: string | null,
  ): Promise<{ status: number; body: unknown }> {
    const auth = token === undefined ? await this.standin.sign() : token;
    const res = await fetch(this.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(auth ? { authorization: `Bearer ${auth}` } : {}) },
      body: JSON.stringify(activity),
    });
    const text = await res.text();
    let body: unknown = text;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {}
    return { status: res.status, body };
  }
}
