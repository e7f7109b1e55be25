/**
 * Verifies the whole audit log: the hash chain, the audit key's signatures on the entries, and
 * the checkpoints kept outside the store. What each check does and does not detect is written
 * down in docs/audit.md; the problems below are named after it.
 */
import type { AuditEntry } from '../model.ts';
import type { AuditStore } from '../store/store.ts';
import { GENESIS_HASH, verifyAuditChain } from './chain.ts';
import type { AuditCheckpoint } from './checkpoints.ts';
import type { AuditKeyring } from './signing.ts';

/** Entries read per page. A signature is checked at least once per page (see below). */
const PAGE = 5000;

/** Why the log is not what Warden wrote. */
export type AuditTamper =
  /** An entry's hash does not match its fields (changed without recomputing the chain). */
  | { kind: 'changed'; seq: number }
  /** An entry is missing between two intact ones. */
  | { kind: 'deleted'; seq: number }
  | { kind: 'reordered'; seq: number }
  /**
   * The chain is consistent but a signature over it fails: entries after `after` (the last entry
   * whose signature holds) up to `seq` were rewritten and the hashes recomputed.
   */
  | { kind: 'rewritten'; seq: number; after: number }
  /** A signature by a key the verifier does not trust. */
  | { kind: 'untrusted-key'; seq: number; key: string }
  /** Entries after `after` carry no signature although the log is keyed. */
  | { kind: 'unsigned'; seq: number; after: number }
  /** A checkpoint's hash differs from the entry at its seq: the log was rewritten up to there. */
  | { kind: 'checkpoint-mismatch'; seq: number; at: number }
  /** A checkpoint names an entry past the head: entries were removed from the end. */
  | { kind: 'truncated'; seq: number; head: number; at: number }
  /** A checkpoint whose signature fails: the checkpoint sink was written by someone else. */
  | { kind: 'checkpoint-forged'; seq: number; at: number }
  /** `--expect-head` does not match the head. */
  | { kind: 'head-mismatch'; seq: number; expected: string };

export interface AuditVerifyOptions {
  store: Pick<AuditStore, 'readAudit'>;
  /** Checks signatures; without it the chain is all that is checked (unkeyed). */
  keyring?: AuditKeyring | undefined;
  /** Signed heads from outside the store (checkpoint file, log). */
  checkpoints?: readonly AuditCheckpoint[];
  /** A head hash (or its prefix) recorded elsewhere. */
  expectHead?: string | undefined;
}

export interface AuditVerifyReport {
  ok: boolean;
  /** Entries walked. */
  checked: number;
  head: { seq: number; hash: string };
  problem?: AuditTamper;
  /** Signature facts: how many were checked, the last signed entry, whether the log is keyed. */
  signatures: { keyed: boolean; checked: number; lastSigned: number };
  /** Checkpoints compared with the log, and the newest one's seq. */
  checkpoints: { checked: number; newest: number | undefined };
  /** Facts that weaken what `ok` proves (unkeyed log, signatures not checked, ...). */
  warnings: string[];
}

/**
 * Walks the log page by page. Signatures: each one covers every entry before it, so checking the
 * last signed entry of a page proves the page (and all before it); only a failing page is searched
 * entry by entry for the first signature that fails. A signature in the middle of a good page is
 * not checked on its own (it proves nothing the later one does not).
 */
export async function verifyAuditLog(options: AuditVerifyOptions): Promise<AuditVerifyReport> {
  const { store, keyring } = options;
  const checkpoints = [...(options.checkpoints ?? [])].sort((a, b) => a.seq - b.seq);
  const warnings: string[] = [];
  let from = { seq: 0, hash: GENESIS_HASH };
  let checked = 0;
  let signaturesChecked = 0;
  let lastSigned = 0;
  let sawSignature = false;
  let nextCheckpoint = 0;
  const report = (problem?: AuditTamper): AuditVerifyReport => ({
    ok: problem === undefined,
    checked,
    head: from,
    ...(problem ? { problem } : {}),
    signatures: { keyed: keyring !== undefined, checked: signaturesChecked, lastSigned },
    checkpoints: { checked: nextCheckpoint, newest: checkpoints.at(-1)?.seq },
    warnings,
  });

  for (const cp of checkpoints) {
    if (keyring && !keyring.verifyCheckpoint(cp, cp.key, cp.sig)) {
      return report({ kind: 'checkpoint-forged', seq: cp.seq, at: cp.at });
    }
  }
  if (!keyring && checkpoints.length > 0) warnings.push('checkpoint signatures not checked: no audit key');

  for (;;) {
    const page = await store.readAudit({ afterSeq: from.seq, limit: PAGE });
    if (page.length === 0) break;
    const chain = verifyAuditChain(page, from);
    checked += chain.checked;
    if (!chain.ok) {
      from = { seq: chain.lastSeq, hash: chain.lastHash };
      return report(chain.problem);
    }
    const signed = page.filter((e) => e.sig !== null);
    if (signed.length > 0) sawSignature = true;
    if (keyring && signed.length > 0) {
      const problem = checkSignatures(signed, keyring, lastSigned, () => signaturesChecked++);
      if (problem) return report(problem);
      lastSigned = signed.at(-1)!.seq;
    }
    for (const entry of page) {
      while (nextCheckpoint < checkpoints.length && checkpoints[nextCheckpoint]!.seq === entry.seq) {
        const cp = checkpoints[nextCheckpoint]!;
        if (cp.hash !== entry.hash) return report({ kind: 'checkpoint-mismatch', seq: cp.seq, at: cp.at });
        nextCheckpoint++;
      }
    }
    from = { seq: chain.lastSeq, hash: chain.lastHash };
  }

  const beyond = checkpoints[nextCheckpoint];
  if (beyond) return report({ kind: 'truncated', seq: beyond.seq, head: from.seq, at: beyond.at });
  if (keyring && from.seq > lastSigned) {
    return report({ kind: 'unsigned', seq: lastSigned + 1, after: lastSigned });
  }
  if (options.expectHead && !from.hash.startsWith(options.expectHead)) {
    return report({ kind: 'head-mismatch', seq: from.seq, expected: options.expectHead });
  }
  if (!keyring && sawSignature)
    warnings.push('signatures not checked: no audit key (audit.signing_key or audit.public_keys)');
  if (!keyring && !sawSignature && from.seq > 0) {
    warnings.push(
      'unkeyed: no entry is signed, so anyone who can write the store could have rewritten it (configure audit.signing_key)',
    );
  }
  if (checkpoints.length === 0 && from.seq > 0) {
    warnings.push(
      'no checkpoint: entries removed from the end would go unnoticed (configure audit.checkpoints.file)',
    );
  }
  return report();
}

/** The first signature of `signed` (a page's signed entries, in order) that fails, if any. */
function checkSignatures(
  signed: readonly AuditEntry[],
  keyring: AuditKeyring,
  lastGood: number,
  count: () => void,
): AuditTamper | undefined {
  const fails = (e: AuditEntry): AuditTamper | undefined => {
    count();
    if (!keyring.keys.has(e.keyId ?? '')) return { kind: 'untrusted-key', seq: e.seq, key: String(e.keyId) };
    return keyring.verifyEntry(e.hash, e.keyId!, e.sig!)
      ? undefined
      : { kind: 'rewritten', seq: e.seq, after: lastGood };
  };
  if (!fails(signed.at(-1)!)) return undefined;
  let after = lastGood;
  for (const entry of signed) {
    const problem = fails(entry);
    if (problem) return problem.kind === 'rewritten' ? { ...problem, after } : problem;
    after = entry.seq;
  }
  return undefined;
}

/** One line for people: what was found and what it means. */
export function describeAuditTamper(problem: AuditTamper): string {
  switch (problem.kind) {
    case 'changed':
    case 'deleted':
    case 'reordered':
      return `entry ${problem.seq} was ${problem.kind}`;
    case 'rewritten':
      return `the signature on entry ${problem.seq} does not match: entries after ${problem.after} were rewritten (hashes recomputed)`;
    case 'untrusted-key':
      return `entry ${problem.seq} is signed by ${problem.key}, a key this verifier does not trust`;
    case 'unsigned':
      return `entries from ${problem.seq} on carry no signature (written without the audit key, or signatures stripped)`;
    case 'checkpoint-mismatch':
      return `entry ${problem.seq} differs from the checkpoint signed at ${new Date(problem.at).toISOString()}: the log was rewritten up to there`;
    case 'truncated':
      return `the log ends at ${problem.head} but a checkpoint signed at ${new Date(problem.at).toISOString()} saw entry ${problem.seq}: entries were removed from the end (or the store was replaced by an older copy)`;
    case 'checkpoint-forged':
      return `the checkpoint for entry ${problem.seq} (${new Date(problem.at).toISOString()}) has no valid signature: the checkpoint sink was written by someone else`;
    case 'head-mismatch':
      return `the head (seq ${problem.seq}) is not ${problem.expected}: entries were removed from the end`;
  }
}
