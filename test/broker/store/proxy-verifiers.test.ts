/** Proxy password verifiers in both stores (migration 4): save, replace, list, delete by grant. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openTestStore, type StoreKind } from '../../helpers/broker-fixture.ts';
import { type PgCluster, startPgCluster } from '../../helpers/pg-cluster.ts';

describe('proxy verifiers in the store', () => {
  let cluster: PgCluster;
  before(async () => {
    cluster = await startPgCluster();
  });
  after(async () => {
    await cluster?.stop();
  });

  for (const kind of ['embedded', 'postgres'] as StoreKind[]) {
    it(`${kind}: saves, replaces, lists oldest first and deletes by grant`, async () => {
      const { store, cleanup } = await openTestStore(kind, cluster);
      try {
        await store.migrate();
        const record = {
          target: 'db',
          user: 'warden_b',
          grantId: 'g2',
          verifier: 'SCRAM-SHA-256$x',
          createdAt: 2,
        };
        await store.saveProxyVerifier(record);
        await store.saveProxyVerifier({ ...record, user: 'warden_a', grantId: 'g1', createdAt: 1 });
        await store.saveProxyVerifier({
          ...record,
          target: 'other',
          user: 'warden_a',
          grantId: 'g3',
          createdAt: 3,
        });
        await store.saveProxyVerifier({ ...record, verifier: 'SCRAM-SHA-256$y' });
        assert.deepEqual(await store.listProxyVerifiers(), [
          { target: 'db', user: 'warden_a', grantId: 'g1', verifier: 'SCRAM-SHA-256$x', createdAt: 1 },
          { target: 'db', user: 'warden_b', grantId: 'g2', verifier: 'SCRAM-SHA-256$y', createdAt: 2 },
          { target: 'other', user: 'warden_a', grantId: 'g3', verifier: 'SCRAM-SHA-256$x', createdAt: 3 },
        ]);
        await store.deleteProxyVerifiers('g1');
        await store.deleteProxyVerifiers('g1');
        await store.deleteProxyVerifiers('nothing');
        assert.deepEqual(
          (await store.listProxyVerifiers()).map((r) => r.grantId),
          ['g2', 'g3'],
        );
      } finally {
        await store.close();
        cleanup();
      }
    });
  }
});
