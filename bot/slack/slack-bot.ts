/**
 * The Slack front end on @slack/bolt: `/access`, Approve/Deny buttons with a reason modal,
 * `approve` / `deny <reason>` replies in a request's thread, DMs to the requester. Every handler
 * acknowledges first and does the broker work after, inside Slack's three seconds.
 *
 * HTTP mode serves `POST /slack/events`: this module checks the signature, the five-minute
 * window and replays, then hands the request to Bolt's HTTPReceiver (which checks the signature
 * again). Socket Mode needs no public endpoint.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { App, type Logger as BoltLogger, HTTPReceiver, LogLevel } from '@slack/bolt';
import type { WebClient } from '@slack/web-api';
import type { Logger } from '../../broker/log.ts';
import type { SlackSettings } from '../config.ts';
import { BotCore, type ChatSurface, type MessageRef } from '../core/bot.ts';
import type { Reply } from '../core/replies.ts';
import { BotConfigError, BotError, isBotError } from '../errors.ts';
import type { BrokerPort, ReviewPort } from '../port.ts';
import { renderDenyModal, renderRequestBlocks, renderReviewBlocks, SlackId } from './blocks.ts';
import { ReplayCache, verifySlackSignature } from './signature.ts';
import { callSlack, DEFAULT_RETRY, type RetryPolicy } from './slack-calls.ts';
import { SlackPeople } from './slack-people.ts';

/** Largest request body accepted on `/slack/events` (Slack's payloads are a few KiB). */
export const MAX_BODY_BYTES = 64 * 1024;
const EVENTS_PATH = '/slack/events';
const MAX_DM_CHANNELS = 5000;

/** What the broker must also answer for the Slack adapter: whether a click may act. */
export interface SlackBrokerPort extends BrokerPort {
  canApprove(id: string, personId: string): Promise<{ ok: boolean; reason?: string }>;
}

export interface SlackBotOptions {
  broker: SlackBrokerPort;
  settings: SlackSettings;
  logger: Logger;
  /** Channel for requests whose rule and target name none. */
  defaultChannel: string;
  clock?: () => number;
  retry?: Partial<RetryPolicy>;
  /** Signed requests remembered against replay. */
  replayCache?: ReplayCache;
  /** Decisions on statements the Postgres proxy holds for review. */
  reviews?: ReviewPort;
}

export class SlackBot {
  readonly core: BotCore;
  readonly app: App;
  readonly people: SlackPeople;
  readonly #settings: SlackSettings;
  readonly #broker: SlackBrokerPort;
  readonly #log: Logger;
  readonly #clock: () => number;
  readonly #retry: RetryPolicy;
  readonly #replays: ReplayCache;
  readonly #receiver: HTTPReceiver | undefined;
  readonly #dmChannels = new Map<string, string>();
  #server: Server | undefined;

  constructor(options: SlackBotOptions) {
    const { settings } = options;
    this.#settings = settings;
    this.#broker = options.broker;
    this.#log = options.logger;
    this.#clock = options.clock ?? Date.now;
    this.#retry = { ...DEFAULT_RETRY, ...options.retry };
    this.#replays = options.replayCache ?? new ReplayCache();
    const logger = toBoltLogger(options.logger);
    // Our own retry policy runs the show: Bolt's client fails fast and reports rate limits.
    const clientOptions = {
      slackApiUrl: settings.apiUrl,
      retryConfig: { retries: 0 },
      rejectRateLimitedCalls: true,
    };
    if (settings.mode === 'http') {
      if (!settings.signingSecret) {
        throw new BotConfigError('chat.slack.signing_secret', 'HTTP mode needs a signing secret');
      }
      this.#receiver = new HTTPReceiver({
        signingSecret: settings.signingSecret.reveal(),
        endpoints: EVENTS_PATH,
        logger,
        bodyLimit: MAX_BODY_BYTES,
      });
      this.app = new App({
        token: settings.botToken.reveal(),
        receiver: this.#receiver,
        logger,
        clientOptions,
      });
    } else {
      if (!settings.appToken) {
        throw new BotConfigError('chat.slack.app_token', 'Socket Mode needs an app-level token');
      }
      this.app = new App({
        token: settings.botToken.reveal(),
        appToken: settings.appToken.reveal(),
        socketMode: true,
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
      mention: (id) => this.people.mention(id),
      defaultChannel: options.defaultChannel,
      ...(options.clock ? { clock: options.clock } : {}),
      ...(options.reviews ? { reviews: options.reviews } : {}),
      via: 'chat:slack',
    });
    this.#listen();
  }

  get #client(): WebClient {
    return this.app.client;
  }

  /** Starts following the broker and serving Slack. Returns the HTTP port in HTTP mode. */
  async start(): Promise<{ port: number | undefined }> {
    this.core.start();
    if (this.#settings.mode === 'socket') {
      await this.app.start();
      return { port: undefined };
    }
    const server = createServer((req, res) => {
      this.#guard(req, res).catch((error) => {
        this.#log.error({ err: error }, 'slack request failed');
        if (!res.headersSent) res.writeHead(500).end();
      });
    });
    server.headersTimeout = 10_000;
    server.requestTimeout = 15_000;
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#settings.port, this.#settings.host, () => resolve());
    });
    return { port: (server.address() as AddressInfo).port };
  }

  async stop(): Promise<void> {
    this.core.stop();
    if (this.#settings.mode === 'socket') {
      await this.app.stop();
    } else if (this.#server) {
      const server = this.#server;
      this.#server = undefined;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    await this.core.idle();
  }

  // ------------------------------------------------------------------ HTTP guard

  /** Bounded body, signature, window and replay checks; then Bolt. */
  async #guard(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '').split('?')[0];
    if (req.method !== 'POST' || path !== EVENTS_PATH) {
      res.writeHead(404).end();
      return;
    }
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > MAX_BODY_BYTES) {
      res.writeHead(413, { connection: 'close' }).end();
      req.destroy();
      return;
    }
    const body = await readBounded(req, MAX_BODY_BYTES);
    if (!body) {
      res.writeHead(413, { connection: 'close' }).end();
      return;
    }
    const signed = {
      timestamp: header(req, 'x-slack-request-timestamp'),
      signature: header(req, 'x-slack-signature'),
      body,
    };
    try {
      const now = this.#clock();
      verifySlackSignature(this.#settings.signingSecret!.reveal(), signed, now);
      this.#replays.remember(signed, now);
    } catch (error) {
      this.#log.warn(
        { code: (error as BotError).code, reason: (error as { reason?: string }).reason },
        'slack request refused',
      );
      res.writeHead(401).end();
      return;
    }
    // Bolt reuses a body that was already read when it sits on `rawBody`.
    (req as IncomingMessage & { rawBody?: Buffer }).rawBody = body;
    this.#receiver!.requestListener(req, res);
  }

  // ------------------------------------------------------------------ handlers

  #listen(): void {
    this.app.command('/access', async ({ ack, command, respond }) => {
      await ack();
      await afterPendingIo();
      const reply = await this.#asPerson(command.user_id, (person) =>
        this.core.handleCommand(person, command.text ?? ''),
      );
      try {
        await respond({ response_type: 'ephemeral', text: reply.text });
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
      const requestId = 'value' in action && typeof action.value === 'string' ? action.value : '';
      const reply = await this.#asPerson(body.user.id, (person) =>
        this.core.handleAction(person, requestId, 'approve'),
      );
      await this.#explain(reply, body.user.id, channelOf(body));
    });

    this.app.action(SlackId.Deny, async ({ ack, body, action }) => {
      await ack();
      const requestId = 'value' in action && typeof action.value === 'string' ? action.value : '';
      const channel = channelOf(body);
      const reply = await this.#asPerson(body.user.id, async (person) => {
        const may = await this.#broker.canApprove(requestId, person);
        if (!may.ok)
          return { ok: false, code: 'ERR_FORBIDDEN', text: `You cannot deny this request: ${may.reason}.` };
        const triggerId = 'trigger_id' in body ? String(body.trigger_id) : '';
        const metadata = JSON.stringify({ id: requestId, channel });
        const view = renderDenyModal(requestId, `Deny request ${requestId}?`);
        await this.#call(() =>
          this.#client.views.open({
            trigger_id: triggerId,
            view: { ...view, private_metadata: metadata } as never,
          }),
        );
        return { ok: true, text: '' };
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
        const reviewId = 'value' in action && typeof action.value === 'string' ? action.value : '';
        const reply = await this.#asPerson(body.user.id, (person) =>
          this.core.handleReviewAction(person, reviewId, verb),
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
      const ref: MessageRef = { channel: message.channel, ts: message.thread_ts };
      if (!this.core.findRequestByMessage(ref) || !message.user) return;
      const user = message.user;
      const text = message.text ?? '';
      let reply: Reply | undefined;
      try {
        const person = await this.people.toPerson(user);
        reply = await this.core.handleThreadReply(person, ref, text);
      } catch (error) {
        if (/^\s*(approve|deny)\b/i.test(text)) reply = this.#unknown(error);
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
      return {
        ok: false,
        code: (error as { code?: string }).code ?? 'ERR_BOT_INTERNAL',
        text: `That did not work: ${(error as Error).message}`,
      };
    }
  }

  #unknown(error: unknown): Reply {
    if (isBotError(error)) return { ok: false, code: error.code, text: `${error.message}.` };
    this.#log.error({ message: (error as Error).message }, 'cannot map a Slack user');
    return { ok: false, code: 'ERR_BOT_INTERNAL', text: 'Warden could not look you up in Slack; try again.' };
  }

  /** Failed clicks and thread commands get an ephemeral explanation; successes show in the thread. */
  async #explain(reply: Reply, user: string, channel: string | undefined, threadTs?: string): Promise<void> {
    if (reply.ok || !channel) return;
    try {
      await this.#call(() =>
        this.#client.chat.postEphemeral({
          channel,
          user,
          text: reply.text,
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

  #call<T>(call: () => Promise<T>): Promise<T> {
    return callSlack(call, this.#retry);
  }

  #surface(): ChatSurface {
    return {
      postRequest: async (channel, view) => {
        const res = await this.#call(() =>
          this.#client.chat.postMessage({
            channel,
            text: view.text,
            blocks: renderRequestBlocks(view) as never,
          }),
        );
        return { channel: String(res.channel), ts: String(res.ts) };
      },
      updateRequest: async (ref, view) => {
        await this.#call(() =>
          this.#client.chat.update({
            channel: ref.channel,
            ts: ref.ts,
            text: view.text,
            blocks: renderRequestBlocks(view) as never,
          }),
        );
      },
      postReview: async (where, view) => {
        const res = await this.#call(() =>
          this.#client.chat.postMessage({
            channel: where.thread?.channel ?? where.channel,
            ...(where.thread ? { thread_ts: where.thread.ts } : {}),
            text: view.text,
            blocks: renderReviewBlocks(view) as never,
          }),
        );
        return { channel: String(res.channel), ts: String(res.ts) };
      },
      updateReview: async (ref, view) => {
        await this.#call(() =>
          this.#client.chat.update({
            channel: ref.channel,
            ts: ref.ts,
            text: view.text,
            blocks: renderReviewBlocks(view) as never,
          }),
        );
      },
      postInThread: async (ref, text) => {
        await this.#call(() =>
          this.#client.chat.postMessage({ channel: ref.channel, thread_ts: ref.ts, text }),
        );
      },
      sendDirect: async (personId, text) => {
        const channel = await this.#dmChannel(personId);
        await this.#call(() => this.#client.chat.postMessage({ channel, text }));
      },
    };
  }

  async #dmChannel(personId: string): Promise<string> {
    const slackId = await this.people.toSlack(personId);
    if (!slackId) {
      throw new BotError('ERR_BOT_USER_UNKNOWN', `cannot DM ${personId}: no Slack user is known for them`);
    }
    const cached = this.#dmChannels.get(slackId);
    if (cached) return cached;
    const res = await this.#call(() => this.#client.conversations.open({ users: slackId }));
    const channel = res.channel?.id;
    if (!channel) throw new BotError('ERR_BOT_SLACK_API', 'conversations.open returned no channel');
    this.#dmChannels.set(slackId, channel);
    if (this.#dmChannels.size > MAX_DM_CHANNELS)
      this.#dmChannels.delete(this.#dmChannels.keys().next().value as string);
    return channel;
  }
}

/**
 * Lets the event loop take in (and acknowledge) the requests already waiting before this one's
 * slow work starts: under a burst, acknowledgements come first.
 */
function afterPendingIo(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Reads a body up to `max` bytes; undefined (and the socket dropped) when it is longer. */
function readBounded(req: IncomingMessage, max: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) {
        req.removeAllListeners('data');
        req.resume();
        resolve(undefined);
        return;
      }
      chunks.push(chunk);
    });
    req.once('end', () => resolve(Buffer.concat(chunks)));
    req.once('error', reject);
  });
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
