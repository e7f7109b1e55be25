import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { verifyAuditChain } from '../../../broker/audit/chain.ts';
import type { AuditEntry } from '../../../broker/model.ts';
import type { SqlStore } from '../../../broker/store/sql-store.ts';
import { openTestStore, type StoreKind } from '../../helpers/broker-fixture.ts';
import { type PgCluster, startPgCluster } from '../../helpers/pg-cluster.ts';

for (const kind of ['embedded', 'postgres'] as StoreKind[]) {
  describe(`audit chain on the ${kind} store`, () => {
    let cluster: PgCluster;
    let store: SqlStore;
    let cleanup: () => void;

    before(async () => {
      cluster = await startPgCluster();
      const opened = await openTestStore(kind, cluster);
      store = opened.store as SqlStore;
      cleanup = opened.cleanup;
    });
    after(async () => {
      await store.close();
      cleanup();
      await cluster.stop();
    });

    const fill = async () => {
      await sql`delete from warden_audit`.execute(store.kysely);
      await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          store.appendAudit({
            at: 1_000 + i,
            actor: 'alice',
            action: 'request.created',
            subject: `r${i}`,
            data: { n: i },
          }),
        ),
      );
      return store.readAudit({});
    };

    it('chains concurrent appends without gaps', async () => {
      const entries = await fill();
      assert.deepEqual(
        entries.map((e) => e.seq),
        Array.from({ length: 20 }, (_, i) => i + 1),
      );
      assert.equal(verifyAuditChain(entries).ok, true);
    });

    it('gives each concurrent append its own entry, and fails only the entry that cannot be written', async () => {
      await sql`delete from warden_audit`.execute(store.kysely);
      const appends = Array.from({ length: 30 }, (_, i) =>
        store.appendAudit({
          at: 2_000 + i,
          actor: 'bob',
          action: 'request.created',
          subject: `s${i}`,
          // One entry cannot be serialised: it must not take the others of its group down.
          data: i === 7 ? { n: BigInt(i) } : { n: i },
        }),
      );
      const settled = await Promise.allSettled(appends);
      assert.equal(settled[7]!.status, 'rejected');
      settled.forEach((result, i) => {
        if (i === 7) return;
        assert.equal(result.status, 'fulfilled', `append ${i}`);
        const entry = (result as PromiseFulfilledResult<AuditEntry>).value;
        assert.equal(entry.subject, `s${i}`);
        assert.deepEqual(entry.data, { n: i });
      });
      const entries = await store.readAudit({});
      assert.equal(entries.length, 29);
      assert.ok(!entries.some((e) => e.subject === 's7'));
      assert.equal(verifyAuditChain(entries).ok, true);
    });

    it('finds a changed entry', async () => {
      await fill();
      await sql`update warden_audit set data = '{"n":99}' where seq = 7`.execute(store.kysely);
      const result = verifyAuditChain(await store.readAudit({}));
      assert.deepEqual(result.problem, { kind: 'changed', seq: 7 });
    });

    it('finds a deleted entry', async () => {
      await fill();
      await sql`delete from warden_audit where seq = 5`.execute(store.kysely);
      assert.deepEqual(verifyAuditChain(await store.readAudit({})).problem, { kind: 'deleted', seq: 5 });
    });

    it('finds reordered entries even when their seq were swapped too', async () => {
      await fill();
      await sql`update warden_audit set seq = -1 where seq = 3`.execute(store.kysely);
      await sql`update warden_audit set seq = 3 where seq = 4`.execute(store.kysely);
      await sql`update warden_audit set seq = 4 where seq = -1`.execute(store.kysely);
      const result = verifyAuditChain(await store.readAudit({}));
      assert.equal(result.ok, false);
      assert.equal(result.problem!.seq, 3);
    });

    it('remembers one-time keys once', async () => {
      assert.equal(await store.rememberOnce('iss|jti-1', 10_000, 1_000), true);
      assert.equal(await store.rememberOnce('iss|jti-1', 10_000, 2_000), false);
      assert.equal(await store.rememberOnce('iss|jti-1', 30_000, 20_000), true, 'expired keys are forgotten');
    });
  });
}
