/**
 * What a chat adapter gives the core: transport and markup. The core says what to post and where;
 * the adapter renders the neutral {@link Card} and {@link Message} in its platform's markup, escapes
 * every literal part, and sends it. Identity lookup stays in the adapter too: it calls the core
 * with Warden person ids.
 */
import type { Card, Message } from './message.ts';

/**
 * Where an adapter posted a message, as a string the adapter alone reads (Slack: channel and ts;
 * Teams: a conversation reference). The core stores it and hands it back; it never looks inside.
 * An adapter must give the same string for a thread's root whether it posted the root or an
 * inbound reply names it, since that is how replies find their request.
 */
export type MessageRef = string;

/** Where a card is posted. */
export interface Destination {
  /** The approval channel as configured (`#db-approvals`, or a platform id). */
  channel: string;
  /** Inside this message's thread (a held statement in its grant's thread). */
  thread?: MessageRef;
}

/** A chat platform as the core draws on it. Every method may fail; the core logs and carries on. */
export interface ChatSurface {
  /** Names the chat in stored message references (`slack`, `teams`, `console`). */
  readonly name: string;
  /** Posts a card; returns where it is. */
  postCard(where: Destination, card: Card): Promise<MessageRef>;
  /** Replaces a posted card in place. */
  updateCard(ref: MessageRef, card: Card): Promise<void>;
  /** A reply in the thread of a posted card. */
  postInThread(root: MessageRef, message: Message): Promise<void>;
  /** A direct message to a Warden person. It may hold a credential: never log it. */
  sendDirect(personId: string, message: Message): Promise<void>;
  /**
   * Whether this chat can reach a Warden person. With several chats running, a request is drawn
   * in the chat it came from and in each chat that reaches one of its approvers; the requester is
   * told in the chat the request came from. Absent: this chat draws every request.
   */
  reaches?(personId: string): boolean;
}
