/**
 * Keeps every chat message about a request current as broker events arrive: the requester's DMs,
 * the root message in the approval channel (updated in place), the steps in its thread, and the
 * messages of statements held for review. Where each message is goes into the message store, so
 * another process (a replica, or this one after a restart) updates the same message instead of
 * posting a second one.
 */

import type {
  AccessRequest,
  BrokerEvent,
  ChatBrokerPort,
  ChatMessageStore,
  ChatMessageSubject,
  StatementReview,
} from '../../broker/ports/chat.ts';
import type { Logger } from '../../lib/log.ts';
import { line, message } from './message.ts';
import { originOf, renderDm, renderRequest, renderReview, renderStep, renderUnposted } from './render.ts';
import type { ChatSurface, MessageRef } from './surface.ts';

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

/** Pending requests looked at when chat comes back (see {@link MessageKeeper.catchUp}). */
const CATCH_UP_LIMIT = 200;

export interface MessageKeeperOptions {
  broker: ChatBrokerPort;
  surface: ChatSurface;
  messages: ChatMessageStore;
  logger: Logger;
  /** Channel for requests whose rule and target name none. */
  defaultChannel: string;
  clock: () => number;
}

export class MessageKeeper {
  readonly #broker: ChatBrokerPort;
  readonly #surface: ChatSurface;
  readonly #messages: ChatMessageStore;
  readonly #log: Logger;
  readonly #defaultChannel: string;
  readonly #clock: () => number;
  readonly #queues = new Map<string, Promise<void>>();
  #unsubscribe: (() => void) | undefined;

  constructor(options: MessageKeeperOptions) {
    this.#broker = options.broker;
    this.#surface = options.surface;
    this.#messages = options.messages;
    this.#log = options.logger;
    this.#defaultChannel = options.defaultChannel;
    this.#clock = options.clock;
  }

  /** Starts following broker events. */
  start(): void {
    this.#unsubscribe ??= this.#broker.events.subscribe((event) =>
      this.#enqueue(event.request.id, event.type, () => this.#draw(event)),
    );
  }

  stop(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
  }

  /** Resolves when every event received so far has been drawn (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.#queues.size > 0) await Promise.all([...this.#queues.values()]);
  }

  /** The approval channel of a request: its rule's, else its target's, else the default. */
  channelFor(request: AccessRequest): string {
    const rule = this.#broker.config.rules.find((r) => r.name === request.rule);
    return (
      rule?.approval_channel ??
      this.#broker.config.targets[request.target]?.approval_channel ??
      this.#defaultChannel
    );
  }

  /** The request whose root message (or held statement's message) is `ref`, if one was posted. */
  async findSubject(ref: MessageRef): Promise<{ subject: ChatMessageSubject; id: string } | undefined> {
    const record = await this.#messages.findChatMessage(this.#surface.name, ref);
    return record && { subject: record.subject, id: record.subjectId };
  }

  /** Where a request's root message is, if it was posted (by any process sharing the store). */
  async findRoot(requestId: string): Promise<MessageRef | undefined> {
    return (await this.#messages.getChatMessage(this.#surface.name, 'request', requestId))?.ref;
  }

  /**
   * Posts the root message of pending requests that have none: those created while chat was
   * unreachable. Run when the adapter (re)connects. Returns how many were posted.
   */
  async catchUp(): Promise<number> {
    const pending = await this.#broker.list({ states: ['pending'], limit: CATCH_UP_LIMIT });
    let posted = 0;
    for (const request of pending) {
      await this.#enqueue(request.id, 'catch-up', async () => {
        if (!this.#drawsRequest(request) || (await this.findRoot(request.id))) return;
        if (await this.#postRoot(request)) posted++;
      });
    }
    return posted;
  }

  /** Work on one request runs in order; different requests proceed in parallel. */
  #enqueue(key: string, what: string, work: () => Promise<void>): Promise<void> {
    const previous = this.#queues.get(key) ?? Promise.resolve();
    const next = previous
      .then(work)
      .catch((error) => this.#log.error({ err: error, event: what, request: key }, 'drawing an event failed'))
      .finally(() => {
        if (this.#queues.get(key) === next) this.#queues.delete(key);
      });
    this.#queues.set(key, next);
    return next;
  }

  async #draw(event: BrokerEvent): Promise<void> {
    const request = event.request;
    if (event.type === 'review.requested' || event.type === 'review.decided') {
      await this.#drawReview(request, event.review);
      return;
    }
    // The DM goes first: it carries what the requester waits for, and must not wait on channel trouble.
    const dm = renderDm(event);
    if (dm && this.#tellsRequester(request)) {
      await this.#attempt('sendDirect', request, () => this.#surface.sendDirect(request.requester, dm));
    }
    let root: MessageRef | undefined;
    if (event.type === 'request.created') {
      root = this.#drawsRequest(request) ? await this.#postRoot(request) : undefined;
    } else if (CHANGES_ROOT.has(event.type)) {
      root = await this.#updateRoot(request);
    } else {
      root = await this.findRoot(request.id);
    }
    const step = renderStep(event);
    if (step && root) {
      const at = root;
      await this.#attempt('postInThread', request, () => this.#surface.postInThread(at, step));
    }
  }

  /** Posts a held statement (in the grant's thread when known) or updates its message in place. */
  async #drawReview(request: AccessRequest, review: StatementReview): Promise<void> {
    const card = renderReview(review);
    const known = await this.#find('review', review.id);
    const thread = await this.findRoot(request.id);
    if (known) {
      await this.#attempt('updateCard', request, () => this.#surface.updateCard(known, card));
      return;
    }
    if (review.state === 'pending') {
      if (!thread && !this.#drawsRequest(request)) return;
      await this.#attempt('postCard', request, async () => {
        const ref = await this.#surface.postCard(
          { channel: this.channelFor(request), ...(thread ? { thread } : {}) },
          card,
        );
        await this.#remember('review', review.id, ref);
      });
      return;
    }
    // Decided before its message was posted (chat was down): say so in the thread.
    if (thread) {
      const text = message([...card.title, ...line`: `, ...card.status]);
      await this.#attempt('postInThread', request, () => this.#surface.postInThread(thread, text));
    }
  }

  /** Whether this chat shows a request: it came from here, or one of its approvers is reached here. */
  #drawsRequest(request: AccessRequest): boolean {
    const reaches = this.#surface.reaches?.bind(this.#surface);
    if (!reaches) return true;
    const origin = originOf(request);
    if (origin === this.#surface.name) return true;
    if (request.decision.approval.groups.some((g) => g.members.some((p) => reaches(p)))) return true;
    // Not made in a chat (CLI, API, CI): shown where the requester is, if no approver is anywhere here.
    return origin === undefined && reaches(request.requester);
  }

  /** Whether this chat tells the requester: the request came from here, or from no chat and they are here. */
  #tellsRequester(request: AccessRequest): boolean {
    const reaches = this.#surface.reaches?.bind(this.#surface);
    if (!reaches) return true;
    const origin = originOf(request);
    return origin === this.#surface.name || (origin === undefined && reaches(request.requester));
  }

  async #postRoot(request: AccessRequest): Promise<MessageRef | undefined> {
    const channel = this.channelFor(request);
    const card = renderRequest(await this.#broker.show(request.id));
    let ref: MessageRef;
    try {
      ref = await this.#surface.postCard({ channel }, card);
    } catch (error) {
      this.#log.error(
        { request: request.id, channel, code: (error as { code?: string }).code, err: error },
        'cannot post the request to its approval channel',
      );
      const dm = renderUnposted(request, channel, (error as Error).message);
      await this.#attempt('sendDirect', request, () => this.#surface.sendDirect(request.requester, dm));
      return undefined;
    }
    return this.#remember('request', request.id, ref);
  }

  async #updateRoot(request: AccessRequest): Promise<MessageRef | undefined> {
    const ref = await this.findRoot(request.id);
    // A request whose root was never posted (chat was down when it was created) gets one now.
    if (!ref) return this.#drawsRequest(request) ? this.#postRoot(request) : undefined;
    const card = renderRequest(await this.#broker.show(request.id));
    await this.#attempt('updateCard', request, () => this.#surface.updateCard(ref, card));
    return ref;
  }

  async #find(subject: ChatMessageSubject, id: string): Promise<MessageRef | undefined> {
    return (await this.#messages.getChatMessage(this.#surface.name, subject, id))?.ref;
  }

  /** Stores where a message went; another process may have stored one first, and then that one counts. */
  async #remember(subject: ChatMessageSubject, id: string, ref: MessageRef): Promise<MessageRef> {
    const stored = await this.#messages.saveChatMessage({
      chat: this.#surface.name,
      subject,
      subjectId: id,
      ref,
      createdAt: this.#clock(),
    });
    if (stored.ref !== ref) {
      this.#log.warn({ subject, id }, 'another process posted this message first; following its copy');
    }
    return stored.ref;
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
}
