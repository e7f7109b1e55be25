import type { Secret } from '../config/secrets.ts';
import type { AccessRequest, CredentialRecord } from '../model.ts';
import type { IssuedCredential } from './credential.ts';

/** What a provider minted: a handle to store (never secret) and the credential for the requester. */
export interface MintResult {
  handle: string;
  credential: IssuedCredential;
}

/** What one `revoke` call did: per credential id, its error, or the facts of its removal. */
export interface RevokeResult {
  failures: Map<string, Error>;
  /** For the audit entry of each removed credential (objects dropped, ...). Never secrets. */
  details: Map<string, Record<string, unknown>>;
}

/** One step of a provider's self-test (`warden doctor`). */
export interface SelfTestStep {
  step: string;
  ok: boolean;
  detail: string;
  /** What to run or change when the step failed. */
  fix?: string;
}

/**
 * Mints and removes credentials on one kind of target. Implementations must be idempotent:
 * revoking a credential that is already gone succeeds.
 */
export interface CredentialProvider {
  readonly name: string;
  /**
   * The handle `mint` will give this grant's credential, when it is known beforehand: the broker
   * records it in the store before minting, so nothing exists on a target that the store lacks.
   */
  planHandle?(grant: AccessRequest): string;
  mint(grant: AccessRequest, expiresAt: number): Promise<MintResult>;
  /** Moves the credential's expiry (extension). */
  extend(credential: CredentialRecord, expiresAt: number): Promise<void>;
  /** Revokes several credentials of this provider's target at once (fast mass expiry). */
  revoke(credentials: readonly CredentialRecord[]): Promise<RevokeResult>;
  /** Handles of credentials that exist on the target and carry Warden's mark (for reconciliation). */
  listManaged(): Promise<string[]>;
  /** Removes a credential known only by its handle (a leftover found by reconciliation). */
  removeOrphan(handle: string): Promise<void>;
  /**
   * Start-up reconciliation for providers whose leftovers cannot be listed by handle (Vault
   * leases, whose ids the target lists without the usernames): given the store's live credentials
   * of this target, removes what the target holds beyond them, and returns what it removed.
   */
  reconcile?(live: readonly CredentialRecord[]): Promise<string[]>;
  /**
   * Gives a minted credential (known by its record's handle) a fresh random password and returns it (optional: providers whose
   * credentials have passwords). The recording proxy calls it at start-up for its live grants,
   * whose minted passwords were only ever kept in memory.
   */
  resetPassword?(credential: CredentialRecord): Promise<Secret>;
  /**
   * Issues the live credential's secret afresh for its requester (`warden credential <id>`): the
   * secret handed over at activation stops working for new logins. Optional: a provider whose
   * credential cannot be handed over twice (an SSH key pair shown once) leaves it out, and the
   * collection is refused.
   */
  reissue?(credential: CredentialRecord, grant: AccessRequest): Promise<IssuedCredential>;
  /** Periodic upkeep (level privileges for tables created since); called by the broker's sweeper. */
  maintain?(): Promise<void>;
  /**
   * Refuses (`ERR_CONFIG_INVALID`) when the target cannot enforce the column masking its
   * configuration asks for (docs/masking.md); `warden serve` calls it before serving.
   */
  assertMaskingEnforced?(): Promise<void>;
  /** The state of the connection to the target (health endpoint, doctor). */
  health?(): TargetHealth;
  /** Checks the admin connection can do its job. */
  check(): Promise<void>;
  /** A full mint → login → revoke cycle on a scratch credential (`warden doctor`); leaves nothing behind. */
  selfTest?(): Promise<SelfTestStep[]>;
  close(): Promise<void>;
}

/** What a provider says about its target's reachability. */
export interface TargetHealth {
  ok: boolean;
  /** Since when (ms). */
  since: number;
  error?: string;
}
