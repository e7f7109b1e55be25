/** The hash-chained audit log on SQL. */
import { type Selectable, sql, type Transaction } from 'kysely';
import { GENESIS_HASH, hashAuditEntry } from '../../audit/chain.ts';
import type { AuditSigner } from '../../audit/signing.ts';
import type { AuditEntry, AuditInput } from '../../model.ts';
import type { AuditStore, StoreKind } from '../store.ts';
import { type AuditRow, type Db, num, type Tables } from './tables.ts';

function fromAuditRow(row: Selectable<AuditRow>): AuditEntry {
  return {
    seq: num(row.seq),
    at: num(row.at),
    actor: row.actor,
    action: row.action,
    subject: row.subject,
    data: JSON.parse(row.data),
    via: row.via ?? null,
    prevHash: row.prev_hash,
    hash: row.hash,
    keyId: row.key_id ?? null,
    sig: row.sig ?? null,
  };
}

/**
 * Appends entries after the last one, chaining each to the hash of the one before, and signs the
 * last one's hash when a signer is set (it covers the others through the chain). On PostgreSQL an
 * advisory lock serialises appends across replicas; SQLite serialises writers.
 */
async function appendAuditEntries(
  trx: Transaction<Tables>,
  kind: StoreKind,
  entries: readonly AuditInput[],
  signer: AuditSigner | undefined,
): Promise<AuditEntry[]> {
  if (kind === 'postgres') await sql`select pg_advisory_xact_lock(7467002)`.execute(trx);
  const last = await trx
    .selectFrom('warden_audit')
    .select(['seq', 'hash'])
    .orderBy('seq', 'desc')
    .limit(1)
    .executeTakeFirst();
  let seq = last ? Number(last.seq) : 0;
  let prevHash = last?.hash ?? GENESIS_HASH;
  const written: AuditEntry[] = [];
  for (const entry of entries) {
    seq++;
    const full = { ...entry, via: entry.via ?? null, seq, prevHash };
    const hash = hashAuditEntry(full);
    written.push({ ...full, hash, keyId: null, sig: null });
    prevHash = hash;
  }
  const head = written[written.length - 1];
  if (head && signer) {
    head.keyId = signer.keyId;
    head.sig = signer.signEntry(head.hash);
  }
  for (let i = 0; i < written.length; i += 200) {
    await trx
      .insertInto('warden_audit')
      .values(
        written.slice(i, i + 200).map((e) => ({
          seq: e.seq,
          at: e.at,
          actor: e.actor,
          action: e.action,
          subject: e.subject,
          data: JSON.stringify(e.data),
          via: e.via,
          prev_hash: e.prevHash,
          hash: e.hash,
          key_id: e.keyId,
          sig: e.sig,
        })),
      )
      .execute();
  }
  return written;
}

/** The audit queries; `signer` signs the head of every append (see `broker/audit/signing.ts`). */
export function createAuditQueries(db: Db, kind: StoreKind, signer?: AuditSigner): AuditStore {
  return {
    async appendAudit(entry: AuditInput): Promise<AuditEntry> {
      const [written] = await db
        .transaction()
        .execute(async (trx) => appendAuditEntries(trx, kind, [entry], signer));
      return written!;
    },

    async appendAuditBatch(entries: readonly AuditInput[]): Promise<AuditEntry[]> {
      if (entries.length === 0) return [];
      return db.transaction().execute(async (trx) => appendAuditEntries(trx, kind, entries, signer));
    },

    async readAudit(options: { afterSeq?: number; since?: number; limit?: number }): Promise<AuditEntry[]> {
      let q = db.selectFrom('warden_audit').selectAll();
      if (options.afterSeq !== undefined) q = q.where('seq', '>', options.afterSeq);
      if (options.since !== undefined) q = q.where('at', '>=', options.since);
      const rows = await q
        .orderBy('seq')
        .limit(options.limit ?? 10_000)
        .execute();
      return rows.map(fromAuditRow);
    },

    async readAuditHead(): Promise<AuditEntry | undefined> {
      const row = await db
        .selectFrom('warden_audit')
        .selectAll()
        .orderBy('seq', 'desc')
        .limit(1)
        .executeTakeFirst();
      return row ? fromAuditRow(row) : undefined;
    },
  };
}
