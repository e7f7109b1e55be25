/**
 * The chat port: everything a chat front end (bot/) may know of the broker, and nothing else of
 * it. The in-process `Broker`, its `Directory`, its `StatementReviews` and the `Store` satisfy
 * these interfaces; a client of the broker's HTTP API could too. Types only: importing this module
 * loads no broker code. No chat platform's types appear here.
 */

import type { SecretRef } from '../../lib/secret.ts';
import type { ChatKind, Person } from '../directory/directory.ts';
import type { BrokerEvents } from '../events/events.ts';
import type { AccessRequest, StatementReview } from '../model.ts';
import type { Actor, CreateRequestInput, RequestDetails } from '../requests/broker.ts';
import type { RequestFilter } from '../store/store.ts';

export type { ChatKind, Person } from '../directory/directory.ts';
export type {
  BrokerEvent,
  BrokerEvents,
  IssuedCredential,
  PostgresIssuedCredential,
  SshIssuedCredential,
} from '../events/events.ts';
export type { AccessRequest, Approval, RequestState, ReviewState, StatementReview } from '../model.ts';
export type { ApprovalRequirement } from '../policy/evaluate.ts';
export type { Actor, CreateRequestInput, RequestDetails } from '../requests/broker.ts';
export type {
  ChatConversationRecord,
  ChatConversationStore,
  ChatMessageRecord,
  ChatMessageStore,
  ChatMessageSubject,
  OnceStore,
  RequestFilter,
} from '../store/store.ts';

/** What a chat front end reads of the configuration: where to post approvals. */
export interface ChatPolicyView {
  targets: Readonly<
    Record<string, { approval_channel?: string | undefined; description?: string | undefined }>
  >;
  rules: readonly { name: string; approval_channel?: string | undefined }[];
}

/** The people lookups a chat front end needs: chat users to Warden people, and back. */
export interface ChatDirectory {
  get(id: string): Person | undefined;
  findByEmail(email: string): Person | undefined;
  findByChatId(chat: ChatKind, chatId: string): Person | undefined;
  chatIdOf(personId: string, chat: ChatKind): string | undefined;
}

/** The broker operations a chat front end calls, and the events it follows. */
export interface ChatBrokerPort {
  request(input: CreateRequestInput): Promise<AccessRequest>;
  approve(id: string, actor: Actor): Promise<AccessRequest>;
  deny(id: string, actor: Actor, reason: string): Promise<AccessRequest>;
  cancel(id: string, actor: Actor): Promise<AccessRequest>;
  revoke(id: string, actor: Actor, reason?: string): Promise<AccessRequest>;
  extend(id: string, actor: Actor, duration: string | number): Promise<AccessRequest>;
  list(filter: RequestFilter): Promise<AccessRequest[]>;
  listAwaiting(personId: string): Promise<AccessRequest[]>;
  show(id: string): Promise<RequestDetails>;
  /** Whether `personId` may decide this request right now, and if not why (never throws for that). */
  canApprove(id: string, personId: string): Promise<{ ok: boolean; reason?: string }>;
  /**
   * Runs `fn` with `via` as the caller its audit entries record (`chat:slack`); an in-process
   * broker only. Absent: entries record the acting person alone.
   */
  runAs?<T>(via: string, fn: () => T): T;
  readonly events: BrokerEvents;
  readonly config: ChatPolicyView;
  readonly directory: ChatDirectory;
}

/** Decisions on statements the Postgres proxy holds for review. */
export interface ChatReviewPort {
  approve(id: string, actor: Actor, reason?: string): Promise<StatementReview>;
  deny(id: string, actor: Actor, reason?: string): Promise<StatementReview>;
}

export type { SecretRef } from '../../lib/secret.ts';

/** A secret value that never prints; `reveal()` only where it is handed to the chat service. */
export interface Revealable {
  reveal(): string;
}

/**
 * Resolves a secret reference of the `chat:` section; `path` names its config key for errors
 * (`chat.slack.bot_token`). May be asynchronous (a secret store).
 */
export type ResolveSecret = (ref: SecretRef, path: string) => Revealable | Promise<Revealable>;
