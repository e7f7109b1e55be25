/**
 * The audit log's hash chain. Each entry's hash covers its own fields and the previous entry's
 * hash, so changing, deleting or reordering an entry breaks every link after it.
 */
import { createHash } from 'node:crypto';
import type { AuditEntry } from '../model.ts';

export const GENESIS_HASH = '0'.repeat(64);

/** JSON with object keys sorted, so a hash does not depend on insertion order. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const keys = Object.keys(value as object)
    .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`).join(',')}}`;
}

/**
 * The hash of an entry: its fields and the previous entry's hash. `via` joined the hashed fields
 * with migration 9; entries without it (older ones) hash as they always did.
 */
export function hashAuditEntry(entry: Omit<AuditEntry, 'hash' | 'keyId' | 'sig'>): string {
  const fields: unknown[] = [
    entry.seq,
    entry.at,
    entry.actor,
    entry.action,
    entry.subject,
    entry.data,
    entry.prevHash,
  ];
  if (entry.via !== null && entry.via !== undefined) fields.push(entry.via);
  return createHash('sha256').update(canonicalJson(fields)).digest('hex');
}

export type AuditProblem =
  | { kind: 'changed'; seq: number }
  | { kind: 'deleted'; seq: number }
  | { kind: 'reordered'; seq: number };

/** Result of walking the chain. */
export interface AuditVerification {
  ok: boolean;
  checked: number;
  lastSeq: number;
  lastHash: string;
  problem?: AuditProblem;
}

/**
 * Walks entries in storage order (by seq) and reports the first one that was changed, deleted
 * or reordered. Resume a walk with `from` (the last seq and hash already verified).
 */
export function verifyAuditChain(
  entries: Iterable<AuditEntry>,
  from: { seq: number; hash: string } = { seq: 0, hash: GENESIS_HASH },
): AuditVerification {
  let prevSeq = from.seq;
  let prevHash = from.hash;
  let checked = 0;
  for (const entry of entries) {
    checked++;
    const recomputed = hashAuditEntry(entry);
    if (recomputed !== entry.hash) {
      return {
        ok: false,
        checked,
        lastSeq: prevSeq,
        lastHash: prevHash,
        problem: { kind: 'changed', seq: entry.seq },
      };
    }
    if (entry.prevHash !== prevHash) {
      // The entry is intact but does not follow its predecessor: something between them is gone
      // (a seq gap), or entries were swapped.
      const kind = entry.seq !== prevSeq + 1 ? 'deleted' : 'reordered';
      return {
        ok: false,
        checked,
        lastSeq: prevSeq,
        lastHash: prevHash,
        problem: { kind, seq: kind === 'deleted' ? prevSeq + 1 : entry.seq },
      };
    }
    if (entry.seq !== prevSeq + 1) {
      return {
        ok: false,
        checked,
        lastSeq: prevSeq,
        lastHash: prevHash,
        problem: { kind: 'reordered', seq: entry.seq },
      };
    }
    prevSeq = entry.seq;
    prevHash = entry.hash;
  }
  return { ok: true, checked, lastSeq: prevSeq, lastHash: prevHash };
}
