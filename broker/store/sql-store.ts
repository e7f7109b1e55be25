/**
 * The store on SQL, one code path for SQLite (embedded) and PostgreSQL. Portable on purpose:
 * state changes are compare-and-set updates (`WHERE version = ?`) and leases, so no dialect's
 * row locking is needed; only the audit chain uses a PostgreSQL advisory lock to serialise appends
 * across replicas (SQLite serialises writers by itself).
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import {
  type Generated,
  Kysely,
  PostgresDialect,
  type Selectable,
  SqliteDialect,
  sql,
  type Transaction,
} from 'kysely';
import pg from 'pg';
import { GENESIS_HASH, hashAuditEntry } from '../audit/chain.ts';
import type {
  AccessRequest,
  Approval,
  AuditEntry,
  AuditInput,
  CredentialRecord,
  SshSessionRecord,
  StatementReview,
} from '../model.ts';
import type {
  CredentialFilter,
  ProxyVerifierRecord,
  RequestFilter,
  ReviewFilter,
  SessionEventRecord,
  SessionFilter,
  SessionRecord,
  Store,
} from './store.ts';
import { WalCheckpointer } from './wal-checkpointer.ts';

interface RequestRow {
  id: string;
  kind: string;
  parent_id: string | null;
  requester: string;
  target: string;
  level: string;
  duration_ms: number;
  reason: string;
  state: string;
  rule: string;
  decision: string;
  break_glass: number;
  source: string;
  created_at: number;
  pending_until: number;
  decided_at: number | null;
  activated_at: number | null;
  expires_at: number | null;
  ended_at: number | null;
  end_reason: string | null;
  ended_by: string | null;
  reminded_at: number | null;
  expiring_notified_at: number | null;
  error: string | null;
  version: number;
  meta: string;
}

interface ApprovalRow {
  request_id: string;
  approver: string;
  verdict: string;
  reason: string | null;
  at: number;
}

interface CredentialRow {
  id: string;
  request_id: string;
  target: string;
  provider: string;
  handle: string;
  state: string;
  created_at: number;
  expires_at: number;
  revoked_at: number | null;
  attempts: number;
  next_attempt_at: number | null;
  last_error: string | null;
  lease_owner: string | null;
  lease_until: number | null;
}

interface AuditRow {
  seq: number;
  at: number;
  actor: string;
  action: string;
  subject: string;
  data: string;
  prev_hash: string;
  hash: string;
}

interface SshSessionRow {
  id: string;
  request_id: string;
  target: string;
  kind: string;
  requester: string;
  login: string;
  client: string;
  started_at: number;
  ended_at: number | null;
  end_reason: string | null;
  recording: string | null;
  meta: string;
}

function fromSshSessionRow(row: Partial<Selectable<SshSessionRow>>): SshSessionRecord {
  return {
    id: row.id!,
    requestId: row.request_id!,
    target: row.target!,
    kind: row.kind!,
    requester: row.requester!,
    login: row.login!,
    client: row.client!,
    startedAt: num(row.started_at),
    endedAt: numOrNull(row.ended_at),
    endReason: row.end_reason ?? null,
    recording: row.recording ?? null,
    meta: JSON.parse(row.meta ?? '{}'),
  };
}

interface PgSessionRow {
  id: string;
  protocol: string;
  grant_id: string;
  requester: string;
  target: string;
  level: string;
  client_address: string;
  started_at: number;
  ended_at: number | null;
  end_reason: string | null;
  summary: string;
}

/** A batch of a session's timeline: one row per write keeps recording cheap at high statement rates. */
interface SessionChunkRow {
  session_id: string;
  first_seq: number;
  last_seq: number;
  at: number;
  /** JSON array of `[seq, at, kind, data]`. */
  events: string;
}

/** A piece of an SSH session's recording as asciicast text (written before migration 7). */
interface SshRecordingChunkRow {
  session_id: string;
  seq: number;
  data: string;
}

/** A piece of an SSH session's recording: binary frames, written while the session runs. */
interface SshRecordingFramesRow {
  session_id: string;
  seq: number;
  data: Uint8Array;
}

function fromSessionRow(row: PgSessionRow): SessionRecord {
  return {
    id: row.id,
    protocol: row.protocol,
    grantId: row.grant_id,
    requester: row.requester,
    target: row.target,
    level: row.level,
    clientAddress: row.client_address,
    startedAt: Number(row.started_at),
    endedAt: row.ended_at === null ? null : Number(row.ended_at),
    endReason: row.end_reason,
    summary: JSON.parse(row.summary) as Record<string, unknown>,
  };
}

interface ProxyVerifierRow {
  target: string;
  user_name: string;
  grant_id: string;
  verifier: string;
  created_at: number;
}

interface ReviewRow {
  id: string;
  grant_id: string;
  requester: string;
  target: string;
  level: string;
  session_id: string;
  statement: string;
  rule: string;
  message: string;
  state: string;
  created_at: number;
  deadline: number;
  decided_at: number | null;
  decided_by: string | null;
  decision_reason: string | null;
  version: number;
  meta: string;
  held_at: number | null;
}

const REVIEW_FIELDS: Record<keyof StatementReview, keyof ReviewRow> = {
  id: 'id',
  grantId: 'grant_id',
  requester: 'requester',
  target: 'target',
  level: 'level',
  sessionId: 'session_id',
  statement: 'statement',
  rule: 'rule',
  message: 'message',
  state: 'state',
  createdAt: 'created_at',
  deadline: 'deadline',
  decidedAt: 'decided_at',
  decidedBy: 'decided_by',
  decisionReason: 'decision_reason',
  version: 'version',
  meta: 'meta',
  heldAt: 'held_at',
};

function toReviewRow(patch: Partial<StatementReview>): Partial<ReviewRow> {
  const row: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(patch)) {
    const column = REVIEW_FIELDS[key as keyof StatementReview];
    if (column) row[column] = key === 'meta' ? JSON.stringify(value) : value;
  }
  return row as Partial<ReviewRow>;
}

function fromReviewRow(row: Selectable<ReviewRow>): StatementReview {
  return {
    id: row.id,
    grantId: row.grant_id,
    requester: row.requester,
    target: row.target,
    level: row.level,
    sessionId: row.session_id,
    statement: row.statement,
    rule: row.rule,
    message: row.message,
    state: row.state as StatementReview['state'],
    createdAt: num(row.created_at),
    deadline: num(row.deadline),
    decidedAt: numOrNull(row.decided_at),
    decidedBy: row.decided_by,
    decisionReason: row.decision_reason,
    version: num(row.version),
    meta: JSON.parse(row.meta),
    heldAt: numOrNull(row.held_at),
  };
}

interface Tables {
  warden_reviews: ReviewRow;
  warden_sessions: SshSessionRow;
  warden_pg_sessions: PgSessionRow;
  warden_pg_session_chunks: SessionChunkRow;
  warden_ssh_recording_chunks: SshRecordingChunkRow;
  warden_ssh_recording_frames: SshRecordingFramesRow;
  warden_requests: RequestRow;
  warden_approvals: ApprovalRow;
  warden_credentials: CredentialRow;
  warden_audit: AuditRow;
  warden_once: { key: string; expires_at: number };
  warden_proxy_verifiers: ProxyVerifierRow;
  warden_meta: { key: string; value: string };
  warden_dummy: { id: Generated<number> };
}

const REQUEST_FIELDS: Record<keyof AccessRequest, keyof RequestRow> = {
  id: 'id',
  kind: 'kind',
  parentId: 'parent_id',
  requester: 'requester',
  target: 'target',
  level: 'level',
  durationMs: 'duration_ms',
  reason: 'reason',
  state: 'state',
  rule: 'rule',
  decision: 'decision',
  breakGlass: 'break_glass',
  source: 'source',
  createdAt: 'created_at',
  pendingUntil: 'pending_until',
  decidedAt: 'decided_at',
  activatedAt: 'activated_at',
  expiresAt: 'expires_at',
  endedAt: 'ended_at',
  endReason: 'end_reason',
  endedBy: 'ended_by',
  remindedAt: 'reminded_at',
  expiringNotifiedAt: 'expiring_notified_at',
  error: 'error',
  version: 'version',
  meta: 'meta',
};

function toRequestRow(patch: Partial<AccessRequest>): Partial<RequestRow> {
  const row: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(patch)) {
    const column = REQUEST_FIELDS[key as keyof AccessRequest];
    if (!column) continue;
    if (key === 'decision' || key === 'meta') row[column] = JSON.stringify(value);
    else if (key === 'breakGlass') row[column] = value ? 1 : 0;
    else row[column] = value;
  }
  return row as Partial<RequestRow>;
}

const num = (v: unknown): number => (v === null || v === undefined ? (v as never) : Number(v));
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

function fromRequestRow(row: Selectable<RequestRow>): AccessRequest {
  return {
    id: row.id,
    kind: row.kind as AccessRequest['kind'],
    parentId: row.parent_id,
    requester: row.requester,
    target: row.target,
    level: row.level,
    durationMs: num(row.duration_ms),
    reason: row.reason,
    state: row.state as AccessRequest['state'],
    rule: row.rule,
    decision: JSON.parse(row.decision),
    breakGlass: Boolean(Number(row.break_glass)),
    source: row.source as AccessRequest['source'],
    createdAt: num(row.created_at),
    pendingUntil: num(row.pending_until),
    decidedAt: numOrNull(row.decided_at),
    activatedAt: numOrNull(row.activated_at),
    expiresAt: numOrNull(row.expires_at),
    endedAt: numOrNull(row.ended_at),
    endReason: row.end_reason,
    endedBy: row.ended_by,
    remindedAt: numOrNull(row.reminded_at),
    expiringNotifiedAt: numOrNull(row.expiring_notified_at),
    error: row.error,
    version: num(row.version),
    meta: JSON.parse(row.meta),
  };
}

function fromCredentialRow(row: Selectable<CredentialRow>): CredentialRecord {
  return {
    id: row.id,
    requestId: row.request_id,
    target: row.target,
    provider: row.provider,
    handle: row.handle,
    state: row.state as CredentialRecord['state'],
    createdAt: num(row.created_at),
    expiresAt: num(row.expires_at),
    revokedAt: numOrNull(row.revoked_at),
    attempts: num(row.attempts),
    nextAttemptAt: numOrNull(row.next_attempt_at),
    lastError: row.last_error,
    leaseOwner: row.lease_owner,
    leaseUntil: numOrNull(row.lease_until),
  };
}

const CREDENTIAL_FIELDS: Record<keyof CredentialRecord, keyof CredentialRow> = {
  id: 'id',
  requestId: 'request_id',
  target: 'target',
  provider: 'provider',
  handle: 'handle',
  state: 'state',
  createdAt: 'created_at',
  expiresAt: 'expires_at',
  revokedAt: 'revoked_at',
  attempts: 'attempts',
  nextAttemptAt: 'next_attempt_at',
  lastError: 'last_error',
  leaseOwner: 'lease_owner',
  leaseUntil: 'lease_until',
};

function toCredentialRow(patch: Partial<CredentialRecord>): Partial<CredentialRow> {
  const row: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(patch))
    row[CREDENTIAL_FIELDS[key as keyof CredentialRecord]] = value;
  return row as Partial<CredentialRow>;
}

function fromAuditRow(row: Selectable<AuditRow>): AuditEntry {
  return {
    seq: num(row.seq),
    at: num(row.at),
    actor: row.actor,
    action: row.action,
    subject: row.subject,
    data: JSON.parse(row.data),
    prevHash: row.prev_hash,
    hash: row.hash,
  };
}

type Db = Kysely<Tables>;

/** The ordered schema migrations; each runs once, recorded in warden_meta. */
const MIGRATIONS: ((db: Db, kind: SqlStore['kind']) => Promise<void>)[] = [
  async (db) => {
    await db.schema
      .createTable('warden_requests')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('parent_id', 'text')
      .addColumn('requester', 'text', (c) => c.notNull())
      .addColumn('target', 'text', (c) => c.notNull())
      .addColumn('level', 'text', (c) => c.notNull())
      .addColumn('duration_ms', 'bigint', (c) => c.notNull())
      .addColumn('reason', 'text', (c) => c.notNull())
      .addColumn('state', 'text', (c) => c.notNull())
      .addColumn('rule', 'text', (c) => c.notNull())
      .addColumn('decision', 'text', (c) => c.notNull())
      .addColumn('break_glass', 'integer', (c) => c.notNull())
      .addColumn('source', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('pending_until', 'bigint', (c) => c.notNull())
      .addColumn('decided_at', 'bigint')
      .addColumn('activated_at', 'bigint')
      .addColumn('expires_at', 'bigint')
      .addColumn('ended_at', 'bigint')
      .addColumn('end_reason', 'text')
      .addColumn('ended_by', 'text')
      .addColumn('reminded_at', 'bigint')
      .addColumn('expiring_notified_at', 'bigint')
      .addColumn('error', 'text')
      .addColumn('version', 'integer', (c) => c.notNull())
      .addColumn('meta', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createIndex('warden_requests_state')
      .on('warden_requests')
      .columns(['state', 'expires_at'])
      .execute();
    await db.schema
      .createIndex('warden_requests_requester')
      .on('warden_requests')
      .columns(['requester', 'created_at'])
      .execute();
    await db.schema
      .createTable('warden_approvals')
      .addColumn('request_id', 'text', (c) => c.notNull())
      .addColumn('approver', 'text', (c) => c.notNull())
      .addColumn('verdict', 'text', (c) => c.notNull())
      .addColumn('reason', 'text')
      .addColumn('at', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('warden_approvals_pk', ['request_id', 'approver'])
      .execute();
    await db.schema
      .createTable('warden_credentials')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('request_id', 'text', (c) => c.notNull())
      .addColumn('target', 'text', (c) => c.notNull())
      .addColumn('provider', 'text', (c) => c.notNull())
      .addColumn('handle', 'text', (c) => c.notNull())
      .addColumn('state', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('expires_at', 'bigint', (c) => c.notNull())
      .addColumn('revoked_at', 'bigint')
      .addColumn('attempts', 'integer', (c) => c.notNull())
      .addColumn('next_attempt_at', 'bigint')
      .addColumn('last_error', 'text')
      .addColumn('lease_owner', 'text')
      .addColumn('lease_until', 'bigint')
      .execute();
    await db.schema
      .createIndex('warden_credentials_state')
      .on('warden_credentials')
      .columns(['state', 'expires_at'])
      .execute();
    await db.schema
      .createIndex('warden_credentials_request')
      .on('warden_credentials')
      .columns(['request_id'])
      .execute();
    await db.schema
      .createTable('warden_audit')
      .addColumn('seq', 'bigint', (c) => c.primaryKey())
      .addColumn('at', 'bigint', (c) => c.notNull())
      .addColumn('actor', 'text', (c) => c.notNull())
      .addColumn('action', 'text', (c) => c.notNull())
      .addColumn('subject', 'text', (c) => c.notNull())
      .addColumn('data', 'text', (c) => c.notNull())
      .addColumn('prev_hash', 'text', (c) => c.notNull())
      .addColumn('hash', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('warden_once')
      .addColumn('key', 'text', (c) => c.primaryKey())
      .addColumn('expires_at', 'bigint', (c) => c.notNull())
      .execute();
  },
  // 2: proxied sessions and their recordings.
  async (db) => {
    await db.schema
      .createTable('warden_sessions')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('request_id', 'text', (c) => c.notNull())
      .addColumn('target', 'text', (c) => c.notNull())
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('requester', 'text', (c) => c.notNull())
      .addColumn('login', 'text', (c) => c.notNull())
      .addColumn('client', 'text', (c) => c.notNull())
      .addColumn('started_at', 'bigint', (c) => c.notNull())
      .addColumn('ended_at', 'bigint')
      .addColumn('end_reason', 'text')
      .addColumn('recording', 'text')
      .addColumn('meta', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createIndex('warden_sessions_request')
      .on('warden_sessions')
      .columns(['request_id', 'started_at'])
      .execute();
  },
  // 3: proxied Postgres sessions and their timelines, in chunks.
  async (db) => {
    await db.schema
      .createTable('warden_pg_sessions')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('protocol', 'text', (c) => c.notNull())
      .addColumn('grant_id', 'text', (c) => c.notNull())
      .addColumn('requester', 'text', (c) => c.notNull())
      .addColumn('target', 'text', (c) => c.notNull())
      .addColumn('level', 'text', (c) => c.notNull())
      .addColumn('client_address', 'text', (c) => c.notNull())
      .addColumn('started_at', 'bigint', (c) => c.notNull())
      .addColumn('ended_at', 'bigint')
      .addColumn('end_reason', 'text')
      .addColumn('summary', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createIndex('warden_pg_sessions_started')
      .on('warden_pg_sessions')
      .columns(['started_at'])
      .execute();
    await db.schema
      .createTable('warden_pg_session_chunks')
      .addColumn('session_id', 'text', (c) => c.notNull())
      .addColumn('first_seq', 'integer', (c) => c.notNull())
      .addColumn('last_seq', 'integer', (c) => c.notNull())
      .addColumn('at', 'bigint', (c) => c.notNull())
      .addColumn('events', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('warden_pg_session_chunks_pk', ['session_id', 'first_seq'])
      .execute();
  },
  // 4: SCRAM verifiers of proxy passwords, so proxied grants survive a restart (never a password).
  async (db) => {
    await db.schema
      .createTable('warden_proxy_verifiers')
      .addColumn('target', 'text', (c) => c.notNull())
      .addColumn('user_name', 'text', (c) => c.notNull())
      .addColumn('grant_id', 'text', (c) => c.notNull())
      .addColumn('verifier', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('warden_proxy_verifiers_pk', ['target', 'user_name'])
      .execute();
    await db.schema
      .createIndex('warden_proxy_verifiers_grant')
      .on('warden_proxy_verifiers')
      .columns(['grant_id'])
      .execute();
  },
  // 5: SSH recordings in pieces, so no single write of a long session blocks the proxy.
  async (db) => {
    await db.schema
      .createTable('warden_ssh_recording_chunks')
      .addColumn('session_id', 'text', (c) => c.notNull())
      .addColumn('seq', 'integer', (c) => c.notNull())
      .addColumn('data', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('warden_ssh_recording_chunks_pk', ['session_id', 'seq'])
      .execute();
  },
  // 6: statements held by the Postgres proxy for review.
  async (db) => {
    await db.schema
      .createTable('warden_reviews')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('grant_id', 'text', (c) => c.notNull())
      .addColumn('requester', 'text', (c) => c.notNull())
      .addColumn('target', 'text', (c) => c.notNull())
      .addColumn('level', 'text', (c) => c.notNull())
      .addColumn('session_id', 'text', (c) => c.notNull())
      .addColumn('statement', 'text', (c) => c.notNull())
      .addColumn('rule', 'text', (c) => c.notNull())
      .addColumn('message', 'text', (c) => c.notNull())
      .addColumn('state', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('deadline', 'bigint', (c) => c.notNull())
      .addColumn('decided_at', 'bigint')
      .addColumn('decided_by', 'text')
      .addColumn('decision_reason', 'text')
      .addColumn('version', 'integer', (c) => c.notNull())
      .addColumn('meta', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createIndex('warden_reviews_state')
      .on('warden_reviews')
      .columns(['state', 'created_at'])
      .execute();
  },
  // 7: SSH recordings as pieces of binary frames, stored as written (rendered as asciicast on read).
  async (db, kind) => {
    await db.schema
      .createTable('warden_ssh_recording_frames')
      .addColumn('session_id', 'text', (c) => c.notNull())
      .addColumn('seq', 'integer', (c) => c.notNull())
      .addColumn('data', kind === 'postgres' ? 'bytea' : 'blob', (c) => c.notNull())
      .addPrimaryKeyConstraint('warden_ssh_recording_frames_pk', ['session_id', 'seq'])
      .execute();
  },
  // 8: when the process holding a reviewed statement last said it still waits.
  async (db) => {
    await db.schema.alterTable('warden_reviews').addColumn('held_at', 'bigint').execute();
  },
];

/** One SQL store over a Kysely instance; `openEmbeddedStore` and `openPostgresStore` open its two dialects. */
export class SqlStore implements Store {
  readonly kind: 'embedded' | 'postgres';
  readonly #db: Db;
  readonly #beforeClose: (() => Promise<void>) | undefined;

  /** `beforeClose` runs first in {@link close} (the embedded store stops its checkpointer there). */
  constructor(kind: 'embedded' | 'postgres', db: Db, beforeClose?: () => Promise<void>) {
    this.kind = kind;
    this.#db = db;
    this.#beforeClose = beforeClose;
  }

  async migrate(): Promise<void> {
    await this.#db.schema
      .createTable('warden_meta')
      .ifNotExists()
      .addColumn('key', 'text', (c) => c.primaryKey())
      .addColumn('value', 'text', (c) => c.notNull())
      .execute();
    await this.#db.transaction().execute(async (trx) => {
      if (this.kind === 'postgres') await sql`select pg_advisory_xact_lock(7467001)`.execute(trx);
      const row = await trx
        .selectFrom('warden_meta')
        .select('value')
        .where('key', '=', 'schema_version')
        .executeTakeFirst();
      const current = row ? Number(row.value) : 0;
      for (let v = current; v < MIGRATIONS.length; v++) await MIGRATIONS[v]!(trx, this.kind);
      if (current < MIGRATIONS.length) {
        await trx
          .insertInto('warden_meta')
          .values({ key: 'schema_version', value: String(MIGRATIONS.length) })
          .onConflict((oc) => oc.column('key').doUpdateSet({ value: String(MIGRATIONS.length) }))
          .execute();
      }
    });
  }

  async close(): Promise<void> {
    await this.#beforeClose?.();
    await this.#db.destroy();
  }

  async ping(): Promise<void> {
    await sql`select 1`.execute(this.#db);
  }

  async insertRequest(request: AccessRequest): Promise<void> {
    await this.#db
      .insertInto('warden_requests')
      .values(toRequestRow(request) as RequestRow)
      .execute();
  }

  async getRequest(id: string): Promise<AccessRequest | undefined> {
    const row = await this.#db
      .selectFrom('warden_requests')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    return row ? fromRequestRow(row) : undefined;
  }

  async listRequests(filter: RequestFilter): Promise<AccessRequest[]> {
    let q = this.#db.selectFrom('warden_requests').selectAll();
    if (filter.requester) q = q.where('requester', '=', filter.requester);
    if (filter.target) q = q.where('target', '=', filter.target);
    if (filter.parentId) q = q.where('parent_id', '=', filter.parentId);
    if (filter.states?.length) q = q.where('state', 'in', [...filter.states]);
    const rows = await q
      .orderBy('created_at', 'desc')
      .orderBy('id')
      .limit(Math.min(filter.limit ?? 100, 1000))
      .execute();
    return rows.map(fromRequestRow);
  }

  async listRevokedUnexpired(now: number): Promise<AccessRequest[]> {
    const rows = await this.#db
      .selectFrom('warden_requests')
      .selectAll()
      .where('state', '=', 'revoked')
      .where('kind', '=', 'access')
      .where('expires_at', '>', now)
      .orderBy('expires_at')
      .orderBy('id')
      .execute();
    return rows.map(fromRequestRow);
  }

  async updateRequest(
    id: string,
    expectedVersion: number,
    patch: Partial<AccessRequest>,
  ): Promise<AccessRequest | undefined> {
    const row = await this.#db
      .updateTable('warden_requests')
      .set({ ...toRequestRow(patch), version: expectedVersion + 1 })
      .where('id', '=', id)
      .where('version', '=', expectedVersion)
      .returningAll()
      .executeTakeFirst();
    return row ? fromRequestRow(row) : undefined;
  }

  async findDue(now: number, expiringWithinMs: number) {
    const timedOut = await this.#db
      .selectFrom('warden_requests')
      .selectAll()
      .where('state', '=', 'pending')
      .where('pending_until', '<=', now)
      .limit(1000)
      .execute();
    const expired = await this.#db
      .selectFrom('warden_requests')
      .selectAll()
      .where('state', '=', 'active')
      .where('expires_at', '<=', now)
      .limit(5000)
      .execute();
    const expiring = await this.#db
      .selectFrom('warden_requests')
      .selectAll()
      .where('state', '=', 'active')
      .where('expires_at', '>', now)
      .where('expires_at', '<=', now + expiringWithinMs)
      .where('expiring_notified_at', 'is', null)
      .limit(1000)
      .execute();
    // A reminder goes out once, half-way through the pending time.
    const remind = await this.#db
      .selectFrom('warden_requests')
      .selectAll()
      .where('state', '=', 'pending')
      .where('reminded_at', 'is', null)
      .where(sql<boolean>`created_at + (pending_until - created_at) / 2 <= ${now}`)
      .limit(1000)
      .execute();
    return {
      timedOut: timedOut.map(fromRequestRow),
      expired: expired.map(fromRequestRow),
      expiring: expiring.map(fromRequestRow),
      remind: remind.map(fromRequestRow),
    };
  }

  async insertApproval(approval: Approval): Promise<boolean> {
    const result = await this.#db
      .insertInto('warden_approvals')
      .values({
        request_id: approval.requestId,
        approver: approval.approver,
        verdict: approval.verdict,
        reason: approval.reason,
        at: approval.at,
      })
      .onConflict((oc) => oc.columns(['request_id', 'approver']).doNothing())
      .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0) === 1;
  }

  async listApprovals(requestId: string): Promise<Approval[]> {
    const rows = await this.#db
      .selectFrom('warden_approvals')
      .selectAll()
      .where('request_id', '=', requestId)
      .orderBy('at')
      .execute();
    return rows.map((r) => ({
      requestId: r.request_id,
      approver: r.approver,
      verdict: r.verdict as Approval['verdict'],
      reason: r.reason,
      at: Number(r.at),
    }));
  }

  async insertCredential(credential: CredentialRecord): Promise<void> {
    await this.#db
      .insertInto('warden_credentials')
      .values(toCredentialRow(credential) as CredentialRow)
      .execute();
  }

  async getCredential(id: string): Promise<CredentialRecord | undefined> {
    const row = await this.#db
      .selectFrom('warden_credentials')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    return row ? fromCredentialRow(row) : undefined;
  }

  async listCredentials(filter: CredentialFilter): Promise<CredentialRecord[]> {
    let q = this.#db.selectFrom('warden_credentials').selectAll();
    if (filter.requestId) q = q.where('request_id', '=', filter.requestId);
    if (filter.requestIds) {
      if (filter.requestIds.length === 0) return [];
      q = q.where('request_id', 'in', [...filter.requestIds]);
    }
    if (filter.target) q = q.where('target', '=', filter.target);
    if (filter.states?.length) q = q.where('state', 'in', [...filter.states]);
    return (await q.orderBy('created_at').execute()).map(fromCredentialRow);
  }

  async updateCredential(id: string, patch: Partial<CredentialRecord>): Promise<void> {
    await this.#db
      .updateTable('warden_credentials')
      .set(toCredentialRow(patch))
      .where('id', '=', id)
      .execute();
  }

  async markCredentialsRevoked(ids: readonly string[], at: number): Promise<void> {
    for (let i = 0; i < ids.length; i += 500) {
      await this.#db
        .updateTable('warden_credentials')
        .set({ state: 'revoked', revoked_at: at, lease_owner: null, lease_until: null, last_error: null })
        .where('id', 'in', ids.slice(i, i + 500))
        .execute();
    }
  }

  async claimRevocations(
    ids: readonly string[],
    owner: string,
    now: number,
    leaseMs: number,
  ): Promise<CredentialRecord[]> {
    if (ids.length === 0) return [];
    const rows = await this.#db
      .updateTable('warden_credentials')
      .set({ state: 'revoking', lease_owner: owner, lease_until: now + leaseMs })
      .where('id', 'in', [...ids])
      .where('state', 'in', ['active', 'revoking'])
      .where((eb) =>
        eb.or([eb('lease_until', 'is', null), eb('lease_until', '<', now), eb('lease_owner', '=', owner)]),
      )
      .returningAll()
      .execute();
    return rows.map(fromCredentialRow);
  }

  async findRevocationsDue(now: number): Promise<CredentialRecord[]> {
    const rows = await this.#db
      .selectFrom('warden_credentials as c')
      .innerJoin('warden_requests as r', 'r.id', 'c.request_id')
      .selectAll('c')
      .where('c.state', 'in', ['active', 'revoking'])
      .where((eb) =>
        eb.or([
          eb('c.expires_at', '<=', now),
          eb('r.state', 'in', ['expired', 'revoked']),
          eb.and([eb('c.state', '=', 'revoking'), eb('c.lease_until', '<', now)]),
        ]),
      )
      .where((eb) => eb.or([eb('c.next_attempt_at', 'is', null), eb('c.next_attempt_at', '<=', now)]))
      .limit(5000)
      .execute();
    return rows.map(fromCredentialRow);
  }

  async appendAudit(entry: AuditInput): Promise<AuditEntry> {
    const [written] = await this.#db.transaction().execute(async (trx) => this.#appendAudit(trx, [entry]));
    return written!;
  }

  async appendAuditBatch(entries: readonly AuditInput[]): Promise<AuditEntry[]> {
    if (entries.length === 0) return [];
    return this.#db.transaction().execute(async (trx) => this.#appendAudit(trx, entries));
  }

  async #appendAudit(trx: Transaction<Tables>, entries: readonly AuditInput[]): Promise<AuditEntry[]> {
    if (this.kind === 'postgres') await sql`select pg_advisory_xact_lock(7467002)`.execute(trx);
    const last = await trx
      .selectFrom('warden_audit')
      .select(['seq', 'hash'])
      .orderBy('seq', 'desc')
      .limit(1)
      .executeTakeFirst();
    let seq = last ? Number(last.seq) : 0;
    let prevHash = last?.hash ?? GENESIS_HASH;
    const written: AuditEntry[] = [];
    for (const entry of entries) {
      seq++;
      const full: Omit<AuditEntry, 'hash'> = { ...entry, seq, prevHash };
      const hash = hashAuditEntry(full);
      written.push({ ...full, hash });
      prevHash = hash;
    }
    for (let i = 0; i < written.length; i += 200) {
      await trx
        .insertInto('warden_audit')
        .values(
          written.slice(i, i + 200).map((e) => ({
            seq: e.seq,
            at: e.at,
            actor: e.actor,
            action: e.action,
            subject: e.subject,
            data: JSON.stringify(e.data),
            prev_hash: e.prevHash,
            hash: e.hash,
          })),
        )
        .execute();
    }
    return written;
  }

  async readAudit(options: { afterSeq?: number; since?: number; limit?: number }): Promise<AuditEntry[]> {
    let q = this.#db.selectFrom('warden_audit').selectAll();
    if (options.afterSeq !== undefined) q = q.where('seq', '>', options.afterSeq);
    if (options.since !== undefined) q = q.where('at', '>=', options.since);
    const rows = await q
      .orderBy('seq')
      .limit(options.limit ?? 10_000)
      .execute();
    return rows.map(fromAuditRow);
  }

  async insertSshSession(session: SshSessionRecord): Promise<void> {
    await this.#db
      .insertInto('warden_sessions')
      .values({
        id: session.id,
        request_id: session.requestId,
        target: session.target,
        kind: session.kind,
        requester: session.requester,
        login: session.login,
        client: session.client,
        started_at: session.startedAt,
        ended_at: session.endedAt,
        end_reason: session.endReason,
        recording: session.recording,
        meta: JSON.stringify(session.meta),
      })
      .execute();
  }

  async finishSshSession(
    id: string,
    patch: Pick<SshSessionRecord, 'endedAt' | 'endReason' | 'recording' | 'meta'>,
  ): Promise<void> {
    await this.#db
      .updateTable('warden_sessions')
      .set({
        ended_at: patch.endedAt,
        end_reason: patch.endReason,
        recording: patch.recording,
        meta: JSON.stringify(patch.meta),
      })
      .where('id', '=', id)
      .execute();
  }

  async getSshSession(id: string): Promise<SshSessionRecord | undefined> {
    const row = await this.#db
      .selectFrom('warden_sessions')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    if (!row) return undefined;
    const session = fromSshSessionRow(row);
    // Recordings stored as asciicast text: before migration 4, whole in the row; before migration 7,
    // in pieces. Later ones are frames (readSshRecording).
    if (session.recording === null && session.endedAt !== null) {
      const chunks = await this.#db
        .selectFrom('warden_ssh_recording_chunks')
        .select('data')
        .where('session_id', '=', id)
        .orderBy('seq')
        .execute();
      if (chunks.length > 0) session.recording = chunks.map((c) => c.data).join('');
    }
    return session;
  }

  async appendSshRecording(id: string, seq: number, piece: Uint8Array): Promise<void> {
    await this.#db
      .insertInto('warden_ssh_recording_frames')
      // As a Buffer: node-postgres sends only Buffers as bytea (a bare Uint8Array would go as JSON).
      .values({ session_id: id, seq, data: Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength) })
      .execute();
  }

  async readSshRecording(id: string): Promise<Uint8Array[]> {
    const rows = await this.#db
      .selectFrom('warden_ssh_recording_frames')
      .select('data')
      .where('session_id', '=', id)
      .orderBy('seq')
      .execute();
    return rows.map((row) => row.data);
  }

  async listSshSessions(filter: { requestId?: string; limit?: number }): Promise<SshSessionRecord[]> {
    let q = this.#db
      .selectFrom('warden_sessions')
      .select([
        'id',
        'request_id',
        'target',
        'kind',
        'requester',
        'login',
        'client',
        'started_at',
        'ended_at',
        'end_reason',
        'meta',
      ]);
    if (filter.requestId) q = q.where('request_id', '=', filter.requestId);
    const rows = await q
      .orderBy('started_at', 'desc')
      .limit(Math.min(filter.limit ?? 100, 1000))
      .execute();
    return rows.map(fromSshSessionRow);
  }

  async insertReview(review: StatementReview): Promise<void> {
    await this.#db
      .insertInto('warden_reviews')
      .values(toReviewRow(review) as ReviewRow)
      .execute();
  }

  async getReview(id: string): Promise<StatementReview | undefined> {
    const row = await this.#db
      .selectFrom('warden_reviews')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    return row ? fromReviewRow(row) : undefined;
  }

  async listReviews(filter: ReviewFilter): Promise<StatementReview[]> {
    let q = this.#db.selectFrom('warden_reviews').selectAll();
    if (filter.grantId) q = q.where('grant_id', '=', filter.grantId);
    if (filter.states?.length) q = q.where('state', 'in', [...filter.states]);
    const rows = await q
      .orderBy('created_at', 'desc')
      .orderBy('id')
      .limit(Math.min(filter.limit ?? 100, 1000))
      .execute();
    return rows.map(fromReviewRow);
  }

  async updateReview(
    id: string,
    expectedVersion: number,
    patch: Partial<StatementReview>,
  ): Promise<StatementReview | undefined> {
    const row = await this.#db
      .updateTable('warden_reviews')
      .set({ ...toReviewRow(patch), version: expectedVersion + 1 })
      .where('id', '=', id)
      .where('version', '=', expectedVersion)
      .returningAll()
      .executeTakeFirst();
    return row ? fromReviewRow(row) : undefined;
  }

  async holdReviews(ids: readonly string[], at: number): Promise<void> {
    if (ids.length === 0) return;
    // Not a change of the review: no version bump, so it never races a decision's compare-and-set.
    await this.#db
      .updateTable('warden_reviews')
      .set({ held_at: at })
      .where('id', 'in', [...ids])
      .where('state', '=', 'pending')
      .execute();
  }

  async rememberOnce(key: string, expiresAt: number, now: number): Promise<boolean> {
    await this.#db.deleteFrom('warden_once').where('expires_at', '<', now).execute();
    const result = await this.#db
      .insertInto('warden_once')
      .values({ key, expires_at: expiresAt })
      .onConflict((oc) => oc.column('key').doNothing())
      .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0) === 1;
  }

  async saveProxyVerifier(record: ProxyVerifierRecord): Promise<void> {
    const row = {
      target: record.target,
      user_name: record.user,
      grant_id: record.grantId,
      verifier: record.verifier,
      created_at: record.createdAt,
    };
    await this.#db
      .insertInto('warden_proxy_verifiers')
      .values(row)
      .onConflict((oc) =>
        oc.columns(['target', 'user_name']).doUpdateSet({
          grant_id: row.grant_id,
          verifier: row.verifier,
          created_at: row.created_at,
        }),
      )
      .execute();
  }

  async listProxyVerifiers(): Promise<ProxyVerifierRecord[]> {
    const rows = await this.#db
      .selectFrom('warden_proxy_verifiers')
      .selectAll()
      .orderBy('created_at')
      .orderBy('user_name')
      .execute();
    return rows.map((row) => ({
      target: row.target,
      user: row.user_name,
      grantId: row.grant_id,
      verifier: row.verifier,
      createdAt: num(row.created_at),
    }));
  }

  async deleteProxyVerifiers(grantId: string): Promise<void> {
    await this.#db.deleteFrom('warden_proxy_verifiers').where('grant_id', '=', grantId).execute();
  }

  async insertSession(session: SessionRecord): Promise<void> {
    await this.#db
      .insertInto('warden_pg_sessions')
      .values({
        id: session.id,
        protocol: session.protocol,
        grant_id: session.grantId,
        requester: session.requester,
        target: session.target,
        level: session.level,
        client_address: session.clientAddress,
        started_at: session.startedAt,
        ended_at: session.endedAt,
        end_reason: session.endReason,
        summary: JSON.stringify(session.summary),
      })
      .execute();
  }

  async endSession(
    id: string,
    end: { endedAt: number; endReason: string; summary: Record<string, unknown> },
  ): Promise<void> {
    await this.#db
      .updateTable('warden_pg_sessions')
      .set({ ended_at: end.endedAt, end_reason: end.endReason, summary: JSON.stringify(end.summary) })
      .where('id', '=', id)
      .execute();
  }

  async appendSessionEvents(events: readonly SessionEventRecord[]): Promise<void> {
    const bySession = new Map<string, SessionEventRecord[]>();
    for (const event of events) {
      const list = bySession.get(event.sessionId);
      if (list) list.push(event);
      else bySession.set(event.sessionId, [event]);
    }
    for (const [sessionId, list] of bySession) {
      await this.#db
        .insertInto('warden_pg_session_chunks')
        .values({
          session_id: sessionId,
          first_seq: list[0]!.seq,
          last_seq: list[list.length - 1]!.seq,
          at: list[0]!.at,
          events: JSON.stringify(list.map((e) => [e.seq, e.at, e.kind, e.data])),
        })
        .execute();
    }
  }

  async listSessions(filter: SessionFilter): Promise<SessionRecord[]> {
    let query = this.#db.selectFrom('warden_pg_sessions').selectAll();
    if (filter.target) query = query.where('target', '=', filter.target);
    if (filter.requester) query = query.where('requester', '=', filter.requester);
    if (filter.grantId) query = query.where('grant_id', '=', filter.grantId);
    const rows = await query
      .orderBy('started_at', 'desc')
      .limit(filter.limit ?? 100)
      .execute();
    return rows.map(fromSessionRow);
  }

  async getSession(id: string): Promise<SessionRecord | undefined> {
    const row = await this.#db
      .selectFrom('warden_pg_sessions')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    return row ? fromSessionRow(row) : undefined;
  }

  async listSessionEvents(sessionId: string): Promise<SessionEventRecord[]> {
    const rows = await this.#db
      .selectFrom('warden_pg_session_chunks')
      .select('events')
      .where('session_id', '=', sessionId)
      .orderBy('first_seq')
      .execute();
    return rows.flatMap((row) =>
      (JSON.parse(row.events) as [number, number, string, Record<string, unknown>][]).map(
        ([seq, at, kind, data]) => ({
          sessionId,
          seq,
          at,
          kind,
          data,
        }),
      ),
    );
  }

  /** Raw access for tests that tamper with the audit log on purpose. */
  get kysely(): Db {
    return this.#db;
  }
}

/** Options of {@link openEmbeddedStore}. */
export interface EmbeddedStoreOptions {
  /**
   * Runs the WAL checkpoints on a worker thread ({@link WalCheckpointer}), for long-running
   * processes that write a lot (`warden serve`, the proxies). Starting the worker costs tens of
   * ms at open and close, so short CLI commands keep SQLite's own checkpoints. Default false.
   */
  backgroundCheckpoints?: boolean;
  /** Told when the background checkpoints fail (the store then checkpoints inline). */
  onCheckpointError?(error: unknown): void;
}

/** Opens the embedded store: a SQLite file (WAL). */
export function openEmbeddedStore(path: string, options: EmbeddedStoreOptions = {}): SqlStore {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const database = new Database(path);
  database.pragma('journal_mode = WAL');
  // NORMAL in WAL mode survives a killed process (SIGKILL); only an OS crash may lose the last commits.
  database.pragma('synchronous = NORMAL');
  database.pragma('busy_timeout = 5000');
  // The WAL file shrinks back to this (bytes) when it restarts, after a burst such as a big recording.
  database.pragma(`journal_size_limit = ${64 * 1024 * 1024}`);
  const checkpointer =
    options.backgroundCheckpoints && path !== ':memory:'
      ? new WalCheckpointer(database, path, {
          ...(options.onCheckpointError ? { onError: options.onCheckpointError } : {}),
        })
      : undefined;
  const db = new Kysely<Tables>({ dialect: new SqliteDialect({ database }) });
  return new SqlStore('embedded', db, checkpointer && (() => checkpointer.stop()));
}

const INT8_OID = 20;

/** Opens the PostgreSQL store for replicated deployments. */
export function openPostgresStore(connectionString: string, poolSize = 10): SqlStore {
  const pool = new pg.Pool({
    connectionString,
    max: poolSize,
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        oid === INT8_OID
          ? (v: string) => Number(v)
          : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
    },
  });
  // An idle client losing its server must not crash the process; the next query reconnects.
  pool.on('error', () => {});
  return new SqlStore('postgres', new Kysely<Tables>({ dialect: new PostgresDialect({ pool }) }));
}
