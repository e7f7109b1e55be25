/** Minted credentials and their revocation leases on SQL. */
import type { Selectable } from 'kysely';
import type { CredentialRecord } from '../../model.ts';
import type { CredentialFilter, CredentialStore } from '../store.ts';
import { type CredentialRow, type Db, num, numOrNull } from './tables.ts';

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

export function createCredentialQueries(db: Db): CredentialStore {
  return {
    async insertCredential(credential: CredentialRecord): Promise<void> {
      await db
        .insertInto('warden_credentials')
        .values(toCredentialRow(credential) as CredentialRow)
        .execute();
    },

    async getCredential(id: string): Promise<CredentialRecord | undefined> {
      const row = await db
        .selectFrom('warden_credentials')
        .selectAll()
        .where('id', '=', id)
        .executeTakeFirst();
      return row ? fromCredentialRow(row) : undefined;
    },

    async listCredentials(filter: CredentialFilter): Promise<CredentialRecord[]> {
      let q = db.selectFrom('warden_credentials').selectAll();
      if (filter.requestId) q = q.where('request_id', '=', filter.requestId);
      if (filter.requestIds) {
        if (filter.requestIds.length === 0) return [];
        q = q.where('request_id', 'in', [...filter.requestIds]);
      }
      if (filter.target) q = q.where('target', '=', filter.target);
      if (filter.handles) {
        if (filter.handles.length === 0) return [];
        q = q.where('handle', 'in', [...filter.handles]);
      }
      if (filter.states?.length) q = q.where('state', 'in', [...filter.states]);
      return (await q.orderBy('created_at').execute()).map(fromCredentialRow);
    },

    async updateCredential(id: string, patch: Partial<CredentialRecord>): Promise<void> {
      await db.updateTable('warden_credentials').set(toCredentialRow(patch)).where('id', '=', id).execute();
    },

    async markCredentialsRevoked(ids: readonly string[], at: number): Promise<void> {
      for (let i = 0; i < ids.length; i += 500) {
        await db
          .updateTable('warden_credentials')
          .set({ state: 'revoked', revoked_at: at, lease_owner: null, lease_until: null, last_error: null })
          .where('id', 'in', ids.slice(i, i + 500))
          .execute();
      }
    },

    async claimRevocations(
      ids: readonly string[],
      owner: string,
      now: number,
      leaseMs: number,
    ): Promise<CredentialRecord[]> {
      if (ids.length === 0) return [];
      const rows = await db
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
    },

    async findRevocationsDue(now: number): Promise<CredentialRecord[]> {
      const rows = await db
        .selectFrom('warden_credentials as c')
        .innerJoin('warden_requests as r', 'r.id', 'c.request_id')
        .selectAll('c')
        .where('c.state', 'in', ['active', 'revoking'])
        .where((eb) =>
          eb.or([
            eb('c.expires_at', '<=', now),
            eb('r.state', 'in', ['revoking', 'revocation_failed', 'expired', 'revoked']),
            eb.and([eb('c.state', '=', 'revoking'), eb('c.lease_until', '<', now)]),
          ]),
        )
        .where((eb) => eb.or([eb('c.next_attempt_at', 'is', null), eb('c.next_attempt_at', '<=', now)]))
        .limit(5000)
        .execute();
      return rows.map(fromCredentialRow);
    },
  };
}
