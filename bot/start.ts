/**
 * The one way chat front ends start, for `warden serve` and `warden doctor` alike. `prepareChat`
 * reads the `chat:` section and resolves its secrets (a configuration error fails here, before
 * anything starts); the prepared chat then either serves (builds each adapter on the chat port,
 * listens, follows the broker, keeps reconnecting) or checks once (doctor). A chat that cannot be
 * reached never fails `serve`: it runs degraded and says so in {@link ChatRuntime.health}.
 */
import type { Readable, Writable } from 'node:stream';
import type {
  ChatBrokerPort,
  ChatConversationStore,
  ChatMessageStore,
  ChatReviewPort,
  OnceStore,
  ResolveSecret,
} from '../broker/ports/chat.ts';
import type { Logger } from '../lib/log.ts';
import {
  type BotConfig,
  parseBotConfig,
  resolveSlackSettings,
  resolveTeamsSettings,
  type SlackSettings,
  type TeamsSettings,
} from './config.ts';
import { ConsoleBot } from './console/console-bot.ts';
import { checkSlackSettings, SlackBot } from './slack/slack-bot.ts';
import type { RetryPolicy } from './slack/slack-calls.ts';
import type { ChatStatus } from './slack/slack-connection.ts';
import { checkTeamsSettings, TeamsBot } from './teams/teams-bot.ts';

export type { ChatStatus } from './slack/slack-connection.ts';

/** A console chat on a stream (`warden serve --console`, the demo). */
export interface ConsoleChatOptions {
  input: Readable;
  output: Writable;
  /** Who types first (a person id). */
  identity: string;
  prompt: boolean;
}

/** What serving chat needs of the rest of Warden. */
export interface ServeChatOptions {
  broker: ChatBrokerPort;
  reviews?: ChatReviewPort;
  /** Where message references are kept: the broker's store, shared by every process. */
  messages?: ChatMessageStore;
  /** Where 1:1 conversation references are kept (Teams): the broker's store. */
  conversations?: ChatConversationStore;
  /** One-time keys against replayed activities (Teams): the broker's store. */
  once?: OnceStore;
  logger: Logger;
  console?: ConsoleChatOptions;
  /** Web API retries and the first reconnect delay (tests shorten them). */
  slackRetry?: Partial<RetryPolicy> & { reconnectInitialDelayMs?: number };
}

/** One chat's answer to `warden doctor`. */
export interface ChatCheck {
  name: string;
  ok: boolean;
  detail: string;
  /** What to do about a failure. */
  fix?: string;
}

/** The `chat:` section read and its secrets resolved: ready to serve or to check. */
export interface PreparedChat {
  readonly config: BotConfig;
  readonly slack: SlackSettings | undefined;
  readonly teams: TeamsSettings | undefined;
  /** Starts the configured chats. Fails only when a listener cannot be bound. */
  serve(options: ServeChatOptions): Promise<ChatRuntime>;
  /** Checks each configured chat once, starting nothing (`warden doctor`). */
  check(logger: Logger): Promise<ChatCheck[]>;
}

/** The running chat front ends. */
export interface ChatRuntime {
  readonly slack: SlackBot | undefined;
  readonly teams: TeamsBot | undefined;
  readonly console: ConsoleBot | undefined;
  /** Where the Slack adapter listens (HTTP mode). */
  readonly slackPort: number | undefined;
  /** Where the Teams adapter listens (`POST /api/messages`). */
  readonly teamsPort: number | undefined;
  /** Ends when the console does (Ctrl-D, `quit`); undefined without a console. */
  readonly consoleDone: Promise<void> | undefined;
  /** Each chat's state for `/v1/health`. */
  health(): Record<string, ChatStatus>;
  stop(): Promise<void>;
}

const SLACK_CHECK = 'Slack auth.test';

/**
 * Reads the `chat:` section and resolves its secrets through `resolveSecret`. Throws
 * `ERR_BOT_CONFIG` (a configuration error naming the key) or the resolver's error.
 */
export async function prepareChat(options: {
  config: unknown;
  resolveSecret: ResolveSecret;
}): Promise<PreparedChat> {
  const config = parseBotConfig(options.config);
  const slack = config.slack && (await resolveSlackSettings(config.slack, options.resolveSecret));
  const teams = config.teams && (await resolveTeamsSettings(config.teams, options.resolveSecret));
  return {
    config,
    slack,
    teams,
    serve: (serveOptions) => serveChat(config, slack, teams, serveOptions),
    check: async (logger) => [
      ...(slack ? [await checkSlack(slack, logger)] : []),
      ...(teams ? [await checkTeams(teams)] : []),
    ],
  };
}

/** `prepareChat`, then serve (`warden serve`) or check once (`warden doctor`). */
export async function startChat(
  options: { config: unknown; resolveSecret: ResolveSecret } & (
    | ({ mode: 'serve' } & ServeChatOptions)
    | { mode: 'check'; logger: Logger }
  ),
): Promise<{ runtime?: ChatRuntime; checks: ChatCheck[] }> {
  const chat = await prepareChat(options);
  if (options.mode === 'check') return { checks: await chat.check(options.logger) };
  return { runtime: await chat.serve(options), checks: [] };
}

async function serveChat(
  config: BotConfig,
  settings: SlackSettings | undefined,
  teamsSettings: TeamsSettings | undefined,
  options: ServeChatOptions,
): Promise<ChatRuntime> {
  const slack = settings
    ? new SlackBot({
        broker: options.broker,
        settings,
        logger: options.logger,
        defaultChannel: config.default_channel,
        ...(options.reviews ? { reviews: options.reviews } : {}),
        ...(options.messages ? { messages: options.messages } : {}),
        ...(options.slackRetry ? { retry: options.slackRetry } : {}),
        ...(options.slackRetry?.reconnectInitialDelayMs !== undefined
          ? { reconnectInitialDelayMs: options.slackRetry.reconnectInitialDelayMs }
          : {}),
      })
    : undefined;
  let slackPort: number | undefined;
  if (slack && settings) {
    slackPort = (await slack.start()).port;
    options.logger.info({ mode: settings.mode, port: slackPort }, 'Slack bot started');
  }
  const teams = teamsSettings
    ? new TeamsBot({
        broker: options.broker,
        settings: teamsSettings,
        logger: options.logger,
        defaultChannel: config.default_channel,
        ...(options.reviews ? { reviews: options.reviews } : {}),
        ...(options.messages ? { messages: options.messages } : {}),
        ...(options.conversations ? { conversations: options.conversations } : {}),
        ...(options.once ? { once: options.once } : {}),
        ...(options.slackRetry ? { retry: options.slackRetry } : {}),
      })
    : undefined;
  let teamsPort: number | undefined;
  if (teams) {
    try {
      teamsPort = (await teams.start()).port;
    } catch (error) {
      await slack?.stop();
      throw error;
    }
    options.logger.info({ port: teamsPort }, 'Teams bot started');
  }
  let consoleBot: ConsoleBot | undefined;
  let consoleDone: Promise<void> | undefined;
  if (options.console) {
    consoleBot = new ConsoleBot({
      broker: options.broker,
      logger: options.logger,
      defaultChannel: config.default_channel,
      ...options.console,
      ...(options.reviews ? { reviews: options.reviews } : {}),
    });
    consoleDone = consoleBot.run();
  }
  return {
    slack,
    teams,
    console: consoleBot,
    slackPort,
    teamsPort,
    consoleDone,
    health: (): Record<string, ChatStatus> => ({
      ...(slack ? { slack: slack.status() } : {}),
      ...(teams ? { teams: teams.status() } : {}),
    }),
    async stop() {
      await Promise.all([slack?.stop(), teams?.stop()]);
    },
  };
}

const TEAMS_CHECK = 'Teams bot token';

/** One token from Entra ID for the bot, telling a network failure from refused credentials. */
async function checkTeams(settings: TeamsSettings): Promise<ChatCheck> {
  const failure = await checkTeamsSettings(settings);
  if (!failure)
    return { name: TEAMS_CHECK, ok: true, detail: `app ${settings.appId} in tenant ${settings.tenantId}` };
  if (failure.kind === 'unreachable') {
    return {
      name: TEAMS_CHECK,
      ok: false,
      detail: `${failure.message}: a network problem, not the credentials`,
      fix: `check that Warden can reach ${settings.loginEndpoint} and the Bot Connector; warden serve keeps running and retries meanwhile`,
    };
  }
  return {
    name: TEAMS_CHECK,
    ok: false,
    detail: failure.message,
    fix: 'check chat.teams.app_id, app_password and tenant_id against the Entra app registration',
  };
}

/** One `auth.test`, telling a network failure from a refused token. */
async function checkSlack(settings: SlackSettings, logger: Logger): Promise<ChatCheck> {
  const { failure, identity: who } = await checkSlackSettings(settings, logger);
  if (!failure) {
    return {
      name: SLACK_CHECK,
      ok: true,
      detail: `bot ${who?.user ?? '?'} in workspace ${who?.team ?? '?'}`,
    };
  }
  switch (failure.kind) {
    case 'unreachable':
      return {
        name: SLACK_CHECK,
        ok: false,
        detail: `${failure.message}: a network problem, not the token`,
        fix: `check that Warden can reach ${settings.apiUrl} (DNS, firewall, egress proxy); warden serve keeps running and retries meanwhile`,
      };
    case 'refused':
      return {
        name: SLACK_CHECK,
        ok: false,
        detail: failure.message,
        fix: 'check chat.slack.bot_token (xoxb-...), and that the app is installed in the workspace',
      };
    default:
      return {
        name: SLACK_CHECK,
        ok: false,
        detail: failure.message,
        fix: 'check the chat.slack section and the Slack app (manifests/slack-app.yaml)',
      };
  }
}
