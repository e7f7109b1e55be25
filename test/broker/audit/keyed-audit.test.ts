/**
 * Issue 14, "The hash chain is unkeyed": someone who can write the store rewrites an entry,
 * recomputes the chain, and `verify` must still say TAMPERED. Each attack a store writer has is
 * played against the real store (SQLite and PostgreSQL): rewrite and recompute, strip the
 * signatures, sign with a key of their own, cut the end, swap in an older copy, forge a checkpoint.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { sql } from 'kysely';
import { hashAuditEntry } from '../../../broker/audit/chain.ts';
import {
  AuditCheckpointer,
  parseCheckpoints,
  readCheckpointFile,
} from '../../../broker/audit/checkpoints.ts';
import {
  type AuditSigner,
  createAuditKeyring,
  generateAuditKey,
  loadAuditSigner,
} from '../../../broker/audit/signing.ts';
import { verifyAuditLog } from '../../../broker/audit/verify.ts';
import { createLogger } from '../../../broker/log.ts';
import { openEmbeddedStore, openPostgresStore, type SqlStore } from '../../../broker/store/sql-store.ts';
import { LogCapture } from '../../helpers/broker-fixture.ts';
import { createDatabase, type PgCluster, startPgCluster } from '../../helpers/pg-cluster.ts';

const signer = loadAuditSigner(generateAuditKey().privateKey);
const keyring = createAuditKeyring([signer.publicKey]);

/** What a store writer without the key can do: rewrite `seq`'s data and recompute every hash after it. */
async function rewriteAndRecompute(
  store: SqlStore,
  seq: number,
  signatures: 'keep' | 'strip' | AuditSigner,
): Promise<void> {
  const entries = await store.readAudit({});
  let prevHash = entries.find((e) => e.seq === seq - 1)?.hash ?? '0'.repeat(64);
  for (const entry of entries.filter((e) => e.seq >= seq)) {
    const data = entry.seq === seq ? { ...entry.data, reason: 'nothing to see' } : entry.data;
    const hash = hashAuditEntry({ ...entry, data, prevHash });
    const sig =
      signatures === 'keep'
        ? { key_id: entry.keyId, sig: entry.sig }
        : signatures === 'strip'
          ? { key_id: null, sig: null }
          : entry.sig
            ? { key_id: signatures.keyId, sig: signatures.signEntry(hash) }
            : { key_id: null, sig: null };
    await store.kysely
      .updateTable('warden_audit')
      .set({ data: JSON.stringify(data), prev_hash: prevHash, hash, ...sig })
      .where('seq', '=', entry.seq)
      .execute();
    prevHash = hash;
  }
}

async function fill(store: SqlStore, n: number): Promise<void> {
  for (let i = 1; i <= n; i++) {
    await store.appendAudit({
      at: 1_000 + i,
      actor: 'alice',
      via: 'token:bot',
      action: 'grant.revoked',
      subject: `r${i}`,
      data: { reason: `reason ${i}` },
    });
  }
}

for (const kind of ['embedded', 'postgres'] as const) {
  describe(`the hash chain is unkeyed (fixed): a keyed audit log on the ${kind} store`, () => {
    let cluster: PgCluster;
    let dir: string;
    let store: SqlStore;
    let checkpointFile: string;
    let logs: LogCapture;
    let checkpointer: AuditCheckpointer;
    let n = 0;

    before(async () => {
      cluster = await startPgCluster();
    });
    after(async () => {
      await cluster.stop();
    });

    beforeEach(async () => {
      await store?.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
      dir = mkdtempSync(join(tmpdir(), 'warden-keyed-audit-'));
      store =
        kind === 'embedded'
          ? openEmbeddedStore(join(dir, 'warden.db'), { auditSigner: signer })
          : openPostgresStore(cluster.urlFor(await createDatabase(cluster, `audit${++n}`)), 4, {
              auditSigner: signer,
            });
      await store.migrate();
      checkpointFile = join(dir, 'checkpoints.jsonl');
      logs = new LogCapture();
      checkpointer = new AuditCheckpointer({
        store,
        signer,
        keyring,
        logger: createLogger({ level: 'info', destination: logs }),
        file: checkpointFile,
        log: true,
        everyMs: 60_000,
      });
      await fill(store, 30);
      assert.ok(await checkpointer.checkpoint(), 'a checkpoint of the head');
      await fill(store, 5);
    });
    after(async () => {
      await store?.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    const verify = async () =>
      verifyAuditLog({ store, keyring, checkpoints: readCheckpointFile(checkpointFile) });

    it('signs the head of every append and verifies intact, checkpoints matched', async () => {
      const entries = await store.readAudit({});
      assert.ok(
        entries.every((e) => e.keyId === signer.keyId && e.sig),
        'single appends are each signed',
      );
      const report = await verify();
      assert.equal(report.ok, true, JSON.stringify(report.problem));
      assert.equal(report.head.seq, 35);
      assert.equal(report.signatures.lastSigned, 35);
      assert.equal(report.checkpoints.checked, 1);
      assert.deepEqual(report.warnings, []);
    });

    it('a rewritten entry with the chain recomputed is caught by the signatures', async () => {
      await rewriteAndRecompute(store, 33, 'keep');
      const report = await verify();
      assert.equal(report.ok, false);
      assert.deepEqual(report.problem, { kind: 'rewritten', seq: 33, after: 32 });
    });

    it('a rewrite before the last checkpoint is caught by the checkpoint, even with every signature stripped', async () => {
      await rewriteAndRecompute(store, 7, 'strip');
      await store.kysely.updateTable('warden_audit').set({ key_id: null, sig: null }).execute();
      const report = await verify();
      assert.equal(report.ok, false);
      assert.equal(report.problem!.kind, 'checkpoint-mismatch');
      assert.equal(report.problem!.seq, 30);
    });

    it('stripped signatures on a rewritten tail read as unsigned, not as intact', async () => {
      await rewriteAndRecompute(store, 32, 'strip');
      const report = await verify();
      assert.deepEqual(report.problem, { kind: 'unsigned', seq: 32, after: 31 });
    });

    it('signatures made with a key of the attacker are refused', async () => {
      const attacker = loadAuditSigner(generateAuditKey().privateKey);
      await rewriteAndRecompute(store, 34, attacker);
      const report = await verify();
      assert.deepEqual(report.problem, { kind: 'untrusted-key', seq: 34, key: attacker.keyId });
    });

    it('entries removed from the end, past a checkpoint, are caught', async () => {
      await checkpointer.checkpoint();
      await sql`delete from warden_audit where seq > 31`.execute(store.kysely);
      const report = await verify();
      assert.equal(report.problem!.kind, 'truncated');
      assert.equal((report.problem as { head: number }).head, 31);
      assert.equal(report.problem!.seq, 35);
    });

    it('a forged checkpoint line is refused', async () => {
      const lines = readFileSync(checkpointFile, 'utf8').trim().split('\n');
      const forged = { ...JSON.parse(lines[0]!), seq: 20 };
      writeFileSync(checkpointFile, `${JSON.stringify(forged)}\n`);
      const report = await verify();
      assert.equal(report.problem!.kind, 'checkpoint-forged');
    });

    it('the checkpointer writes the file 0600, logs each checkpoint, and never vouches for unsigned entries', async () => {
      assert.equal(statSync(checkpointFile).mode & 0o777, 0o600);
      assert.ok(logs.lines.some((l) => JSON.parse(l).audit_checkpoint?.seq === 30));
      await store.kysely
        .updateTable('warden_audit')
        .set({ key_id: null, sig: null })
        .where('seq', '=', 35)
        .execute();
      assert.equal(await checkpointer.checkpoint(), undefined);
      assert.ok(logs.lines.some((l) => l.includes('no valid signature')));
      assert.equal(readCheckpointFile(checkpointFile).length, 1);
    });

    it('a checkpoint read back from the log works like the file', async () => {
      const report = await verifyAuditLog({
        store,
        keyring,
        checkpoints: parseCheckpoints(logs.lines.join('\n')),
      });
      assert.equal(report.ok, true);
      assert.equal(report.checkpoints.checked, 1);
    });
  });
}

describe('the hash chain is unkeyed (fixed): what verify says without a key', () => {
  it('an unkeyed log verifies but says what that does not prove', async () => {
    const store = openEmbeddedStore(':memory:');
    await store.migrate();
    await fill(store, 3);
    const report = await verifyAuditLog({ store });
    assert.equal(report.ok, true);
    assert.match(report.warnings.join('\n'), /unkeyed/);
    assert.match(report.warnings.join('\n'), /no checkpoint/);
    await store.close();
  });

  it('an older copy of the store swapped in is caught by a checkpoint taken after it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-keyed-audit-'));
    try {
      const path = join(dir, 'warden.db');
      const store = openEmbeddedStore(path, { auditSigner: signer });
      await store.migrate();
      await fill(store, 3);
      await store.close();
      copyFileSync(path, join(dir, 'old.db'));
      const again = openEmbeddedStore(path, { auditSigner: signer });
      await fill(again, 3);
      const checkpointer = new AuditCheckpointer({
        store: again,
        signer,
        keyring,
        logger: createLogger({ level: 'silent' }),
        file: join(dir, 'cp.jsonl'),
        log: false,
        everyMs: 60_000,
      });
      await checkpointer.checkpoint();
      await again.close();
      const old = openEmbeddedStore(join(dir, 'old.db'));
      const report = await verifyAuditLog({
        store: old,
        keyring,
        checkpoints: readCheckpointFile(join(dir, 'cp.jsonl')),
      });
      assert.equal(report.problem?.kind, 'truncated');
      await old.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the hash chain is unkeyed (fixed): signatures across pages', () => {
  it('a rewrite deep in a long log names the first failing signature after the last good one', async () => {
    const store = openEmbeddedStore(':memory:', { auditSigner: signer });
    await store.migrate();
    // Batches sign only their last entry: 12 batches of 1,000, signed at 1000, 2000, ... 12000.
    for (let b = 0; b < 12; b++) {
      await store.appendAuditBatch(
        Array.from({ length: 1000 }, (_, i) => ({
          at: b * 1000 + i,
          actor: 'warden',
          via: 'warden',
          action: 'grant.expired',
          subject: `r${b}-${i}`,
          data: { reason: 'expired' },
        })),
      );
    }
    const intact = await verifyAuditLog({ store, keyring });
    assert.equal(intact.ok, true);
    assert.equal(intact.signatures.lastSigned, 12_000);
    assert.ok(intact.signatures.checked <= 6, `checked ${intact.signatures.checked} signatures`);
    await rewriteAndRecompute(store, 7_123, 'keep');
    const report = await verifyAuditLog({ store, keyring });
    assert.deepEqual(report.problem, { kind: 'rewritten', seq: 8_000, after: 7_000 });
    await store.close();
  });
});
