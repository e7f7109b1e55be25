/**
 * The chat-neutral bot: runs commands and button clicks against the broker, and keeps every
 * message about a request current as broker events arrive. Adapters (Slack, console) supply a
 * `ChatSurface` to draw on and map their users to Warden person ids before calling in.
 */
import { formatDuration } from '../../broker/config/duration.ts';
import type { Logger } from '../../broker/log.ts';
import {
  type AccessRequest,
  type BrokerEvent,
  type BrokerPort,
  type ReviewPort,
  runAsCaller,
  type StatementReview,
} from '../port.ts';
import { type Command, parseCommand, USAGE } from './commands.ts';
import {
  describeNeeds,
  formatClock,
  formatTarget,
  type RenderContext,
  type RequestView,
  type ReviewView,
  renderDm,
  renderListLine,
  renderRequest,
  renderReview,
  renderStep,
} from './render.ts';
import { describeError, isExpectedError, type Reply } from './replies.ts';

/** Where a request's root message lives in a chat. */
export interface MessageRef {
  channel: string;
  ts: string;
}

/** What an adapter draws on. Every method may fail; the bot logs and carries on. */
export interface ChatSurface {
  /** Posts a request's root message to a channel (a name like `#db-approvals` or an id). */
  postRequest(channel: string, view: RequestView): Promise<MessageRef>;
  /** Replaces a root message in place. */
  updateRequest(ref: MessageRef, view: RequestView): Promise<void>;
  postInThread(ref: MessageRef, text: string): Promise<void>;
  /** A direct message to a Warden person. The text may hold a credential: never log it. */
  sendDirect(personId: string, text: string): Promise<void>;
  /**
   * Posts a statement held for review, in the grant's request thread when known (else in the
   * channel), with Approve/Deny. Adapters without it get a plain thread reply instead.
   */
  postReview?(where: { channel: string; thread?: MessageRef }, view: ReviewView): Promise<MessageRef>;
  /** Replaces a review's message in place (decided: no buttons). */
  updateReview?(ref: MessageRef, view: ReviewView): Promise<void>;
}

export interface BotCoreOptions {
  broker: BrokerPort;
  surface: ChatSurface;
  logger: Logger;
  /** How people are named in this chat. */
  mention: (personId: string) => string;
  /** Channel for requests whose rule and target name none. */
  defaultChannel: string;
  clock?: () => number;
  /** How many requests' message references are remembered (oldest forgotten first). Default 10,000. */
  maxTracked?: number;
  /** Decisions on statements held for review; without it review commands are refused. */
  reviews?: ReviewPort;
  /** What the audit log records as the caller of this bot's calls (`chat:slack`). Default `chat`. */
  via?: string;
}

/** Events after which the root message no longer shows the truth. */
const CHANGES_ROOT = new Set<BrokerEvent['type']>([
  'approval.counted',
  'request.denied',
  'request.cancelled',
  'request.timed_out',
  'grant.active',
  'grant.failed',
  'grant.extended',
  'grant.expired',
  'grant.revoked',
  'grant.ended',
  // Also posts the root (in the approval channel) when this process never drew it.
  'credential.revocation_failed',
]);

const NOT_DONE = ['pending', 'approved', 'active'] as const;

export class BotCore {
  readonly #broker: BrokerPort;
  readonly #surface: ChatSurface;
  readonly #log: Logger;
  readonly #mention: (personId: string) => string;
  readonly #defaultChannel: string;
  readonly #clock: () => number;
  readonly #maxTracked: number;
  readonly #refs = new Map<string, MessageRef>();
  readonly #byThread = new Map<string, string>();
  readonly #queues = new Map<string, Promise<void>>();
  readonly #reviews: ReviewPort | undefined;
  readonly #reviewRefs = new Map<string, MessageRef>();
  readonly #via: string;
  #unsubscribe: (() => void) | undefined;

  constructor(options: BotCoreOptions) {
    this.#broker = options.broker;
    this.#surface = options.surface;
    this.#log = options.logger;
    this.#mention = options.mention;
    this.#defaultChannel = options.defaultChannel;
    this.#clock = options.clock ?? Date.now;
    this.#maxTracked = options.maxTracked ?? 10_000;
    this.#reviews = options.reviews;
    this.#via = options.via ?? 'chat';
  }

  /** Starts following broker events. */
  start(): void {
    this.#unsubscribe ??= this.#broker.events.subscribe((event) => this.#enqueue(event));
  }

  stop(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
  }

  /** Resolves when every event received so far has been drawn (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.#queues.size > 0) await Promise.all([...this.#queues.values()]);
  }

  /** The request whose root message is `ref`, if the bot posted it. */
  findRequestByMessage(ref: MessageRef): string | undefined {
    return this.#byThread.get(threadKey(ref));
  }

  /** The root message of a request, if known. */
  findMessage(requestId: string): MessageRef | undefined {
    return this.#refs.get(requestId);
  }

  // ------------------------------------------------------------------ input

  /** Runs `/access <text>` for a person. Never throws: mistakes become replies. */
  async handleCommand(personId: string, text: string): Promise<Reply> {
    try {
      return await this.#run(personId, parseCommand(text));
    } catch (error) {
      return this.#fail(error, { personId, command: text.slice(0, 40) });
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

  /** The message of a review, if the bot posted it. */
  findReviewMessage(reviewId: string): MessageRef | undefined {
    return this.#reviewRefs.get(reviewId);
  }

  /**
   * A reply in a request's thread. `approve` and `deny <reason>` act; anything else is
   * conversation and returns undefined.
   */
  async handleThreadReply(personId: string, ref: MessageRef, text: string): Promise<Reply | undefined> {
    const requestId = this.findRequestByMessage(ref);
    if (!requestId) return undefined;
    const match = /^\s*(approve|approved|lgtm|deny|denied|reject)\b\s*(.*)$/is.exec(text.slice(0, 2000));
    if (!match) return undefined;
    const verb = match[1]!.toLowerCase();
    if (verb === 'approve' || verb === 'approved' || verb === 'lgtm') {
      return this.handleAction(personId, requestId, 'approve');
    }
    const reason = match[2]!.trim();
    if (!reason) {
      return { ok: false, code: 'ERR_BOT_USAGE', text: 'Say why you deny it: reply `deny <reason>`.' };
    }
    return this.handleAction(personId, requestId, 'deny', reason);
  }

  #run(personId: string, command: Command): Promise<Reply> {
    return runAsCaller(this.#via, () => this.#execute(personId, command));
  }

  async #execute(personId: string, command: Command): Promise<Reply> {
    const actor = { id: personId, admin: false };
    const ctx = this.#context();
    switch (command.kind) {
      case 'help':
        return this.#help();
      case 'list':
        return this.#list(personId);
      case 'status': {
        const view = renderRequest(await this.#broker.show(command.id), ctx);
        return ok(
          [`*${view.title}*`, view.status, ...view.fields.map((f) => `${f.label}: ${f.value}`)].join('\n'),
        );
      }
      case 'cancel':
        await this.#broker.cancel(command.id, actor);
        return ok(`Request ${command.id} is cancelled.`);
      case 'revoke': {
        const revoked = await this.#broker.revoke(command.id, actor, command.reason);
        return ok(
          revoked.state === 'revoked'
            ? `Access ${command.id} is revoked; the credential is removed.`
            : `Access ${command.id} is revoked; removing the credential failed and Warden keeps retrying (approvers are told).`,
        );
      }
      case 'extend': {
        const result = await this.#broker.extend(command.id, actor, command.duration);
        if (result.state === 'pending') {
          return ok(
            `Extension ${result.id} asks for ${formatDuration(result.durationMs)} more; it needs ${describeNeeds(result.decision.approval, ctx)}.`,
          );
        }
        return ok(`Access ${result.id} now ends at ${formatClock(result.expiresAt!)}.`);
      }
      case 'approve': {
        const result = await this.#broker.approve(command.id, actor);
        return ok(
          result.state === 'pending'
            ? `You approved ${command.id}; it still needs more approvals.`
            : `You approved ${command.id}.`,
        );
      }
      case 'deny':
        await this.#broker.deny(command.id, actor, command.reason);
        return ok(`You denied ${command.id}.`);
      case 'request':
        return this.#request(personId, command);
      case 'review': {
        if (!this.#reviews) {
          return { ok: false, code: 'ERR_BOT_USAGE', text: 'Statement review is not available here.' };
        }
        const review =
          command.verb === 'approve'
            ? await this.#reviews.approve(command.id, actor, command.reason)
            : await this.#reviews.deny(command.id, actor, command.reason);
        return ok(
          review.state === 'approved'
            ? `You approved statement ${review.id}; it runs now.`
            : `You denied statement ${review.id}; it does not run.`,
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
    });
    const what = `${request.id} for ${formatTarget(request)} (${formatDuration(request.durationMs)})`;
    switch (request.state) {
      case 'pending':
        return ok(
          `Request ${what} is posted in ${this.#channelFor(request)}. It needs ${describeNeeds(request.decision.approval, this.#context())}; I will DM you when it is decided.`,
        );
      case 'active':
        return ok(
          `Request ${what} is ${request.breakGlass ? 'active (break-glass: approvers are notified)' : 'approved by policy'}, until ${formatClock(request.expiresAt!)}. Connection details are in your DM.`,
        );
      default:
        return {
          ok: false,
          code: 'ERR_PROVIDER_FAILED',
          text: `Request ${what} ${request.state}: ${request.error ?? ''}`.trim(),
        };
    }
  }

  #help(): Reply {
    const targets = Object.keys(this.#broker.config.targets);
    return ok(
      ['Warden: just-in-time access.', ...USAGE, `Targets: ${targets.join(', ') || '(none)'}`].join('\n'),
    );
  }

  async #list(personId: string): Promise<Reply> {
    const ctx = this.#context();
    const mine = await this.#broker.list({ requester: personId, states: NOT_DONE, limit: 50 });
    const awaiting = await this.#broker.listAwaiting(personId);
    const lines: string[] = [];
    lines.push(mine.length ? 'Your open requests and grants:' : 'You have no open requests or grants.');
    lines.push(...mine.map((r) => `  ${renderListLine(r, ctx)}`));
    if (awaiting.length) {
      lines.push('Waiting on you:');
      lines.push(...awaiting.map((r) => `  ${renderListLine(r, ctx)}`));
    }
    return ok(lines.join('\n'));
  }

  #fail(error: unknown, context: Record<string, unknown>): Reply {
    if (isExpectedError(error)) {
      this.#log.debug({ ...context, code: (error as { code?: string }).code }, 'chat command refused');
    } else {
      this.#log.error({ ...context, err: error }, 'chat command failed');
    }
    return describeError(error, Object.keys(this.#broker.config.targets));
  }

  // ------------------------------------------------------------------ events

  #context(): RenderContext {
    return { mention: this.#mention, now: this.#clock() };
  }

  #channelFor(request: AccessRequest): string {
    const rule = this.#broker.config.rules.find((r) => r.name === request.rule);
    return (
      rule?.approval_channel ??
      this.#broker.config.targets[request.target]?.approval_channel ??
      this.#defaultChannel
    );
  }

  /** Events about one request are drawn in order; different requests proceed in parallel. */
  #enqueue(event: BrokerEvent): void {
    const key = event.request.id;
    const previous = this.#queues.get(key) ?? Promise.resolve();
    const next = previous
      .then(() => this.#draw(event))
      .catch((error) =>
        this.#log.error({ err: error, event: event.type, request: key }, 'drawing an event failed'),
      )
      .finally(() => {
        if (this.#queues.get(key) === next) this.#queues.delete(key);
      });
    this.#queues.set(key, next);
  }

  async #draw(event: BrokerEvent): Promise<void> {
    const ctx = this.#context();
    const request = event.request;
    if (event.type === 'review.requested' || event.type === 'review.decided') {
      await this.#drawReview(request, event.review);
      return;
    }
    // The DM goes first: it carries what the requester waits for, and must not wait on channel trouble.
    const dm = renderDm(event, ctx);
    if (dm) await this.#attempt('sendDirect', request, () => this.#surface.sendDirect(request.requester, dm));
    if (event.type === 'request.created') {
      await this.#postRoot(request);
    } else if (CHANGES_ROOT.has(event.type)) {
      await this.#updateRoot(request);
    }
    const step = renderStep(event, ctx);
    const ref = this.#refs.get(request.id);
    if (step && ref)
      await this.#attempt('postInThread', request, () => this.#surface.postInThread(ref, step));
  }

  /** Posts a held statement (in the grant's thread when known) or updates its message in place. */
  async #drawReview(request: AccessRequest, review: StatementReview): Promise<void> {
    const view = renderReview(review, this.#context());
    const known = this.#reviewRefs.get(review.id);
    const thread = this.#refs.get(request.id);
    const surface = this.#surface;
    if (known && surface.updateReview) {
      await this.#attempt('updateReview', request, () => surface.updateReview!(known, view));
      if (review.state !== 'pending') this.#reviewRefs.delete(review.id);
      return;
    }
    if (surface.postReview && review.state === 'pending') {
      await this.#attempt('postReview', request, async () => {
        const ref = await surface.postReview!(
          { channel: this.#channelFor(request), ...(thread ? { thread } : {}) },
          view,
        );
        this.#reviewRefs.set(review.id, ref);
        if (this.#reviewRefs.size > this.#maxTracked)
          this.#reviewRefs.delete(this.#reviewRefs.keys().next().value as string);
      });
      return;
    }
    if (thread) await this.#attempt('postInThread', request, () => surface.postInThread(thread, view.text));
  }

  async #postRoot(request: AccessRequest): Promise<MessageRef | undefined> {
    const channel = this.#channelFor(request);
    const view = renderRequest(await this.#broker.show(request.id), this.#context());
    let ref: MessageRef;
    try {
      ref = await this.#surface.postRequest(channel, view);
    } catch (error) {
      this.#log.error(
        { request: request.id, channel, code: (error as { code?: string }).code, err: error },
        'cannot post the request to its approval channel',
      );
      const why = (error as Error).message;
      await this.#attempt('sendDirect', request, () =>
        this.#surface.sendDirect(
          request.requester,
          `Your request ${request.id} is recorded, but I could not post it to ${channel}: ${why}. Ask an approver to look at it (/access status ${request.id}), or an admin to fix the channel.`,
        ),
      );
      return undefined;
    }
    this.#remember(request.id, ref);
    return ref;
  }

  async #updateRoot(request: AccessRequest): Promise<void> {
    const ref = this.#refs.get(request.id);
    // A request the bot never drew (posted before a restart, or by another replica) gets a root now.
    if (!ref) {
      await this.#postRoot(request);
      return;
    }
    const view = renderRequest(await this.#broker.show(request.id), this.#context());
    await this.#attempt('updateRequest', request, () => this.#surface.updateRequest(ref, view));
  }

  async #attempt(what: string, request: AccessRequest, call: () => Promise<void>): Promise<void> {
    try {
      await call();
    } catch (error) {
      // Never log the text of the message: a DM may hold a credential.
      this.#log.error(
        {
          request: request.id,
          call: what,
          code: (error as { code?: string }).code,
          message: (error as Error).message,
        },
        'chat call failed',
      );
    }
  }

  #remember(requestId: string, ref: MessageRef): void {
    this.#refs.set(requestId, ref);
    this.#byThread.set(threadKey(ref), requestId);
    while (this.#refs.size > this.#maxTracked) {
      const [oldest, oldRef] = this.#refs.entries().next().value as [string, MessageRef];
      this.#refs.delete(oldest);
      this.#byThread.delete(threadKey(oldRef));
    }
  }
}

function threadKey(ref: MessageRef): string {
  return `${ref.channel}\u0000${ref.ts}`;
}

function ok(text: string): Reply {
  return { ok: true, text };
}
