/**
 * The narrow slice of the broker the bot depends on. The in-process `Broker` satisfies it; a
 * client of the broker's HTTP API can too. Only types cross this line, never Slack types.
 */
import type { Directory } from '../broker/directory/directory.ts';
import type { BrokerEvents } from '../broker/events/events.ts';
import type { AccessRequest, StatementReview } from '../broker/model.ts';
import type { Actor, CreateRequestInput, RequestDetails } from '../broker/requests/broker.ts';
import type { RequestFilter } from '../broker/store/store.ts';

/** Names the chat as the caller of every audit entry a call causes (in-process broker only). */
export { runAsCaller } from '../broker/audit/caller.ts';
export type { BrokerEvent } from '../broker/events/events.ts';
export type { AccessRequest, Approval, RequestState, StatementReview } from '../broker/model.ts';
export type { ApprovalRequirement } from '../broker/policy/evaluate.ts';
export type { Actor, RequestDetails } from '../broker/requests/broker.ts';

/** What the bot reads of the configuration: where to post approvals. */
export interface BrokerPolicyView {
  targets: Readonly<
    Record<string, { approval_channel?: string | undefined; description?: string | undefined }>
  >;
  rules: readonly { name: string; approval_channel?: string | undefined }[];
}

/** The people lookups the bot needs to map chat users to Warden identities. */
export type PeopleDirectory = Pick<Directory, 'get' | 'findByEmail' | 'findBySlackId'>;

/** The broker operations a chat front end calls. */
export interface BrokerPort {
  request(input: CreateRequestInput): Promise<AccessRequest>;
  approve(id: string, actor: Actor): Promise<AccessRequest>;
  deny(id: string, actor: Actor, reason: string): Promise<AccessRequest>;
  cancel(id: string, actor: Actor): Promise<AccessRequest>;
  revoke(id: string, actor: Actor, reason?: string): Promise<AccessRequest>;
  extend(id: string, actor: Actor, duration: string | number): Promise<AccessRequest>;
  list(filter: RequestFilter): Promise<AccessRequest[]>;
  listAwaiting(personId: string): Promise<AccessRequest[]>;
  show(id: string): Promise<RequestDetails>;
  readonly events: BrokerEvents;
  readonly config: BrokerPolicyView;
  readonly directory: PeopleDirectory;
}

/** Decisions on statements the Postgres proxy holds for review (the broker's `StatementReviews`). */
export interface ReviewPort {
  approve(id: string, actor: Actor, reason?: string): Promise<StatementReview>;
  deny(id: string, actor: Actor, reason?: string): Promise<StatementReview>;
}
