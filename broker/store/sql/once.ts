/** One-time keys on SQL. */
import type { OnceStore } from '../store.ts';
import type { Db } from './tables.ts';

export function createOnceQueries(db: Db): OnceStore {
  return {
    async rememberOnce(key: string, expiresAt: number, now: number): Promise<boolean> {
      await db.deleteFrom('warden_once').where('expires_at', '<', now).execute();
      const result = await db
        .insertInto('warden_once')
        .values({ key, expires_at: expiresAt })
        .onConflict((oc) => oc.column('key').doNothing())
        .executeTakeFirst();
      return Number(result.numInsertedOrUpdatedRows ?? 0) === 1;
    },
  };
}
