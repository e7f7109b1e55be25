/**
 * The chat-neutral bot: runs commands, button clicks and thread replies against the broker, decides
 * who may act, and (through its {@link MessageKeeper}) keeps every message about a request current.
 * Adapters (Slack, console, later Teams) supply a {@link ChatSurface} to draw on and map their users
 * to Warden person ids before calling in; they never decide what happens or what a message says.
 */

import type {
  AccessRequest,
  ChatBrokerPort,
  ChatMessageStore,
  ChatReviewPort,
} from '../../broker/ports/chat.ts';
import { formatDuration } from '../../lib/duration.ts';
import type { Logger } from '../../lib/log.ts';
import { type Command, parseCommand, parseThreadReply, USAGE } from './commands.ts';
import { MemoryChatMessages } from './memory-messages.ts';
import { code, type Line, line, strong, text } from './message.ts';
import { MessageKeeper } from './message-keeper.ts';
import { describeNeeds, formatClock, formatTarget, renderListLine, renderRequest } from './render.ts';
import { describeError, failReply, isExpectedError, okReply, type Reply } from './replies.ts';
import type { ChatSurface, MessageRef } from './surface.ts';

export interface BotCoreOptions {
  broker: ChatBrokerPort;
  surface: ChatSurface;
  logger: Logger;
  /** Channel for requests whose rule and target name none. */
  defaultChannel: string;
  clock?: () => number;
  /**
   * Where message references are kept: the broker's store, so that every process updates the same
   * messages. Default: in memory, bounded (a single process without a store, the console).
   */
  messages?: ChatMessageStore;
  /** Decisions on statements held for review; without it review commands are refused. */
  reviews?: ChatReviewPort;
  /** What the audit log records as the caller of this bot's calls (`chat:slack`). Default `chat`. */
  via?: string;
}

const NOT_DONE = ['pending', 'approved', 'active'] as const;

export class BotCore {
  readonly #broker: ChatBrokerPort;
  readonly #log: Logger;
  readonly #reviews: ChatReviewPort | undefined;
  readonly #keeper: MessageKeeper;
  readonly #via: string;
  readonly #chat: string;

  constructor(options: BotCoreOptions) {
    this.#broker = options.broker;
    this.#log = options.logger;
    this.#reviews = options.reviews;
    this.#via = options.via ?? 'chat';
    this.#chat = options.surface.name;
    this.#keeper = new MessageKeeper({
      broker: options.broker,
      surface: options.surface,
      messages: options.messages ?? new MemoryChatMessages(),
      logger: options.logger,
      defaultChannel: options.defaultChannel,
      clock: options.clock ?? Date.now,
    });
  }

  /** Starts following broker events. */
  start(): void {
    this.#keeper.start();
  }

  stop(): void {
    this.#keeper.stop();
  }

  /** Resolves when every event received so far has been drawn (tests, shutdown). */
  idle(): Promise<void> {
    return this.#keeper.idle();
  }

  /** Posts the root messages that could not be posted while chat was unreachable; how many. */
  catchUp(): Promise<number> {
    return this.#keeper.catchUp();
  }

  /** The request whose root message is `ref`, if one was posted (by any process sharing the store). */
  async findRequestByMessage(ref: MessageRef): Promise<string | undefined> {
    const found = await this.#keeper.findSubject(ref);
    return found?.subject === 'request' ? found.id : undefined;
  }

  /** The root message of a request, if one was posted. */
  findMessage(requestId: string): Promise<MessageRef | undefined> {
    return this.#keeper.findRoot(requestId);
  }

  // ------------------------------------------------------------------ input

  /** Runs `/access <text>` for a person. Never throws: mistakes become replies. */
  async handleCommand(personId: string, commandText: string): Promise<Reply> {
    try {
      return await this.#run(personId, parseCommand(commandText));
    } catch (error) {
      return this.#fail(error, { personId, command: commandText.slice(0, 40) });
    }
  }

  /** A button click (or console verb) on a request. */
  async handleAction(
    personId: string,
    requestId: string,
    action: 'approve' | 'deny',
    reason?: string,
  ): Promise<Reply> {
    try {
      if (action === 'approve') return await this.#run(personId, { kind: 'approve', id: requestId });
      return await this.#run(personId, { kind: 'deny', id: requestId, reason: reason ?? '' });
    } catch (error) {
      return this.#fail(error, { personId, requestId, action });
    }
  }

  /**
   * Whether a person may decide a request now, asked before a platform collects a deny reason (a
   * modal, a card input): undefined when they may, else the refusal to show them. The broker checks
   * again when the decision arrives.
   */
  async checkDecider(
    personId: string,
    requestId: string,
    action: 'approve' | 'deny' = 'deny',
  ): Promise<Reply | undefined> {
    try {
      const may = await this.#broker.canApprove(requestId, personId);
      if (may.ok) return undefined;
      return failReply(
        'ERR_FORBIDDEN',
        line`You cannot ${text(action)} this request: ${may.reason ?? 'not allowed'}.`,
      );
    } catch (error) {
      return this.#fail(error, { personId, requestId, action: 'check' });
    }
  }

  /** An Approve/Deny click (or console verb) on a statement held for review. */
  async handleReviewAction(
    personId: string,
    reviewId: string,
    action: 'approve' | 'deny',
    reason = '',
  ): Promise<Reply> {
    try {
      return await this.#run(personId, { kind: 'review', verb: action, id: reviewId, reason });
    } catch (error) {
      return this.#fail(error, { personId, reviewId, action });
    }
  }

  /**
   * A reply in a thread. In a request's thread, exactly `approve` or `deny <reason>` acts; a reply
   * that reads like a decision but is not exactly one gets a hint and changes nothing; anything
   * else (and any thread that is not a request's) is conversation and returns undefined.
   */
  async handleThreadReply(personId: string, root: MessageRef, replyText: string): Promise<Reply | undefined> {
    const requestId = await this.findRequestByMessage(root);
    if (!requestId) return undefined;
    const reply = parseThreadReply(replyText);
    switch (reply?.kind) {
      case undefined:
        return undefined;
      case 'approve':
        return this.handleAction(personId, requestId, 'approve');
      case 'deny':
        return this.handleAction(personId, requestId, 'deny', reply.reason);
      case 'deny-without-reason':
        return failReply('ERR_BOT_USAGE', line`Say why you deny it: reply ${code('deny <reason>')}.`);
      case 'unclear':
        return failReply(
          'ERR_BOT_USAGE',
          line`Nothing was decided. To decide, reply with exactly ${code('approve')}, or ${code('deny <reason>')}.`,
        );
    }
  }

  /** Whether a thread reply could be a decision (adapters explain lookup failures only for those). */
  static looksLikeDecision(replyText: string): boolean {
    return parseThreadReply(replyText) !== undefined;
  }

  #run(personId: string, command: Command): Promise<Reply> {
    const run = () => this.#execute(personId, command);
    return this.#broker.runAs ? this.#broker.runAs(this.#via, run) : run();
  }

  async #execute(personId: string, command: Command): Promise<Reply> {
    const actor = { id: personId, admin: false };
    switch (command.kind) {
      case 'help':
        return this.#help();
      case 'list':
        return this.#list(personId);
      case 'status': {
        const card = renderRequest(await this.#broker.show(command.id));
        return okReply(
          [strong(...card.title)],
          card.status,
          ...card.fields.map((f) => [text(`${f.label}: `), ...f.value]),
        );
      }
      case 'cancel':
        await this.#broker.cancel(command.id, actor);
        return okReply(line`Request ${command.id} is cancelled.`);
      case 'revoke': {
        const revoked = await this.#broker.revoke(command.id, actor, command.reason);
        return okReply(
          revoked.state === 'revoked'
            ? line`Access ${command.id} is revoked; the credential is removed.`
            : line`Access ${command.id} is revoked; removing the credential failed and Warden keeps retrying (approvers are told).`,
        );
      }
      case 'extend': {
        const result = await this.#broker.extend(command.id, actor, command.duration);
        if (result.state === 'pending') {
          return okReply(
            line`Extension ${result.id} asks for ${formatDuration(result.durationMs)} more; it needs ${describeNeeds(result.decision.approval)}.`,
          );
        }
        return okReply(line`Access ${result.id} now ends at ${formatClock(result.expiresAt!)}.`);
      }
      case 'approve': {
        const result = await this.#broker.approve(command.id, actor);
        return okReply(
          result.state === 'pending'
            ? line`You approved ${command.id}; it still needs more approvals.`
            : line`You approved ${command.id}.`,
        );
      }
      case 'deny':
        await this.#broker.deny(command.id, actor, command.reason);
        return okReply(line`You denied ${command.id}.`);
      case 'request':
        return this.#request(personId, command);
      case 'review': {
        if (!this.#reviews) return failReply('ERR_BOT_USAGE', line`Statement review is not available here.`);
        const review =
          command.verb === 'approve'
            ? await this.#reviews.approve(command.id, actor, command.reason)
            : await this.#reviews.deny(command.id, actor, command.reason);
        return okReply(
          review.state === 'approved'
            ? line`You approved statement ${review.id}; it runs now.`
            : line`You denied statement ${review.id}; it does not run.`,
        );
      }
    }
  }

  async #request(personId: string, command: Extract<Command, { kind: 'request' }>): Promise<Reply> {
    const request = await this.#broker.request({
      requester: personId,
      target: command.target,
      level: command.level,
      duration: command.duration,
      reason: command.reason,
      breakGlass: command.breakGlass,
      source: 'chat',
      // Where it came from: the requester is told there, and its card says so.
      meta: { chat: this.#chat },
    });
    const what = line`${request.id} for ${formatTarget(request)} (${formatDuration(request.durationMs)})`;
    switch (request.state) {
      case 'pending':
        return okReply(
          line`Request ${what} is posted in ${this.#keeper.channelFor(request)}. It needs ${describeNeeds(request.decision.approval)}; I will DM you when it is decided.`,
        );
      case 'active': {
        const how = request.breakGlass
          ? 'active (break-glass: approvers are notified)'
          : 'approved by policy';
        return okReply(
          line`Request ${what} is ${text(how)}, until ${formatClock(request.expiresAt!)}. Connection details are in your DM.`,
        );
      }
      default:
        return failReply('ERR_PROVIDER_FAILED', this.#failedLine(request, what));
    }
  }

  #failedLine(request: AccessRequest, what: Line): Line {
    return request.error
      ? line`Request ${what} ${request.state}: ${request.error}`
      : line`Request ${what} ${request.state}:`;
  }

  #help(): Reply {
    const targets = Object.keys(this.#broker.config.targets);
    return {
      ok: true,
      message: {
        lines: [line`Warden: just-in-time access.`, line`Targets: ${targets.join(', ') || '(none)'}`],
        block: USAGE.join('\n'),
      },
    };
  }

  async #list(personId: string): Promise<Reply> {
    const mine = await this.#broker.list({ requester: personId, states: NOT_DONE, limit: 50 });
    const awaiting = await this.#broker.listAwaiting(personId);
    const indent = (l: Line): Line => [text('  '), ...l];
    const lines: Line[] = [
      [text(mine.length ? 'Your open requests and grants:' : 'You have no open requests or grants.')],
      ...mine.map((r) => indent(renderListLine(r))),
    ];
    if (awaiting.length) {
      lines.push(line`Waiting on you:`, ...awaiting.map((r) => indent(renderListLine(r))));
    }
    return okReply(...lines);
  }

  #fail(error: unknown, context: Record<string, unknown>): Reply {
    if (isExpectedError(error)) {
      this.#log.debug({ ...context, code: (error as { code?: string }).code }, 'chat command refused');
    } else {
      this.#log.error({ ...context, err: error }, 'chat command failed');
    }
    return describeError(error, Object.keys(this.#broker.config.targets));
  }
}
