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

/** Most entries one group commit writes. */
const MAX_GROUP = 500;

type Waiting = { entry: AuditInput; resolve: (e: AuditEntry) => void; reject: (error: unknown) => void };

/**
 * Single appends that arrive while one is being written go into the next transaction together (a
 * group commit). The chain is one sequence, so appends serialise on its head whatever we do; this
 * way fifty concurrent appends cost two transactions, one lock and one connection, not fifty
 * transactions each holding a pooled connection while it waits for the lock (which starved every
 * other query of the store). Each caller still resolves only once its entry is committed. When a
 * group fails, its entries are written one by one, so one bad entry fails only its own append.
 */
function groupCommit(write: (entries: readonly AuditInput[]) => Promise<AuditEntry[]>) {
  const queue: Waiting[] = [];
  let writing = false;
  const settle = async (group: Waiting[]) => {
    try {
      const written = await write(group.map((w) => w.entry));
      for (const [i, w] of group.entries()) w.resolve(written[i]!);
    } catch (error) {
      if (group.length === 1) group[0]!.reject(error);
      else for (const w of group) await settle([w]);
    }
  };
  const drain = async () => {
    writing = true;
    try {
      while (queue.length > 0) await settle(queue.splice(0, MAX_GROUP));
    } finally {
      writing = false;
    }
  };
  return (entry: AuditInput) =>
    new Promise<AuditEntry>((resolve, reject) => {
      queue.push({ entry, resolve, reject });
      if (!writing) void drain();
    });
}

/** The audit queries; `signer` signs the head of every append (see `broker/audit/signing.ts`). */
export function createAuditQueries(db: Db, kind: StoreKind, signer?: AuditSigner): AuditStore {
  const appendBatch = (entries: readonly AuditInput[]) =>
    db.transaction().execute(async (trx) => appendAuditEntries(trx, kind, entries, signer));
  const append = groupCommit(appendBatch);
  return {
    appendAudit: append,

    async appendAuditBatch(entries: readonly AuditInput[]): Promise<AuditEntry[]> {
      if (entries.length === 0) return [];
      return appendBatch(entries);
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
