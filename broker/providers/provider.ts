import type { Secret } from '../config/secrets.ts';
import type { IssuedCredential } from '../events/events.ts';
import type { AccessRequest, CredentialRecord } from '../model.ts';

/** What a provider minted: a handle to store (never secret) and the credential for the requester. */
export interface MintResult {
  handle: string;
  credential: IssuedCredential;
}

/**
 * Mints and removes credentials on one kind of target. Implementations must be idempotent:
 * revoking a credential that is already gone succeeds.
 */
export interface CredentialProvider {
  readonly name: string;
  mint(grant: AccessRequest, expiresAt: number): Promise<MintResult>;
  /** Moves the credential's expiry (extension). */
  extend(credential: CredentialRecord, expiresAt: number): Promise<void>;
  /** Revokes several credentials of this provider's target at once (fast mass expiry). Returns per-id errors. */
  revoke(credentials: readonly CredentialRecord[]): Promise<Map<string, Error>>;
  /** Handles of credentials that exist on the target and look like Warden's (for reconciliation). */
  listManaged(): Promise<string[]>;
  /** Removes a credential known only by its handle (a leftover found by reconciliation). */
  removeOrphan(handle: string): Promise<void>;
  /**
   * Gives a minted login a fresh random password and returns it (optional: providers whose
   * credentials have passwords). The recording proxy calls it at start-up for its live grants,
   * whose minted passwords were only ever kept in memory.
   */
  resetPassword?(handle: string): Promise<Secret>;
  /** Checks the admin connection can do its job (doctor). */
  check(): Promise<void>;
  close(): Promise<void>;
}
