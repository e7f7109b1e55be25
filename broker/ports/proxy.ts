/**
 * The proxy contract: what every recording proxy (Postgres, SSH, later HTTP/Kubernetes) gets from
 * the broker, and the one way each of them starts. Modelled on Teleport's database engines
 * (`lib/srv/db/common/engines.go`): every engine is built from the same `EngineConfig` (Auth,
 * Audit, Clock, Log) and registered by protocol name. Here every proxy is started from
 * {@link ProxyOptions}: the broker's {@link ProxyPorts}, a clock, a logger and the protocol's own
 * settings; `proxy/start.ts` keeps the table of protocols.
 *
 * The four ports are the whole seam between the data plane and the control plane:
 * - {@link GrantAuthority}: who a connecting client is (grant lookup), and grant changes (a grant
 *   that ends cuts its sessions, an extension moves their deadline);
 * - {@link SessionSink}: where sessions, their timelines and their recordings go;
 * - {@link StatementReviewer}: a statement or command a rule holds until an approver decides;
 * - {@link ProxyAudit}: the broker's hash-chained audit log.
 *
 * This file is the only part of the broker a proxy imports (besides `lib/`; biome.json enforces
 * it). It holds types only, so it pulls in nothing else of the broker. The broker implements it in
 * `broker/proxy-ports.ts`; tests and benchmarks implement it with fakes.
 */
import type { Logger } from '../../lib/log.ts';
import type { PgTlsSettings } from '../../lib/pg-tls.ts';
import type { Secret } from '../../lib/secret.ts';

// ------------------------------------------------------------------ grants

/** A grant looked up by its id (the SSH proxy reads it from a certificate's key id or a token). */
export interface GrantStatus {
  grantId: string;
  requester: string;
  target: string;
  level: string;
  /**
   * The broker's request state (`active`, `expired`, `revoked`, `pending`, ...). Only `active`
   * with an expiry in the future lets anyone in; every other state is refused (deny by default).
   */
  state: string;
  /** What an ending grant becomes (`revoked`, `expired`); `null` while it has not ended. */
  endState: string | null;
  /** Epoch ms; `null` before activation. */
  expiresAt: number | null;
}

/**
 * A live grant reached by a proxy login (the Postgres proxy: the minted role's name and the grant's
 * one-time proxy password), with the upstream credential the client never sees.
 */
export interface ProxiedGrant {
  grantId: string;
  requester: string;
  /** The requester's groups (guardrail rules may be scoped to them). */
  groups: readonly string[];
  level: string;
  target: string;
  /** Epoch ms. */
  expiresAt: number;
  /** SCRAM-SHA-256 verifier of the proxy password (what PostgreSQL itself stores). */
  verifier: string;
  upstream: {
    host: string;
    port: number;
    database: string;
    user: string;
    password: Secret;
    /** TLS towards the database (the target's `tls` block, resolved). */
    tls?: PgTlsSettings | undefined;
  };
}

/** A change a proxy acts on: an ended grant cuts its sessions, an extension moves their deadline. */
export type GrantChange =
  | { type: 'ended'; grantId: string; reason: 'expired' | 'revoked'; detail: string }
  | { type: 'extended'; grantId: string; expiresAt: number };

/** Grant lookup and grant changes. */
export interface GrantAuthority {
  /**
   * The live grant whose proxy user name is `user` on `target`, or undefined (unknown user, ended
   * grant, another target). Never throws for unknown users.
   */
  lookup(target: string, user: string): Promise<ProxiedGrant | undefined>;
  /** The grant `grantId` in whatever state it is, or undefined (no such grant, malformed id). */
  getGrant(grantId: string): Promise<GrantStatus | undefined>;
  /** Calls `listener` for every grant change; returns a function that stops listening. */
  watch(listener: (change: GrantChange) => void): () => void;
}

// ------------------------------------------------------------------ sessions

/** The protocols a session may be recorded under. */
export type SessionProtocol = 'postgres' | 'ssh';

/**
 * One proxied session, whatever its protocol: a Postgres connection, an SSH channel (a shell, a
 * command, a file transfer). `summary` holds counters and facts; never secrets.
 */
export interface SessionRecord {
  id: string;
  protocol: SessionProtocol;
  grantId: string;
  requester: string;
  target: string;
  level: string;
  /** The account used on the target: the database role, the SSH principal. */
  login: string;
  clientAddress: string;
  startedAt: number;
  endedAt: number | null;
  endReason: string | null;
  /**
   * Postgres: statements, blocked, errors, rows, masked counts by label. SSH: the channel kind and
   * command, then commands, blocked, bytes in and out, masked counts, exit status.
   */
  summary: Record<string, unknown>;
}

/** One entry of a session's timeline: a statement, a block, an error, masked rows, the end. */
export interface SessionEventRecord {
  sessionId: string;
  /** Order within the session, from 1. */
  seq: number;
  at: number;
  kind: string;
  /** Already masked by the proxy: unmasked values are never stored. */
  data: Record<string, unknown>;
}

/** How a session ended. */
export interface SessionEnd {
  endedAt: number;
  endReason: string;
  /** Replaces the summary given at the start. */
  summary: Record<string, unknown>;
}

/** Where sessions go (the broker's store). Writes may fail; the proxy logs and carries on. */
export interface SessionSink {
  /** Records a session when it starts. */
  insertSession(session: SessionRecord): Promise<void>;
  /** Appends timeline events, in order, possibly of several sessions. */
  appendSessionEvents(events: readonly SessionEventRecord[]): Promise<void>;
  /**
   * Stores piece `seq` (0, 1, …) of a live session's recording: bytes kept as they are (the SSH
   * proxy's frames). Pieces keep each write small however long the session.
   */
  appendSessionFrames(sessionId: string, seq: number, piece: Uint8Array): Promise<void>;
  /** Records how a session ended. */
  endSession(id: string, end: SessionEnd): Promise<void>;
}

// ------------------------------------------------------------------ review

/** A held statement or command, as the proxy describes it to the reviewer. */
export interface ReviewSubmission {
  grantId: string;
  /** The proxied session that holds the statement. */
  sessionId: string;
  /** The statement as recorded: masked by the proxy's masker and cut; never the raw text. */
  statement: string;
  /** The guardrail rule that asked for review, and its message. */
  rule: string;
  message: string;
  /** How long to wait for a decision, in ms (the rule's `timeout`). */
  timeoutMs: number;
}

/** How a review ended, as the proxy acts on it. */
export type ReviewOutcome =
  | { decision: 'approved'; reviewId: string; by: string; reason: string }
  | { decision: 'denied'; reviewId: string; by: string; reason: string }
  /** Timed out, withdrawn, or the grant ended: the statement does not run. */
  | { decision: 'expired'; reviewId: string; reason: string };

/** Statement (or command) review: the proxy holds, the grant's approvers decide. */
export interface StatementReviewer {
  /**
   * Records the review, asks the approvers and resolves with the outcome. Aborting `signal`
   * (session end, cancel) withdraws the review; the promise then resolves as `expired`. Rejects
   * only when the review cannot be recorded (the proxy refuses the statement: fail closed).
   */
  review(submission: ReviewSubmission, signal: AbortSignal): Promise<ReviewOutcome>;
}

// ------------------------------------------------------------------ audit

/** The broker's audit log, as the proxies append to it. */
export interface ProxyAudit {
  /**
   * Appends `action` by `actor` (the grant's requester) about `subject` (the grant id). `data` is
   * masked and cut by the proxy; never secrets. Rejects when the entry cannot be stored.
   */
  record(actor: string, action: string, subject: string, data: Record<string, unknown>): Promise<void>;
}

// ------------------------------------------------------------------ starting a proxy

/** What the broker lends every proxy. */
export interface ProxyPorts {
  grants: GrantAuthority;
  sessions: SessionSink;
  audit: ProxyAudit;
  /** Absent: statements a rule sends to review are refused (fail closed). */
  reviews?: StatementReviewer | undefined;
}

/** The options every proxy starts from, whatever its protocol (Teleport's `EngineConfig`). */
export interface ProxyOptions<Settings> {
  ports: ProxyPorts;
  /** Epoch ms; grant expiries are checked against it. */
  clock: () => number;
  logger: Logger;
  /** The protocol's own settings (listen addresses, keys, per-target guardrails and masking). */
  settings: Settings;
}

/** One listening socket of a running proxy. */
export interface ProxyListener {
  /** What it serves: a target's name (Postgres), or the protocol's name (SSH serves every target). */
  name: string;
  /** `host:port` it is bound to. */
  address: string;
}

/** A started proxy. */
export interface RunningProxy {
  readonly protocol: string;
  readonly listeners: readonly ProxyListener[];
  /** Ends every session with a message, stops listening; resolves once sessions are recorded. */
  close(): Promise<void>;
}

/** Starts one protocol's proxy (what `proxy/start.ts` registers per protocol). */
export type ProxyStarter<Settings> = (options: ProxyOptions<Settings>) => Promise<RunningProxy>;
