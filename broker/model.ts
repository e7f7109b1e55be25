/** The broker's domain records, as stored and as returned by its API. */
import type { PolicyDecision } from './policy/evaluate.ts';

/**
 * pending → approved → active → revoking → expired | revoked; pending → denied | cancelled | timed_out.
 * `failed`: approved but the credential could not be minted (the reason is in `error`).
 *
 * A grant leaves `active` the moment it expires or is revoked: from then on nothing treats it as
 * live (new logins are refused and its sessions are cut at once). It shows `revoking` while its
 * credentials are being removed and `revocation_failed` after an attempt failed (Warden keeps
 * retrying, the reason is in `error`); it reaches `expired` or `revoked` (its `endState`) only
 * once every credential it minted is gone from its target.
 */
export type RequestState =
  | 'pending'
  | 'approved'
  | 'active'
  | 'revoking'
  | 'revocation_failed'
  | 'expired'
  | 'revoked'
  | 'denied'
  | 'cancelled'
  | 'timed_out'
  | 'failed';

/** States after which a request never changes again. */
export const TERMINAL_STATES: readonly RequestState[] = [
  'expired',
  'revoked',
  'denied',
  'cancelled',
  'timed_out',
  'failed',
];

/** A grant whose access has ended and whose credentials are still being removed. */
export const ENDING_STATES: readonly RequestState[] = ['revoking', 'revocation_failed'];

export type RequestSource = 'chat' | 'cli' | 'api' | 'ci';

/** A request for access; once approved it is also the grant. */
export interface AccessRequest {
  id: string;
  /** `extension`: asks to lengthen the grant `parentId`; it never mints anything itself. */
  kind: 'access' | 'extension';
  parentId: string | null;
  requester: string;
  target: string;
  level: string;
  durationMs: number;
  reason: string;
  state: RequestState;
  rule: string;
  decision: PolicyDecision;
  breakGlass: boolean;
  source: RequestSource;
  createdAt: number;
  pendingUntil: number;
  decidedAt: number | null;
  activatedAt: number | null;
  expiresAt: number | null;
  endedAt: number | null;
  endReason: string | null;
  endedBy: string | null;
  /**
   * What an ended grant becomes once its credentials are gone (`expired` or `revoked`); set when
   * it leaves `active`, `null` before.
   */
  endState: 'expired' | 'revoked' | null;
  remindedAt: number | null;
  expiringNotifiedAt: number | null;
  error: string | null;
  /** Bumped on every change: updates are compare-and-set on it. */
  version: number;
  /** Caller facts kept with the request (chat thread ids, CI run id, ...). Never secrets. */
  meta: Record<string, unknown>;
}

export interface Approval {
  requestId: string;
  approver: string;
  verdict: 'approve' | 'deny';
  reason: string | null;
  at: number;
}

/**
 * `minting`: recorded before the provider creates it (so a credential that exists on a target is
 * always in the store); `active` once created; `revoking` while (or until) it is removed;
 * `revoked` once gone; `failed`: the provider did not create it.
 */
export type CredentialState = 'minting' | 'active' | 'revoking' | 'revoked' | 'failed';

/** What a grant minted on a target: a role name, a certificate serial, a lease id. Never the secret. */
export interface CredentialRecord {
  id: string;
  requestId: string;
  target: string;
  provider: string;
  handle: string;
  state: CredentialState;
  createdAt: number;
  expiresAt: number;
  revokedAt: number | null;
  attempts: number;
  nextAttemptAt: number | null;
  lastError: string | null;
  leaseOwner: string | null;
  leaseUntil: number | null;
}

/** One entry of the hash-chained audit log (see `broker/audit/` and docs/audit.md). */
export interface AuditEntry {
  seq: number;
  at: number;
  /** The person (or CI job, or `warden`) the entry is about: who acted, or was acted for. */
  actor: string;
  action: string;
  subject: string;
  data: Record<string, unknown>;
  /**
   * What made the call: `token:<name>` (an API token, by its configured name), `chat:slack`,
   * `proxy:ssh`, `session:<id>`, `oidc:<issuer>`, `warden` (Warden itself), ... `null` on entries
   * written before migration 9.
   */
  via: string | null;
  prevHash: string;
  hash: string;
  /** The audit key that signed this entry's hash (the last entry of each append), or `null`. */
  keyId: string | null;
  /** Base64 Ed25519 signature over the hash, or `null` (see `broker/audit/signing.ts`). */
  sig: string | null;
}

/** What a writer gives; the store adds the position, the chain and the signature. */
export type AuditInput = Omit<AuditEntry, 'seq' | 'prevHash' | 'hash' | 'via' | 'keyId' | 'sig'> & {
  via?: string | null | undefined;
};

/** pending → approved | denied | expired (timed out, withdrawn by the proxy, or the grant ended). */
export type ReviewState = 'pending' | 'approved' | 'denied' | 'expired';

/**
 * A statement the proxy holds until an approver of the grant's level decides on it. The text is
 * the statement as recorded: masked by the proxy before it left the proxy, never the raw SQL.
 */
export interface StatementReview {
  id: string;
  grantId: string;
  requester: string;
  target: string;
  level: string;
  /** The proxied session holding the statement. */
  sessionId: string;
  /** Masked and cut by the proxy. */
  statement: string;
  /** The guardrail rule that asked for review. */
  rule: string;
  /** Why the rule asks for review (its message), for the approver. */
  message: string;
  state: ReviewState;
  createdAt: number;
  /** Past it a pending review expires. */
  deadline: number;
  decidedAt: number | null;
  /** The approver, or `warden` for expiry and withdrawal. */
  decidedBy: string | null;
  decisionReason: string | null;
  /** Bumped on every change: updates are compare-and-set on it. */
  version: number;
  /** Caller facts (chat message ids). Never secrets. */
  meta: Record<string, unknown>;
  /**
   * When the Warden process holding the statement last said it still waits (about every second);
   * `null` for reviews stored before migration 8. A stale one means the statement died with it.
   */
  heldAt: number | null;
}
