/**
 * The Microsoft Teams adapter on the Teams SDK (`@microsoft/teams.apps`): transport, markup and
 * identity lookup, nothing else. Messages `access …` (in a channel, a chat or 1:1) and replies in
 * a request's thread go to the chat-neutral core; Approve/Deny are `Action.Execute` invokes
 * answered with the card as it now is (Deny first asks for a reason inside the card); the core's
 * cards and messages are drawn as Adaptive Cards (`adaptive-card.ts`, escaping in `card-text.ts`).
 *
 * Inbound activities are authenticated by {@link TeamsHttpAdapter} before the SDK sees them (and
 * by the SDK again). Outbound calls carry a cached bot token ({@link BotTokenSource}) and run
 * under the retry policy (`teams-calls.ts`). Teams being unreachable never stops Warden: the bot
 * keeps trying and reports its state for `/v1/health`, and posts what it missed when Teams is back.
 */
import { Client as ConnectorClient, PUBLIC, withOverrides } from '@microsoft/teams.api';
import { App, type AppOptions, type IPlugin } from '@microsoft/teams.apps';
import type {
  ChatBrokerPort,
  ChatConversationStore,
  ChatMessageStore,
  ChatReviewPort,
  OnceStore,
  RequestDetails,
} from '../../broker/ports/chat.ts';
import { backoffDelay } from '../../lib/backoff.ts';
import type { Logger } from '../../lib/log.ts';
import { BotCore } from '../core/bot.ts';
import { MemoryChatMessages } from '../core/memory-messages.ts';
import { type Card, type Line, line, type Message } from '../core/message.ts';
import { renderRequest } from '../core/render.ts';
import { failReply, type Reply } from '../core/replies.ts';
import type { ChatSurface, Destination, MessageRef } from '../core/surface.ts';
import { BotError, isBotError } from '../errors.ts';
import {
  CARD_CONTENT_TYPE,
  CardVerb,
  MAX_REASON,
  parseActionData,
  REASON_INPUT,
  renderCard,
  renderCardText,
  renderMessageText,
} from './adaptive-card.ts';
import { BotTokenSource } from './bot-token.ts';
import { ConnectorAuth } from './connector-auth.ts';
import { MESSAGES_PATH, rememberOnceInMemory, TeamsHttpAdapter } from './http-adapter.ts';
import { callTeams, DEFAULT_RETRY, type RetryPolicy } from './teams-calls.ts';
import type { TeamsSettings } from './teams-config.ts';
import { TeamsPeople } from './teams-people.ts';
import {
  type InboundActivity,
  type InvokeBody,
  invokeError,
  invokeMessage,
  isPersonal,
  memoryConversations,
  messageActivity,
  renderLineMessage,
  toSdkLogger,
} from './teams-support.ts';

export { checkTeamsSettings } from './teams-support.ts';

import { formatTeamsRef, parseTeamsRef, threadConversation, threadRootOf } from './teams-refs.ts';

/** Names this chat in stored message references. */
const CHAT = 'teams';
/** Longest command or reply read. */
const MAX_TEXT = 4000;
/** How long an Approve/Deny invoke waits for its decision before answering "working on it". */
const DECISION_BUDGET_MS = 250;

export interface TeamsBotOptions {
  broker: ChatBrokerPort;
  settings: TeamsSettings;
  logger: Logger;
  /** Channel for requests whose rule and target name none. */
  defaultChannel: string;
  clock?: () => number;
  retry?: Partial<RetryPolicy>;
  reviews?: ChatReviewPort;
  /** Message references (the broker's store, so every process updates the same cards). Default: memory. */
  messages?: ChatMessageStore;
  /** Conversation references for 1:1 messages (the broker's store). Default: memory. */
  conversations?: ChatConversationStore;
  /** One-time keys against replayed activities (the broker's store). Default: memory. */
  once?: OnceStore;
  /** First wait before trying Teams again after a failure, in ms. Default 1,000. */
  reconnectInitialDelayMs?: number;
  /** Longest wait between tries while Teams is unreachable, in ms. Default 60,000. */
  reconnectMaxDelayMs?: number;
}

/** Teams' state for `/v1/health` (the same shape as Slack's). */
export interface TeamsStatus {
  state: 'connecting' | 'connected' | 'degraded';
  since: number;
  failures: number;
  error?: { kind: 'unreachable' | 'refused' | 'failed'; message: string };
}

export class TeamsBot {
  readonly core: BotCore;
  readonly app: App;
  readonly adapter: TeamsHttpAdapter;
  readonly tokens: BotTokenSource;
  readonly people: TeamsPeople;
  readonly #settings: TeamsSettings;
  readonly #broker: ChatBrokerPort;
  readonly #log: Logger;
  readonly #clock: () => number;
  readonly #retry: RetryPolicy;
  readonly #conversations: ChatConversationStore;
  readonly #clients = new Map<string, ConnectorClient>();
  readonly #reconnectInitialMs: number;
  readonly #reconnectMaxMs: number;
  #serviceUrl: string;
  #status: TeamsStatus;
  #probe: NodeJS.Timeout | undefined;
  #probing = false;
  #catchingUp: Promise<void> | undefined;
  #started = false;

  constructor(options: TeamsBotOptions) {
    const { settings } = options;
    this.#settings = settings;
    this.#broker = options.broker;
    this.#log = options.logger;
    this.#clock = options.clock ?? Date.now;
    this.#retry = { ...DEFAULT_RETRY, ...options.retry };
    this.#serviceUrl = settings.serviceUrl;
    this.#reconnectInitialMs = options.reconnectInitialDelayMs ?? 1000;
    this.#reconnectMaxMs = options.reconnectMaxDelayMs ?? 60_000;
    this.#status = { state: 'connecting', since: this.#clock(), failures: 0 };
    this.#conversations = options.conversations ?? memoryConversations();
    this.tokens = new BotTokenSource({
      appId: settings.appId,
      appPassword: settings.appPassword,
      tenantId: settings.tenantId,
      loginEndpoint: settings.loginEndpoint,
      clock: this.#clock,
      retry: this.#retry,
    });
    const auth = settings.insecureSkipAuth
      ? undefined
      : new ConnectorAuth({
          appId: settings.appId,
          issuer: settings.tokenIssuer,
          openIdMetadataUrl: settings.openIdMetadataUrl,
          clock: this.#clock,
        });
    this.adapter = new TeamsHttpAdapter({
      host: settings.host,
      port: settings.port,
      auth,
      rememberOnce: options.once ? (k, e, n) => options.once!.rememberOnce(k, e, n) : rememberOnceInMemory(),
      logger: options.logger,
      clock: this.#clock,
    });
    const appOptions: AppOptions<IPlugin> = {
      clientId: settings.appId,
      // Pinned so that CLIENT_SECRET in the environment cannot switch the SDK to its own token fetch.
      clientSecret: '',
      tenantId: settings.tenantId,
      token: (scope) => this.tokens.get(Array.isArray(scope) ? scope[0]! : scope),
      httpServerAdapter: this.adapter,
      messagingEndpoint: MESSAGES_PATH,
      serviceUrl: settings.serviceUrl,
      dangerouslyAllowUnauthenticatedRequests: settings.insecureSkipAuth,
      cloud: withOverrides(PUBLIC, {
        loginEndpoint: settings.loginEndpoint,
        loginTenant: settings.tenantId,
        openIdMetadataUrl: settings.openIdMetadataUrl,
        tokenIssuer: settings.tokenIssuer,
        botScope: settings.botScope,
      }),
      logger: toSdkLogger(options.logger),
      activity: { mentions: { stripText: true } },
    };
    this.app = new App(appOptions);
    this.people = new TeamsPeople({
      directory: options.broker.directory,
      mapping: settings.userMapping,
      contact: settings.contact,
    });
    this.core = new BotCore({
      broker: options.broker,
      surface: this.#surface(),
      logger: options.logger,
      defaultChannel: options.defaultChannel,
      messages: options.messages ?? new MemoryChatMessages(),
      ...(options.clock ? { clock: options.clock } : {}),
      ...(options.reviews ? { reviews: options.reviews } : {}),
      via: 'chat:teams',
    });
    this.#listen();
  }

  /** Whether Teams is reachable, for `/v1/health`. */
  status(): TeamsStatus {
    return { ...this.#status };
  }

  /**
   * Binds `POST /api/messages`, follows the broker, and starts checking that Teams can be reached
   * (a token from Entra ID). Resolves whether or not Teams is reachable; fails only when the port
   * cannot be bound.
   */
  async start(): Promise<{ port: number }> {
    if (this.#settings.insecureSkipAuth) {
      this.#log.error(
        { key: 'chat.teams.insecure_skip_auth' },
        'INSECURE: Teams inbound authentication is OFF. Anyone who can reach the Teams endpoint can act as any user. Local testing only: remove chat.teams.insecure_skip_auth',
      );
    }
    await this.app.initialize();
    await this.adapter.start();
    this.#started = true;
    this.core.start();
    this.#scheduleProbe(0);
    return { port: this.adapter.address?.port ?? this.#settings.port };
  }

  async stop(): Promise<void> {
    this.core.stop();
    if (this.#probe) clearTimeout(this.#probe);
    this.#probe = undefined;
    if (this.#started) {
      this.#started = false;
      await this.adapter.stop();
    }
    await this.#catchingUp;
    await this.core.idle();
  }

  // ------------------------------------------------------------------ connection

  /** Tries for a token until one comes, backing off; then posts what was missed meanwhile. */
  #scheduleProbe(delayMs: number): void {
    if (this.#probe || this.#probing) return;
    this.#probe = setTimeout(() => {
      this.#probe = undefined;
      void this.#runProbe();
    }, delayMs);
    this.#probe.unref();
  }

  async #runProbe(): Promise<void> {
    if (!this.#started) return;
    this.#probing = true;
    try {
      await this.tokens.get(this.#settings.botScope);
      this.#probing = false;
      this.#reached();
    } catch (error) {
      this.#probing = false;
      this.#failed(error);
    }
  }

  /**
   * Teams answered: marks it reachable and, when it was not, posts what was missed meanwhile. The
   * catch-up runs on its own and is never awaited here: a call that reports Teams back may itself
   * run in a request's drawing queue, and the catch-up queues work behind it (waiting for it there
   * would hold that request's queue, and shutdown, for good).
   */
  #reached(): void {
    const was = this.#status.state;
    if (was === 'connected') return;
    this.#status = { state: 'connected', since: this.#clock(), failures: 0 };
    this.#log.info({ was }, 'Teams reachable');
    const catchUp = this.core
      .catchUp()
      .then((posted) => {
        if (posted > 0) this.#log.info({ posted }, 'posted the requests made while Teams was unreachable');
      })
      .catch((error: unknown) =>
        this.#log.error({ message: (error as Error)?.message }, 'catching up with Teams failed'),
      )
      .finally(() => {
        if (this.#catchingUp === catchUp) this.#catchingUp = undefined;
      });
    this.#catchingUp = catchUp;
  }

  #failed(error: unknown): void {
    const transient = isBotError(error) && error.details.transient === true;
    const message = (error as Error).message;
    const was = this.#status;
    // Calls failing while a try is already booked do not push the next try further away.
    if (was.state === 'degraded' && (this.#probe || this.#probing)) return;
    const failures = was.state === 'degraded' ? was.failures + 1 : 1;
    this.#status = {
      state: 'degraded',
      since: was.state === 'degraded' ? was.since : this.#clock(),
      failures,
      error: { kind: transient ? 'unreachable' : 'refused', message },
    };
    this.#log.warn({ failures, message }, 'Teams unreachable; trying again');
    this.#scheduleProbe(
      backoffDelay(failures, { initialMs: this.#reconnectInitialMs, maxMs: this.#reconnectMaxMs }),
    );
  }

  /** A Connector call under the retry policy; the outcome tells the connection state. */
  async #call<T>(call: () => Promise<T>): Promise<T> {
    try {
      const result = await callTeams(call, this.#retry);
      this.#reached();
      return result;
    } catch (error) {
      if (isBotError(error) && error.details.transient === true) this.#failed(error);
      throw error;
    }
  }

  #client(serviceUrl = this.#serviceUrl): ConnectorClient {
    const url = serviceUrl.replace(/\/+$/, '');
    let client = this.#clients.get(url);
    if (!client) {
      client = new ConnectorClient(
        url,
        this.app.client.clone({ token: () => this.tokens.get(this.#settings.botScope) }),
      );
      this.#clients.set(url, client);
    }
    return client;
  }

  // ------------------------------------------------------------------ handlers

  #listen(): void {
    this.app.on('message', async ({ activity }) => {
      await this.#onMessage(activity as unknown as InboundActivity);
    });
    this.app.on('card.action', async ({ activity }) => {
      return (await this.#onCardAction(activity as unknown as InboundActivity)) as never;
    });
    this.app.event('error', ({ error }) => {
      this.#log.error({ message: (error as Error)?.message }, 'Teams handler failed');
    });
  }

  async #onMessage(activity: InboundActivity): Promise<void> {
    this.#serviceUrl = activity.serviceUrl || this.#serviceUrl;
    const text = (activity.text ?? '')
      .slice(0, MAX_TEXT)
      .replace(/\u00a0/g, ' ')
      .trim();
    const root = threadRootOf(activity.conversation.id, activity.replyToId);
    const command = /^\/?access(?:\s+([\s\S]*))?$/i.exec(text);
    let reply: Reply | undefined;
    let person: string | undefined;
    try {
      person = await this.#toPerson(activity);
    } catch (error) {
      // Strangers get an answer only when they spoke to Warden (a command, or a decision in a thread).
      const inRequestThread = root ? await this.core.findRequestByMessage(root) : undefined;
      if (command || (inRequestThread && BotCore.looksLikeDecision(text)) || isPersonal(activity)) {
        reply = this.#unknown(error);
      }
    }
    if (person) {
      if (isPersonal(activity)) await this.#rememberConversation(activity, person);
      if (root && !command && (await this.core.findRequestByMessage(root))) {
        reply = await this.core.handleThreadReply(person, root, text);
      } else if (command) {
        reply = await this.core.handleCommand(person, command[1] ?? '');
      } else if (isPersonal(activity)) {
        reply = await this.core.handleCommand(person, text);
      }
    }
    if (reply) await this.#answer(activity, reply.message);
  }

  async #onCardAction(activity: InboundActivity): Promise<InvokeBody> {
    this.#serviceUrl = activity.serviceUrl || this.#serviceUrl;
    const action = activity.value?.action;
    const data = parseActionData(action?.data);
    const verb = action?.verb;
    if (!data || (verb !== CardVerb.Approve && verb !== CardVerb.Deny && verb !== CardVerb.Refresh)) {
      return invokeError('ERR_BOT_USAGE', 'not a Warden action');
    }
    let person: string;
    try {
      person = await this.#toPerson(activity);
    } catch (error) {
      return this.#answerCard(data.kind, data.id, this.#unknown(error).message.lines[0]);
    }
    if (data.kind === 'review') {
      if (verb === CardVerb.Refresh) return invokeMessage('Statement reviews update in place.');
      const reply = await this.core.handleReviewAction(
        person,
        data.id,
        verb === CardVerb.Approve ? 'approve' : 'deny',
      );
      return invokeMessage(renderMessageText(reply.message));
    }
    switch (verb) {
      case CardVerb.Refresh:
        return this.#answerCard('request', data.id);
      case CardVerb.Approve: {
        const refused = await this.core.checkDecider(person, data.id, 'approve');
        if (refused) return this.#answerCard('request', data.id, refused.message.lines[0]);
        return this.#decideWithin(person, data.id, () => this.core.handleAction(person, data.id, 'approve'));
      }
      case CardVerb.Deny: {
        const raw = (action?.data as Record<string, unknown> | undefined)?.[REASON_INPUT];
        const reason = typeof raw === 'string' ? raw.trim().slice(0, MAX_REASON) : '';
        if (!reason) {
          const refused = await this.core.checkDecider(person, data.id);
          if (refused) return this.#answerCard('request', data.id, refused.message.lines[0]);
          return this.#answerCard('request', data.id, undefined, true);
        }
        return this.#decideWithin(person, data.id, () =>
          this.core.handleAction(person, data.id, 'deny', reason),
        );
      }
    }
  }

  /**
   * Runs a decision and answers the invoke as soon as the broker has recorded it (Teams shows a
   * spinner until the invoke is answered): activation, which mints the credential, goes on after
   * the answer, and the card is updated in place for everyone when it lands. A decision refused
   * before it is recorded answers with why; one not recorded within {@link DECISION_BUDGET_MS}
   * answers with a "working on it" notice, and a refusal after the answer is logged and shows in
   * the card's state.
   */
  async #decideWithin(person: string, id: string, decide: () => Promise<Reply>): Promise<InvokeBody> {
    // The card as the decision left it, when the event tells all of it (an approval that decided
    // the request): no store read, which would queue behind the activations just started.
    let recorded: (details: RequestDetails | undefined) => void = () => {};
    const counted = new Promise<{ recorded: RequestDetails | undefined }>((resolve) => {
      recorded = (details) => resolve({ recorded: details });
    });
    const unsubscribe = this.#broker.events.subscribe((event) => {
      if (event.request.id !== id) return;
      if (event.type === 'approval.counted' && event.approval.approver === person) {
        const decided = event.request.state !== 'pending';
        recorded(
          decided
            ? {
                request: event.request,
                approvals: [...event.approvals],
                credentials: [],
                requirement: undefined,
              }
            : undefined,
        );
      } else if (event.type === 'request.denied' && event.by === person) {
        recorded(undefined);
      }
    });
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), DECISION_BUDGET_MS);
    });
    const work = decide();
    const first = await Promise.race([work, counted, late]);
    unsubscribe();
    clearTimeout(timer);
    if (typeof first === 'object' && 'ok' in first) {
      return this.#answerCard('request', id, first.ok ? undefined : first.message.lines[0]);
    }
    void work.then((r) => {
      if (!r.ok)
        this.#log.warn(
          { person, request: id, code: r.code },
          'a Teams decision was refused after its answer',
        );
    });
    if (first === 'late') {
      return this.#answerCard('request', id, line`Working on it: this card updates when it is done.`);
    }
    return first.recorded ? this.#cardOf(first.recorded) : this.#answerCard('request', id);
  }

  /** The request's card as it is now, for the person who acted (with a notice, or the deny form). */
  async #answerCard(
    kind: 'request' | 'review',
    id: string,
    notice?: Line,
    askReason = false,
  ): Promise<InvokeBody> {
    if (kind === 'review') return invokeMessage(notice ? renderLineMessage(notice) : 'Done.');
    try {
      return this.#cardOf(await this.#broker.show(id), notice, askReason);
    } catch (error) {
      const reply = failReply(
        (error as { code?: string }).code ?? 'ERR_BOT_INTERNAL',
        notice ?? line`${(error as Error).message}`,
      );
      return invokeMessage(renderMessageText(reply.message));
    }
  }

  #cardOf(details: RequestDetails, notice?: Line, askReason = false): InvokeBody {
    const card = renderRequest(details);
    return {
      statusCode: 200,
      type: CARD_CONTENT_TYPE,
      value: renderCard(card, {
        refreshUsers: this.#refreshUsers(card),
        ...(notice ? { notice } : {}),
        askReason,
      }),
    };
  }

  async #toPerson(activity: InboundActivity): Promise<string> {
    return this.people.toPerson(activity.from.aadObjectId, async () => {
      const member = await this.#call(() =>
        this.#client(activity.serviceUrl)
          .conversations.members(activity.conversation.id)
          .getById(activity.from.id),
      );
      const m = member as { userPrincipalName?: string; email?: string };
      return m.userPrincipalName ?? m.email;
    });
  }

  #unknown(error: unknown): Reply {
    if (isBotError(error)) return failReply(error.code, line`${error.message}.`);
    this.#log.error({ message: (error as Error).message }, 'cannot map a Teams user');
    return failReply('ERR_BOT_INTERNAL', line`Warden could not look you up in Teams; try again.`);
  }

  /** Answers a message where it was written (in its thread in a channel). */
  async #answer(activity: InboundActivity, message: Message): Promise<void> {
    try {
      const client = this.#client(activity.serviceUrl);
      await this.#call(() =>
        client.conversations.createActivity(activity.conversation.id, {
          ...messageActivity(message),
          ...(activity.id ? { replyToId: activity.id } : {}),
        } as never),
      );
    } catch (error) {
      this.#log.error(
        { code: (error as { code?: string }).code, message: (error as Error).message },
        'cannot answer in Teams',
      );
    }
  }

  async #rememberConversation(activity: InboundActivity, personId: string): Promise<void> {
    const tenantId =
      activity.conversation.tenantId ?? activity.channelData?.tenant?.id ?? this.#settings.tenantId;
    try {
      await this.#conversations.saveChatConversation({
        chat: CHAT,
        userId: activity.from.aadObjectId!.toLowerCase(),
        personId,
        conversationId: activity.conversation.id,
        serviceUrl: activity.serviceUrl,
        tenantId,
        updatedAt: this.#clock(),
      });
    } catch (error) {
      this.#log.warn({ message: (error as Error).message }, 'cannot store the Teams conversation');
    }
  }

  #refreshUsers(card: Card): string[] {
    return card.approvers.flatMap((p) => {
      const id = this.people.known(p);
      return id ? [`8:orgid:${id}`] : [];
    });
  }

  // ------------------------------------------------------------------ surface

  #channel(name: string): string {
    const mapped = this.#settings.channels[name];
    if (mapped) return mapped;
    if (/^(19|a|8):/.test(name)) return name;
    throw new BotError(
      'ERR_BOT_NO_CHANNEL',
      `no Teams channel is configured for ${name}: add it to chat.teams.channels (its conversation id, 19:…@thread.tacv2)`,
    );
  }

  #cardActivity(card: Card): Record<string, unknown> {
    return {
      type: 'message',
      text: renderCardText(card),
      attachments: [
        {
          contentType: CARD_CONTENT_TYPE,
          content: renderCard(card, { refreshUsers: this.#refreshUsers(card) }),
        },
      ],
    };
  }

  #surface(): ChatSurface {
    return {
      name: CHAT,
      postCard: async (where: Destination, card: Card) => {
        const target = where.thread ? threadConversation(where.thread) : undefined;
        const conversationId = target?.conversationId ?? this.#channel(where.channel);
        const res = await this.#call(() =>
          this.#client().conversations.createActivity(conversationId, {
            ...this.#cardActivity(card),
            ...(target ? { replyToId: target.replyToId } : {}),
          } as never),
        );
        const id = (res as { id?: string }).id;
        if (!id) throw new BotError('ERR_BOT_TEAMS_API', 'the Bot Connector returned no activity id');
        return formatTeamsRef(conversationId, id);
      },
      updateCard: async (ref: MessageRef, card: Card) => {
        const { conversationId, activityId } = parseTeamsRef(ref);
        await this.#call(() =>
          this.#client().conversations.updateActivity(conversationId, activityId, {
            ...this.#cardActivity(card),
            id: activityId,
          } as never),
        );
      },
      postInThread: async (root: MessageRef, message: Message) => {
        const { conversationId, replyToId } = threadConversation(root);
        await this.#call(() =>
          this.#client().conversations.createActivity(conversationId, {
            ...messageActivity(message),
            replyToId,
          } as never),
        );
      },
      sendDirect: async (personId: string, message: Message) => {
        const { conversationId, serviceUrl } = await this.#directConversation(personId);
        await this.#call(() =>
          this.#client(serviceUrl).conversations.createActivity(
            conversationId,
            messageActivity(message) as never,
          ),
        );
      },
      reaches: (personId: string) => this.people.reaches(personId),
    };
  }

  /** The 1:1 conversation with a person: stored (any process), else created and stored. */
  async #directConversation(personId: string): Promise<{ conversationId: string; serviceUrl: string }> {
    const stored = await this.#conversations.getChatConversation(CHAT, { personId });
    if (stored) return stored;
    const userId = this.people.known(personId);
    if (!userId) {
      throw new BotError(
        'ERR_BOT_USER_UNKNOWN',
        `cannot message ${personId} in Teams: no Entra object id is known for them`,
      );
    }
    const serviceUrl = this.#serviceUrl;
    const res = await this.#call(() =>
      this.#client(serviceUrl).conversations.create({
        isGroup: false,
        bot: { id: `28:${this.#settings.appId}` },
        members: [{ id: `8:orgid:${userId}`, aadObjectId: userId } as never],
        tenantId: this.#settings.tenantId,
        channelData: { tenant: { id: this.#settings.tenantId } },
      }),
    );
    const conversationId = (res as { id?: string }).id;
    if (!conversationId) throw new BotError('ERR_BOT_TEAMS_API', 'the Bot Connector created no conversation');
    await this.#conversations.saveChatConversation({
      chat: CHAT,
      userId,
      personId,
      conversationId,
      serviceUrl,
      tenantId: this.#settings.tenantId,
      updatedAt: this.#clock(),
    });
    return { conversationId, serviceUrl };
  }
}
