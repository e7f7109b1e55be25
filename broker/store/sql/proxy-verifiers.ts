/** Proxy password verifiers on SQL. */
import type { ProxyVerifierRecord, ProxyVerifierStore } from '../store.ts';
import { type Db, num } from './tables.ts';

export function createProxyVerifierQueries(db: Db): ProxyVerifierStore {
  return {
    async saveProxyVerifier(record: ProxyVerifierRecord): Promise<void> {
      const row = {
        target: record.target,
        user_name: record.user,
        grant_id: record.grantId,
        verifier: record.verifier,
        created_at: record.createdAt,
      };
      await db
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
    },

    async listProxyVerifiers(): Promise<ProxyVerifierRecord[]> {
      const rows = await db
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
    },

    async deleteProxyVerifiers(grantId: string): Promise<void> {
      await db.deleteFrom('warden_proxy_verifiers').where('grant_id', '=', grantId).execute();
    },
  };
}
