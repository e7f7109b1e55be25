/**
 * The Slack adapter on @slack/bolt: transport, markup and identity lookup, nothing else. It maps
 * `/access`, Approve/Deny buttons (Deny opens a reason modal), replies in a request's thread and
 * DMs onto the chat-neutral core, and draws the core's cards and messages as Block Kit and mrkdwn
 * (`mrkdwn.ts` escapes every literal). Every handler acknowledges first and does the broker work
 * after, inside Slack's three seconds.
 *
 * HTTP mode runs {@link SlackHttpReceiver}, a Bolt receiver that checks signatures and replays;
 * Socket Mode uses Bolt's own receiver (no public endpoint). Slack being unreachable never stops
 * Warden: {@link SlackConnection} keeps trying and reports the state for `/v1/health`.
 */
import { App, type Logger as BoltLogger, LogLevel, webApi } from '@slack/bolt';
import type { ChatBrokerPort, ChatMessageStore, ChatReviewPort } from '../../broker/ports/chat.ts';
import type { Logger } from '../../lib/log.ts';
import type { SlackSettings } from '../config.ts';
import { BotCore } from '../core/bot.ts';
import { MemoryChatMessages } from '../core/memory-messages.ts';
import { type Card, line, type Message } from '../core/message.ts';
import { failReply, okReply, type Reply } from '../core/replies.ts';
import type { ChatSurface, Destination, MessageRef } from '../core/surface.ts';
import { BotConfigError, BotError, isBotError } from '../errors.ts';
import { renderCardBlocks, renderDenyModal, SlackId } from './blocks.ts';
import { SlackHttpReceiver } from './http-receiver.ts';
import { decodeSlackText, renderCardText, renderMessage, type SlackName } from './mrkdwn.ts';
import type { ReplayCache } from './signature.ts';
import { callSlack, DEFAULT_RETRY, type RetryPolicy } from './slack-calls.ts';
import {
  type ChatStatus,
  SlackConnection,
  type SlackConnectionOptions,
  type SlackFailure,
  type SlackIdentity,
} from './slack-connection.ts';
import { SlackPeople } from './slack-people.ts';

export { MAX_BODY_BYTES } from './http-receiver.ts';

const MAX_DM_CHANNELS = 5000;
/** Names this chat in stored message references. */
const CHAT = 'slack';

/** What the Slack adapter calls: the chat port, nothing more. */
export type SlackBrokerPort = ChatBrokerPort;

export interface SlackBotOptions {
  broker: ChatBrokerPort;
  settings: SlackSettings;
  logger: Logger;
  /** Channel for requests whose rule and target name none. */
  defaultChannel: string;
  clock?: () => number;
  retry?: Partial<RetryPolicy>;
  /** Signed requests remembered against replay. */
  replayCache?: ReplayCache;
  /** Decisions on statements the Postgres proxy holds for review. */
  reviews?: ChatReviewPort;
  /**
   * Where message references are kept: the broker's store, so that any process (a replica, or
   * this one after a restart) updates a request's root message and finds its thread. Default: memory.
   */
  messages?: ChatMessageStore;
  /** First wait before trying Slack again after a failure, in ms. Default 1,000. */
  reconnectInitialDelayMs?: number;
}

/** A Slack message reference: `<channel id>:<ts>`, the same for a root and for a reply naming it. */
export function formatSlackRef(channel: string, ts: string): MessageRef {
  return `${channel}:${ts}`;
}

/** The channel and ts of a reference made by {@link formatSlackRef}. */
export function parseSlackRef(ref: MessageRef): { channel: string; ts: string } {
  const at = ref.indexOf(':');
  if (at <= 0) throw new BotError('ERR_BOT_INTERNAL', 'not a Slack message reference');
  return { channel: ref.slice(0, at), ts: ref.slice(at + 1) };
}

export class SlackBot {
  readonly core: BotCore;
  readonly app: App;
  readonly people: SlackPeople;
  readonly connection: SlackConnection;
  readonly #log: Logger;
  readonly #retry: RetryPolicy;
  readonly #client: webApi.WebClient;
  readonly #receiver: SlackHttpReceiver | undefined;
  readonly #messages: ChatMessageStore;
  readonly #clock: () => number;
  readonly #dmChannels = new Map<string, string>();
  #started = false;

  constructor(options: SlackBotOptions) {
    const { settings } = options;
    this.#log = options.logger;
    this.#clock = options.clock ?? Date.now;
    this.#retry = { ...DEFAULT_RETRY, ...options.retry };
    this.#messages = options.messages ?? new MemoryChatMessages();
    const logger = toBoltLogger(options.logger);
    const clientOptions = slackClientOptions(settings, logger);
    this.#client = new webApi.WebClient(settings.botToken.reveal(), clientOptions);
    this.connection = createSlackConnection(this.#client, settings, options.logger, {
      ...(settings.mode === 'socket' ? { connect: async () => void (await this.app.start()) } : {}),
      onConnected: async () => {
        const posted = await this.core.catchUp();
        if (posted > 0) this.#log.info({ posted }, 'posted the requests made while Slack was unreachable');
      },
      clock: this.#clock,
      initialDelayMs: options.reconnectInitialDelayMs ?? 1000,
    });
    // Bolt learns who the bot is from our connection, which never fails an event for want of it:
    // events are authenticated by their signature, and `ignoreSelf` needs only the ids once known.
    const authorize = async () => ({
      botToken: settings.botToken.reveal(),
      botId: this.connection.identity?.botId,
      botUserId: this.connection.identity?.botUserId,
    });
    if (settings.mode === 'http') {
      if (!settings.signingSecret) {
        throw new BotConfigError('chat.slack.signing_secret', 'HTTP mode needs a signing secret');
      }
      this.#receiver = new SlackHttpReceiver({
        host: settings.host,
        port: settings.port,
        signingSecret: settings.signingSecret,
        logger: options.logger,
        boltLogger: logger,
        clock: this.#clock,
        ...(options.replayCache ? { replayCache: options.replayCache } : {}),
      });
      this.app = new App({ receiver: this.#receiver, authorize, logger, clientOptions });
    } else {
      if (!settings.appToken) {
        throw new BotConfigError('chat.slack.app_token', 'Socket Mode needs an app-level token');
      }
      this.app = new App({
        appToken: settings.appToken.reveal(),
        socketMode: true,
        authorize,
        logger,
        clientOptions,
      });
    }
    this.people = new SlackPeople({
      directory: options.broker.directory,
      mapping: settings.userMapping,
      api: {
        emailOf: async (user) => {
          const res = await this.#call(() => this.#client.users.info({ user }));
          return res.user?.profile?.email;
        },
        idOfEmail: async (email) => {
          try {
            const res = await this.#call(() => this.#client.users.lookupByEmail({ email }));
            return res.user?.id;
          } catch {
            return undefined;
          }
        },
      },
    });
    this.core = new BotCore({
      broker: options.broker,
      surface: this.#surface(),
      logger: options.logger,
      defaultChannel: options.defaultChannel,
      messages: this.#messages,
      ...(options.clock ? { clock: options.clock } : {}),
      ...(options.reviews ? { reviews: options.reviews } : {}),
      via: 'chat:slack',
    });
    this.#listen();
    // Check the token at once, as Bolt would; a failure is only recorded: start() keeps trying.
    void this.connection.check();
  }

  /** Whether Slack is reachable, for `/v1/health`. */
  status(): ChatStatus {
    return this.connection.status();
  }

  /**
   * Starts following the broker and serving Slack; returns the HTTP port in HTTP mode. Resolves
   * whether or not Slack is reachable: the connection keeps trying in the background. Fails only
   * when the HTTP port cannot be bound.
   */
  async start(): Promise<{ port: number | undefined }> {
    let port: number | undefined;
    if (this.#receiver) port = (await this.#receiver.start()).port;
    this.#started = true;
    this.core.start();
    this.connection.start();
    return { port };
  }

  async stop(): Promise<void> {
    this.core.stop();
    await this.connection.stop();
    if (this.#started) {
      this.#started = false;
      await this.app.stop().catch((error: unknown) => {
        this.#log.warn({ message: (error as Error).message }, 'stopping the Slack app failed');
      });
    }
    await this.core.idle();
  }

  // ------------------------------------------------------------------ handlers

  #listen(): void {
    this.app.command('/access', async ({ ack, command, respond }) => {
      await ack();
      await afterPendingIo();
      const reply = await this.#asPerson(command.user_id, (person) =>
        this.core.handleCommand(person, decodeSlackText(command.text ?? '')),
      );
      try {
        await respond({ response_type: 'ephemeral', text: this.#render(reply.message) });
      } catch (error) {
        this.#log.error(
          { code: (error as { code?: string }).code, message: (error as Error).message },
          'cannot answer the slash command',
        );
      }
    });

    this.app.action(SlackId.Approve, async ({ ack, body, action }) => {
      await ack();
      await afterPendingIo();
      const reply = await this.#asPerson(body.user.id, (person) =>
        this.core.handleAction(person, valueOfAction(action), 'approve'),
      );
      await this.#explain(reply, body.user.id, channelOf(body));
    });

    this.app.action(SlackId.Deny, async ({ ack, body, action }) => {
      await ack();
      const requestId = valueOfAction(action);
      const channel = channelOf(body);
      const reply = await this.#asPerson(body.user.id, async (person) => {
        const refused = await this.core.checkDecider(person, requestId);
        if (refused) return refused;
        const triggerId = 'trigger_id' in body ? String(body.trigger_id) : '';
        const metadata = JSON.stringify({ id: requestId, channel });
        const view = renderDenyModal(requestId);
        await this.#call(() =>
          this.#client.views.open({
            trigger_id: triggerId,
            view: { ...view, private_metadata: metadata } as never,
          }),
        );
        return okReply();
      });
      await this.#explain(reply, body.user.id, channel);
    });

    for (const [id, verb] of [
      [SlackId.ReviewApprove, 'approve'],
      [SlackId.ReviewDeny, 'deny'],
    ] as const) {
      this.app.action(id, async ({ ack, body, action }) => {
        await ack();
        await afterPendingIo();
        const reply = await this.#asPerson(body.user.id, (person) =>
          this.core.handleReviewAction(person, valueOfAction(action), verb),
        );
        await this.#explain(reply, body.user.id, channelOf(body));
      });
    }

    this.app.view(SlackId.DenyModal, async ({ ack, view, body }) => {
      const reason = view.state.values[SlackId.ReasonBlock]?.[SlackId.ReasonInput]?.value?.trim() ?? '';
      if (!reason) {
        await ack({
          response_action: 'errors',
          errors: { [SlackId.ReasonBlock]: 'Say why you deny the request.' },
        });
        return;
      }
      await ack();
      await afterPendingIo();
      const { id, channel } = parseMetadata(view.private_metadata);
      const reply = await this.#asPerson(body.user.id, (person) =>
        this.core.handleAction(person, id, 'deny', reason),
      );
      await this.#explain(reply, body.user.id, channel);
    });

    this.app.message(async ({ message }) => {
      if (message.subtype !== undefined || !('thread_ts' in message) || !message.thread_ts) return;
      if (('bot_id' in message && message.bot_id) || !message.user) return;
      const root = formatSlackRef(message.channel, message.thread_ts);
      if (!(await this.core.findRequestByMessage(root))) return;
      const user = message.user;
      const text = decodeSlackText(message.text ?? '');
      let reply: Reply | undefined;
      try {
        const person = await this.people.toPerson(user);
        reply = await this.core.handleThreadReply(person, root, text);
      } catch (error) {
        if (BotCore.looksLikeDecision(text)) reply = this.#unknown(error);
      }
      if (reply) await this.#explain(reply, user, message.channel, message.thread_ts);
    });

    this.app.error(async (error) => {
      this.#log.error(
        { code: (error as { code?: string }).code, message: error.message },
        'bolt handler failed',
      );
    });
  }

  /** Runs `work` as the Warden person behind a Slack user; an unmapped user gets an explanation. */
  async #asPerson(slackUser: string, work: (person: string) => Promise<Reply>): Promise<Reply> {
    let person: string;
    try {
      person = await this.people.toPerson(slackUser);
    } catch (error) {
      return this.#unknown(error);
    }
    try {
      return await work(person);
    } catch (error) {
      this.#log.error(
        { code: (error as { code?: string }).code, message: (error as Error).message },
        'slack action failed',
      );
      return failReply(
        (error as { code?: string }).code ?? 'ERR_BOT_INTERNAL',
        line`That did not work: ${(error as Error).message}`,
      );
    }
  }

  #unknown(error: unknown): Reply {
    if (isBotError(error)) return failReply(error.code, line`${error.message}.`);
    this.#log.error({ message: (error as Error).message }, 'cannot map a Slack user');
    return failReply('ERR_BOT_INTERNAL', line`Warden could not look you up in Slack; try again.`);
  }

  /** Failed clicks and thread commands get an ephemeral explanation; successes show in the thread. */
  async #explain(reply: Reply, user: string, channel: string | undefined, threadTs?: string): Promise<void> {
    if (reply.ok || !channel) return;
    try {
      await this.#call(() =>
        this.#client.chat.postEphemeral({
          channel,
          user,
          text: this.#render(reply.message),
          ...(threadTs ? { thread_ts: threadTs } : {}),
        }),
      );
    } catch (error) {
      this.#log.error(
        { code: (error as BotError).code, message: (error as Error).message },
        'cannot explain to the user',
      );
    }
  }

  // ------------------------------------------------------------------ surface

  /** A Web API call under the retry policy; Slack found unreachable sends the connection back to trying. */
  async #call<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await callSlack(call, this.#retry);
    } catch (error) {
      if (isBotError(error) && error.details.transient === true) {
        const failure: SlackFailure = { kind: 'unreachable', message: error.message };
        this.connection.lost(failure);
      }
      throw error;
    }
  }

  readonly #name: SlackName = (personId) => this.people.known(personId);

  #render(message: Message): string {
    return renderMessage(message, this.#name);
  }

  #surface(): ChatSurface {
    return {
      name: CHAT,
      postCard: async (where: Destination, card: Card) => {
        const thread = where.thread ? parseSlackRef(where.thread) : undefined;
        const res = await this.#call(() =>
          this.#client.chat.postMessage({
            channel: thread?.channel ?? where.channel,
            ...(thread ? { thread_ts: thread.ts } : {}),
            text: renderCardText(card, this.#name),
            blocks: renderCardBlocks(card, this.#name) as never,
          }),
        );
        return formatSlackRef(String(res.channel), String(res.ts));
      },
      updateCard: async (ref: MessageRef, card: Card) => {
        const { channel, ts } = parseSlackRef(ref);
        await this.#call(() =>
          this.#client.chat.update({
            channel,
            ts,
            text: renderCardText(card, this.#name),
            blocks: renderCardBlocks(card, this.#name) as never,
          }),
        );
      },
      postInThread: async (root: MessageRef, message: Message) => {
        const { channel, ts } = parseSlackRef(root);
        await this.#call(() =>
          this.#client.chat.postMessage({ channel, thread_ts: ts, text: this.#render(message) }),
        );
      },
      sendDirect: async (personId: string, message: Message) => {
        const channel = await this.#dmChannel(personId);
        await this.#call(() => this.#client.chat.postMessage({ channel, text: this.#render(message) }));
      },
      reaches: (personId: string) => this.people.reaches(personId),
    };
  }

  /** The DM channel with a person: remembered, then stored (any process reuses it), then opened. */
  async #dmChannel(personId: string): Promise<string> {
    const slackId = await this.people.toSlack(personId);
    if (!slackId) {
      throw new BotError('ERR_BOT_USER_UNKNOWN', `cannot DM ${personId}: no Slack user is known for them`);
    }
    const cached = this.#dmChannels.get(slackId);
    if (cached) return cached;
    const stored = await this.#messages.getChatMessage(CHAT, 'direct', slackId);
    let channel = stored?.ref;
    if (!channel) {
      const res = await this.#call(() => this.#client.conversations.open({ users: slackId }));
      channel = res.channel?.id;
      if (!channel) throw new BotError('ERR_BOT_SLACK_API', 'conversations.open returned no channel');
      await this.#messages.saveChatMessage(
        { chat: CHAT, subject: 'direct', subjectId: slackId, ref: channel, createdAt: this.#clock() },
        { replace: true },
      );
    }
    this.#dmChannels.set(slackId, channel);
    if (this.#dmChannels.size > MAX_DM_CHANNELS)
      this.#dmChannels.delete(this.#dmChannels.keys().next().value as string);
    return channel;
  }
}

/** Web API client options: our own retry policy runs the show, so the client fails fast and reports rate limits. */
function slackClientOptions(settings: SlackSettings, logger: BoltLogger) {
  return {
    slackApiUrl: settings.apiUrl,
    retryConfig: { retries: 0 },
    rejectRateLimitedCalls: true,
    timeout: 10_000,
    logger,
  };
}

/** The connection of an adapter (or of `warden doctor`'s one check) over a Web API client. */
function createSlackConnection(
  client: webApi.WebClient,
  settings: SlackSettings,
  logger: Logger,
  extra: Partial<Omit<SlackConnectionOptions, 'verify' | 'logger' | 'backoff'>> & {
    initialDelayMs?: number;
  } = {},
): SlackConnection {
  const { initialDelayMs = 1000, ...rest } = extra;
  return new SlackConnection({
    verify: async () => {
      const res = await client.auth.test();
      return { botUserId: res.user_id, botId: res.bot_id, team: res.team, user: res.user };
    },
    logger,
    backoff: { initialMs: initialDelayMs, maxMs: settings.reconnectMaxDelayMs ?? 60_000 },
    ...rest,
  });
}

/**
 * One `auth.test` with the configured token, as the adapter makes it (`warden doctor`): undefined
 * when Slack accepts the token, else why not, network failures told apart from a refused token.
 */
export async function checkSlackSettings(
  settings: SlackSettings,
  logger: Logger,
): Promise<{ failure: SlackFailure | undefined; identity: SlackIdentity | undefined }> {
  const client = new webApi.WebClient(
    settings.botToken.reveal(),
    slackClientOptions(settings, toBoltLogger(logger)),
  );
  const connection = createSlackConnection(client, settings, logger);
  const failure = await connection.check();
  return { failure, identity: connection.identity };
}

/**
 * Lets the event loop take in (and acknowledge) the requests already waiting before this one's
 * slow work starts: under a burst, acknowledgements come first.
 */
function afterPendingIo(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function valueOfAction(action: unknown): string {
  const value = (action as { value?: unknown }).value;
  return typeof value === 'string' ? value : '';
}

function channelOf(body: unknown): string | undefined {
  const b = body as { channel?: { id?: string }; container?: { channel_id?: string } };
  return b.channel?.id ?? b.container?.channel_id;
}

function parseMetadata(text: string): { id: string; channel: string | undefined } {
  try {
    const parsed = JSON.parse(text) as { id?: unknown; channel?: unknown };
    return {
      id: typeof parsed.id === 'string' ? parsed.id : '',
      channel: typeof parsed.channel === 'string' ? parsed.channel : undefined,
    };
  } catch {
    return { id: '', channel: undefined };
  }
}

/** Bolt logs through pino at warn and above only: its debug output can carry message bodies. */
function toBoltLogger(log: Logger): BoltLogger {
  const text = (parts: unknown[]) => parts.map((p) => (typeof p === 'string' ? p : String(p))).join(' ');
  return {
    debug: () => {},
    info: () => {},
    warn: (...parts: unknown[]) => log.warn({ component: 'bolt' }, text(parts)),
    error: (...parts: unknown[]) => log.error({ component: 'bolt' }, text(parts)),
    setLevel: () => {},
    getLevel: () => LogLevel.WARN,
    setName: () => {},
  };
}
