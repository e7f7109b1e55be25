/**
 * Vault leases as Warden records them, and the lease calls both Vault providers share. A Vault
 * credential's handle is `<username>@<lease id>`: the lease id is what revocation and
 * reconciliation give Vault, the username what Warden's admin connection ends the sessions of.
 * Lease ids (`database/creds/<role>/<id>`) never hold `@`, so the last one splits them.
 */
import { VaultError } from '../../errors.ts';
import type { VaultClient } from '../../vault/client.ts';
import { badResponse } from '../../vault/client.ts';

/** `<username>@<lease id>`. */
export function formatLeaseHandle(username: string, leaseId: string): string {
  return `${username}@${leaseId}`;
}

/** The parts of a handle made by {@link formatLeaseHandle}; undefined for any other handle. */
export function parseLeaseHandle(handle: string): { username: string; leaseId: string } | undefined {
  const at = handle.lastIndexOf('@');
  if (at <= 0 || at === handle.length - 1) return undefined;
  return { username: handle.slice(0, at), leaseId: handle.slice(at + 1) };
}

/**
 * Renews a lease for `seconds` from now (`sys/leases/renew`); returns the TTL Vault granted,
 * which is less than asked when the role's `max_ttl` caps it.
 */
export async function renewLease(vault: VaultClient, leaseId: string, seconds: number): Promise<number> {
  const answer = await vault.write(
    'sys/leases/renew',
    { lease_id: leaseId, increment: seconds },
    `renewing lease ${leaseId}`,
  );
  if (typeof answer.lease_duration !== 'number' || answer.lease_duration < 0) {
    throw badResponse(vault.address, `renewing lease ${leaseId}`, 'without lease_duration');
  }
  return answer.lease_duration;
}

/** Revokes a lease (`sys/leases/revoke`); a lease Vault no longer knows counts as revoked. */
export async function revokeLease(vault: VaultClient, leaseId: string): Promise<void> {
  try {
    await vault.write('sys/leases/revoke', { lease_id: leaseId }, `revoking lease ${leaseId}`);
  } catch (error) {
    if (error instanceof VaultError && error.code === 'ERR_VAULT_NOT_FOUND') return;
    throw error;
  }
}

/** Seconds from `now` to `expiresAt`, rounded up (Vault's TTLs are whole seconds). */
export function secondsUntil(expiresAt: number, now: number): number {
  return Math.max(1, Math.ceil((expiresAt - now) / 1000));
}
