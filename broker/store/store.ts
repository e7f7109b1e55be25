import type {
  AccessRequest,
  Approval,
  AuditEntry,
  AuditInput,
  CredentialRecord,
  RequestState,
  ReviewState,
  StatementReview,
} from '../model.ts';
import type { SessionEnd, SessionEventRecord, SessionProtocol, SessionRecord } from '../ports/proxy.ts';

export interface ReviewFilter {
  states?: readonly ReviewState[];
  grantId?: string;
  limit?: number;
}

export interface RequestFilter {
  requester?: string;
  states?: readonly RequestState[];
  target?: string;
  parentId?: string;
  limit?: number;
}

/** Proxied sessions are defined by the proxy contract (what the proxies record). */
export type { SessionEnd, SessionEventRecord, SessionProtocol, SessionRecord };

export interface SessionFilter {
  protocol?: SessionProtocol;
  target?: string;
  requester?: string;
  grantId?: string;
  limit?: number;
}

/**
 * The SCRAM-SHA-256 verifier of a proxied grant's proxy password (what PostgreSQL itself stores
 * for a password): it lets the proxy check the requester's password after a restart and lets
 * nobody log in. The minted upstream password is never stored.
 */
export interface ProxyVerifierRecord {
  target: string;
  /** The proxy user name (the minted role's name). */
  user: string;
  grantId: string;
  verifier: string;
  createdAt: number;
}

export interface CredentialFilter {
  requestId?: string;
  requestIds?: readonly string[];
  target?: string;
  /** Only credentials with one of these handles (role names, serials). */
  handles?: readonly string[];
  states?: readonly CredentialRecord['state'][];
}

/** Requests and the approvals given on them. */
export interface RequestStore {
  insertRequest(request: AccessRequest): Promise<void>;
  getRequest(id: string): Promise<AccessRequest | undefined>;
  listRequests(filter: RequestFilter): Promise<AccessRequest[]>;
  /**
   * Grants revoked before their expiry whose expiry is still after `now` (their SSH certificates
   * are still valid: the KRL must name them), oldest first, without a cap.
   */
  listRevokedUnexpired(now: number): Promise<AccessRequest[]>;
  /** Applies `patch` if the stored version is `expectedVersion`; returns the new record, or undefined if it lost the race. */
  updateRequest(
    id: string,
    expectedVersion: number,
    patch: Partial<AccessRequest>,
  ): Promise<AccessRequest | undefined>;
  /**
   * Moves ending grants (`revoking`, `revocation_failed`) among `ids` whose credentials are all
   * gone to their `endState`; returns the grants it moved (each move bumps the version).
   */
  completeRevocations(ids: readonly string[]): Promise<AccessRequest[]>;
  /** Requests whose pending time ran out, active grants past expiry (or within `expiringWithin` and not yet warned). */
  findDue(
    now: number,
    expiringWithinMs: number,
  ): Promise<{
    timedOut: AccessRequest[];
    expired: AccessRequest[];
    expiring: AccessRequest[];
    remind: AccessRequest[];
  }>;
  /** Records an approval or denial; false when this approver already acted on the request. */
  insertApproval(approval: Approval): Promise<boolean>;
  listApprovals(requestId: string): Promise<Approval[]>;
}

/** What providers minted, and the leases under which one replica revokes each. */
export interface CredentialStore {
  insertCredential(credential: CredentialRecord): Promise<void>;
  getCredential(id: string): Promise<CredentialRecord | undefined>;
  listCredentials(filter: CredentialFilter): Promise<CredentialRecord[]>;
  updateCredential(id: string, patch: Partial<CredentialRecord>): Promise<void>;
  /** Marks many credentials revoked at once (mass expiry). */
  markCredentialsRevoked(ids: readonly string[], at: number): Promise<void>;
  /**
   * Takes a lease on credentials that need revoking (their grant ended, or a retry is due) so
   * that exactly one replica works on each. Returns the claimed records.
   */
  claimRevocations(
    ids: readonly string[],
    owner: string,
    now: number,
    leaseMs: number,
  ): Promise<CredentialRecord[]>;
  /** Credentials still alive whose grant is over, or whose retry time came. */
  findRevocationsDue(now: number): Promise<CredentialRecord[]>;
}

/** The hash-chained audit log. */
export interface AuditStore {
  /** Appends to the hash-chained audit log (serialised across replicas). */
  appendAudit(entry: AuditInput): Promise<AuditEntry>;
  /** Appends several entries in one transaction, in order. */
  appendAuditBatch(entries: readonly AuditInput[]): Promise<AuditEntry[]>;
  readAudit(options: { afterSeq?: number; since?: number; limit?: number }): Promise<AuditEntry[]>;
  /** The last entry (the head), if any. */
  readAuditHead(): Promise<AuditEntry | undefined>;
}

/**
 * Proxied sessions of every protocol (Postgres connections, SSH channels), their timelines and
 * their recordings. The proxies write through the contract's `SessionSink` (a subset).
 */
export interface SessionStore {
  /** Records a session when it starts. */
  insertSession(session: SessionRecord): Promise<void>;
  /** Records how a session ended. */
  endSession(id: string, end: SessionEnd): Promise<void>;
  appendSessionEvents(events: readonly SessionEventRecord[]): Promise<void>;
  /**
   * Stores piece `seq` (0, 1, …) of a live session's recording, bytes the store keeps as they are.
   * A piece number is written once.
   */
  appendSessionFrames(sessionId: string, seq: number, piece: Uint8Array): Promise<void>;
  /** Sessions, newest first (at most 1,000; 100 by default). */
  listSessions(filter: SessionFilter): Promise<SessionRecord[]>;
  getSession(id: string): Promise<SessionRecord | undefined>;
  /** A session's timeline in order. */
  listSessionEvents(sessionId: string): Promise<SessionEventRecord[]>;
  /** A session's recording pieces in order (none for a file transfer or a Postgres session). */
  readSessionFrames(sessionId: string): Promise<Uint8Array[]>;
  /**
   * The asciicast text of an SSH session recorded before migration 7, when recordings were text;
   * `null` for every later session (their recording is in {@link readSessionFrames}).
   */
  readLegacyRecording(sessionId: string): Promise<string | null>;
}

/** Proxy password verifiers of proxied grants. */
export interface ProxyVerifierStore {
  /** Stores (or replaces) the proxy password verifier of a proxied grant's user. */
  saveProxyVerifier(record: ProxyVerifierRecord): Promise<void>;
  /** Every stored proxy password verifier, oldest first. */
  listProxyVerifiers(): Promise<ProxyVerifierRecord[]>;
  /** Forgets the verifiers of a grant (it ended); idempotent. */
  deleteProxyVerifiers(grantId: string): Promise<void>;
}

/** Statements held by the proxy for review. */
export interface ReviewStore {
  insertReview(review: StatementReview): Promise<void>;
  getReview(id: string): Promise<StatementReview | undefined>;
  /** Reviews, newest first. */
  listReviews(filter: ReviewFilter): Promise<StatementReview[]>;
  /** Applies `patch` if the stored version is `expectedVersion`; undefined if it lost the race. */
  updateReview(
    id: string,
    expectedVersion: number,
    patch: Partial<StatementReview>,
  ): Promise<StatementReview | undefined>;
  /** Says the reviews `ids`, still pending, are held by a live process at `at` (no version change). */
  holdReviews(ids: readonly string[], at: number): Promise<void>;
}

/** One-time keys (replay protection). */
export interface OnceStore {
  /** Remembers a one-time key (an OIDC `jti`) until `expiresAt`; false if it was already seen. */
  rememberOnce(key: string, expiresAt: number, now: number): Promise<boolean>;
}

/** What a chat message shows: a request (its root message), a held statement, a person's direct conversation. */
export type ChatMessageSubject = 'request' | 'review' | 'direct';

/** Where a chat adapter posted about a subject, so any process can update it or find it again. */
export interface ChatMessageRecord {
  /** The adapter that posted it (`slack`, `teams`, `console`). */
  chat: string;
  subject: ChatMessageSubject;
  /** The request id, review id, or (direct) the person's id in that chat. */
  subjectId: string;
  /** The adapter's reference, opaque to Warden (Slack: channel and ts; Teams: a conversation reference). */
  ref: string;
  createdAt: number;
}

/** Chat message references. */
export interface ChatMessageStore {
  /**
   * Stores a reference. The first one stored for a subject is kept unless `replace` (direct
   * conversations, whose reference may change); returns the reference now stored.
   */
  saveChatMessage(record: ChatMessageRecord, options?: { replace?: boolean }): Promise<ChatMessageRecord>;
  getChatMessage(
    chat: string,
    subject: ChatMessageSubject,
    subjectId: string,
  ): Promise<ChatMessageRecord | undefined>;
  /** The record whose reference is `ref`: what a reply's thread is about. */
  findChatMessage(chat: string, ref: string): Promise<ChatMessageRecord | undefined>;
}

/**
 * How to reach a chat user in a 1:1 conversation, so that any process can message them after a
 * restart (a Teams conversation reference). Never holds a secret.
 */
export interface ChatConversationRecord {
  /** The adapter (`teams`). */
  chat: string;
  /** The user's id in that chat (Teams: the Entra object id). */
  userId: string;
  /** The Warden person they are. */
  personId: string;
  conversationId: string;
  /** The Bot Connector that serves the conversation. */
  serviceUrl: string;
  tenantId: string;
  updatedAt: number;
}

/** Conversation references (migration 13). */
export interface ChatConversationStore {
  /** Stores (or replaces) the reference of `(chat, userId)`. */
  saveChatConversation(record: ChatConversationRecord): Promise<void>;
  /** The newest reference for a chat user, or for a Warden person. */
  getChatConversation(
    chat: string,
    who: { userId: string } | { personId: string },
  ): Promise<ChatConversationRecord | undefined>;
}

/** Which SQL dialect a store runs on. */
export type StoreKind = 'embedded' | 'postgres';

/**
 * Where the broker keeps its state, one interface per aggregate. Two implementations share one
 * SQL code path (`sql-store.ts`): the embedded store (SQLite, nothing to install) and PostgreSQL
 * (several replicas). Every state change is a compare-and-set, so two replicas (or two racing
 * clicks) can never both win.
 */
export interface Store
  extends RequestStore,
    CredentialStore,
    AuditStore,
    SessionStore,
    ProxyVerifierStore,
    ReviewStore,
    OnceStore,
    ChatMessageStore,
    ChatConversationStore {
  readonly kind: StoreKind;
  migrate(): Promise<void>;
  close(): Promise<void>;
  ping(): Promise<void>;
}
