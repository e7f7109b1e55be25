/** The store's tables as Kysely sees them, and the conversions every aggregate shares. */
import type { Generated, Kysely } from 'kysely';

export interface RequestRow {
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
  end_state: string | null;
  reminded_at: number | null;
  expiring_notified_at: number | null;
  error: string | null;
  version: number;
  meta: string;
}

export interface ApprovalRow {
  request_id: string;
  approver: string;
  verdict: string;
  reason: string | null;
  at: number;
}

export interface CredentialRow {
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

export interface AuditRow {
  seq: number;
  at: number;
  actor: string;
  action: string;
  subject: string;
  data: string;
  prev_hash: string;
  hash: string;
  /** Migration 9: what made the call (`token:<name>`, `chat:slack`, ...). */
  via: string | null;
  /** Migration 9: the audit key id and signature over `hash` (last entry of each append). */
  key_id: string | null;
  sig: string | null;
}

/** A proxied session of any protocol (migration 9). */
export interface SessionRow {
  id: string;
  protocol: string;
  grant_id: string;
  requester: string;
  target: string;
  level: string;
  login: string;
  client_address: string;
  started_at: number;
  ended_at: number | null;
  end_reason: string | null;
  /** JSON object of counters and facts. */
  summary: string;
  /** Asciicast text of an SSH session recorded before migration 7 (frames since); else null. */
  recording: string | null;
}

/** A batch of a session's timeline: one row per write keeps recording cheap at high statement rates. */
export interface SessionEventsRow {
  session_id: string;
  first_seq: number;
  last_seq: number;
  at: number;
  /** JSON array of `[seq, at, kind, data]`. */
  events: string;
}

/** A piece of a session's recording: binary frames, written while the session runs. */
export interface SessionFramesRow {
  session_id: string;
  seq: number;
  data: Uint8Array;
}

export interface ProxyVerifierRow {
  target: string;
  user_name: string;
  grant_id: string;
  verifier: string;
  created_at: number;
}

export interface ReviewRow {
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

/** Which chat message shows a subject; `ref` is the adapter's own reference, opaque to Warden. */
export interface ChatMessageRow {
  chat: string;
  subject: string;
  subject_id: string;
  ref: string;
  created_at: number;
}

/** Migration 13: how to reach a chat user in a 1:1 conversation (Teams conversation references). */
export interface ChatConversationRow {
  chat: string;
  user_id: string;
  person_id: string;
  conversation_id: string;
  service_url: string;
  tenant_id: string;
  updated_at: number;
}

export interface Tables {
  warden_chat_messages: ChatMessageRow;
  warden_chat_conversations: ChatConversationRow;
  warden_reviews: ReviewRow;
  warden_sessions: SessionRow;
  warden_session_events: SessionEventsRow;
  warden_session_frames: SessionFramesRow;
  warden_requests: RequestRow;
  warden_approvals: ApprovalRow;
  warden_credentials: CredentialRow;
  warden_audit: AuditRow;
  warden_once: { key: string; expires_at: number };
  warden_proxy_verifiers: ProxyVerifierRow;
  warden_meta: { key: string; value: string };
  warden_dummy: { id: Generated<number> };
}

export const num = (v: unknown): number => (v === null || v === undefined ? (v as never) : Number(v));

export const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

export type Db = Kysely<Tables>;
