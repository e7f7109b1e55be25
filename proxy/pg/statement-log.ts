/**
 * The statement log of a proxied Postgres session: one timeline entry per statement, filled in as
 * its replies arrive (rows, error, masking counts by label, up to {@link MAX_RECORDED_ROWS} masked
 * rows under `record_rows`), and the session's counters. Nothing is kept unmasked: statement text
 * and parameters go through the session's masker, and are cut, before they are kept. No sockets or
 * timers: the relay says what happened, the log hands finished entries to the recorder.
 */
import type { Verdict } from '../guardrails/sql/index.ts';
import { addCounts, type MaskCounts, type Masker } from '../masking/index.ts';
import { DataRowLocator } from './protocol/backend-parser.ts';
import type { RowPlan } from './row-rewriter.ts';

/** Most statements awaiting their replies whose details are recorded. */
const MAX_PENDING = 100_000;
/** Recorded text is cut to this many characters. */
const MAX_RECORDED_SQL = 4_000;
const MAX_RECORDED_PARAMS = 32;
const MAX_RECORDED_PARAM = 200;
/** Masked result rows kept per statement when `recordRows` is on. */
export const MAX_RECORDED_ROWS = 100;

/** One statement's entry in the timeline, filled in as replies arrive. */
export interface StatementRecord {
  sql: string;
  params?: string[];
  startedAt: number;
  rows: number;
  error?: string;
  verdict?: { action: string; rule?: string };
  masked?: Record<string, number>;
  sample?: string[][];
  protocol: 'simple' | 'extended' | 'function';
  /** The outcome of its review, when a rule held it. */
  review?: Record<string, unknown>;
  /** How long Warden held it for its own reads and estimates before deciding, in ms. */
  heldMs?: number;
}

/** Session counters for the recording's summary. */
export interface RelayStats {
  statements: number;
  blocked: number;
  errors: number;
  rows: number;
  masked: Record<string, number>;
}

/** Receives finished timeline entries; `at` is when the entry finished. */
export type RecordEntry = (kind: string, data: Record<string, unknown>, at: number) => void;

export function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

/** The statement log of one session (see the module comment). */
export class StatementLog {
  readonly stats: RelayStats = { statements: 0, blocked: 0, errors: 0, rows: 0, masked: {} };
  /** Plans with rule hits not yet added to the counts (added when the next entry is recorded). */
  readonly hitPlans: RowPlan[] = [];
  private readonly masker: Masker;
  private readonly clock: () => number;
  private readonly sink: RecordEntry;
  private readonly inFlight: () => number;
  private locator: DataRowLocator | null = null;

  /** `inFlight` tells how many statements await their replies (past a bound, details are dropped). */
  constructor(options: { masker: Masker; clock: () => number; record: RecordEntry; inFlight: () => number }) {
    this.masker = options.masker;
    this.clock = options.clock;
    this.sink = options.record;
    this.inFlight = options.inFlight;
  }

  /** A statement's text as recorded: masked, and cut to {@link MAX_RECORDED_SQL}. */
  recordedSql(sql: string): string {
    return this.masker.maskValue(truncate(sql, MAX_RECORDED_SQL)).text;
  }

  /** Bind parameters as recorded: masked text, `NULL`, or the size of a binary value. */
  maskParams(values: readonly (Buffer | null)[], formats: readonly number[]): string[] {
    const out: string[] = [];
    const count = Math.min(values.length, MAX_RECORDED_PARAMS);
    for (let i = 0; i < count; i++) {
      const value = values[i];
      const format = formats.length === 0 ? 0 : formats.length === 1 ? formats[0] : formats[i];
      if (value === null || value === undefined) out.push('NULL');
      else if (format === 1) out.push(`<binary ${value.length} bytes>`);
      else {
        const masked = this.masker.maskBuffer(
          value.length > MAX_RECORDED_PARAM ? value.subarray(0, MAX_RECORDED_PARAM) : value,
        );
        out.push(masked.buffer.toString('utf8'));
      }
    }
    return out;
  }

  /**
   * Counts a statement and opens its entry; undefined when too many await their replies (the
   * statement still runs and is counted). `recorded`: `sql` is already the recorded text.
   */
  start(
    sql: string,
    protocol: StatementRecord['protocol'],
    verdict: Verdict | undefined,
    recorded = false,
  ): StatementRecord | undefined {
    this.stats.statements++;
    if (this.inFlight() >= MAX_PENDING) return undefined;
    const text = recorded ? sql : this.recordedSql(sql);
    const stmt: StatementRecord = { sql: text, startedAt: this.clock(), rows: 0, protocol };
    if (verdict && verdict.action !== 'allow')
      stmt.verdict = { action: verdict.action, ...(verdict.rule ? { rule: verdict.rule } : {}) };
    return stmt;
  }

  /** Finishes a statement's entry (`blocked` when its verdict blocked it, else `statement`). */
  record(stmt: StatementRecord | undefined, outcome?: string): void {
    if (this.hitPlans.length > 0) this.flushHits(stmt);
    if (!stmt) return;
    const now = this.clock();
    const data: Record<string, unknown> = {
      sql: stmt.sql,
      protocol: stmt.protocol,
      ms: now - stmt.startedAt,
      rows: stmt.rows,
    };
    if (stmt.params) data.params = stmt.params;
    if (stmt.verdict) data.verdict = stmt.verdict;
    if (stmt.error) data.error = stmt.error;
    if (stmt.masked) data.masked = stmt.masked;
    if (stmt.review) data.review = stmt.review;
    if (stmt.heldMs !== undefined) data.held_ms = stmt.heldMs;
    if (stmt.sample) data.result = stmt.sample;
    if (outcome) data.outcome = outcome;
    this.sink(stmt.verdict?.action === 'block' ? 'blocked' : 'statement', data, now);
  }

  /** Records an entry that is not a statement's (an approved Parse held for review). */
  note(kind: string, data: Record<string, unknown>): void {
    this.sink(kind, data, this.clock());
  }

  /** Adds masking counts to the session's, and to `stmt`'s when the values belong to one. */
  count(counts: MaskCounts, stmt: StatementRecord | undefined): void {
    addCounts(this.stats.masked, counts);
    if (!stmt) return;
    if (!stmt.masked) stmt.masked = {};
    addCounts(stmt.masked, counts);
  }

  /** Keeps the masked values of a row as sent for the recording (`record_rows`); false once full. */
  sampleRow(stmt: StatementRecord, bytes: Buffer, start: number, end: number): boolean {
    if (!stmt.sample) stmt.sample = [];
    if (stmt.sample.length >= MAX_RECORDED_ROWS) return false;
    if (!this.locator) this.locator = new DataRowLocator();
    const locator = this.locator;
    const count = locator.locate(start === 0 && end === bytes.length ? bytes : bytes.subarray(start, end));
    const row: string[] = [];
    for (let i = 0; i < count; i++) {
      const value = locator.value(i);
      row.push(value === null ? 'NULL' : truncate(value.toString('utf8'), MAX_RECORDED_PARAM));
    }
    stmt.sample.push(row);
    return stmt.sample.length < MAX_RECORDED_ROWS;
  }

  /** Adds up the rule hits of the rows seen so far (to `stmt`, the statement they belong to). */
  private flushHits(stmt: StatementRecord | undefined): void {
    for (const plan of this.hitPlans) {
      const counts: Record<string, number> = {};
      for (let i = 0; i < plan.hits.length; i++) {
        const n = plan.hits[i]!;
        if (n === 0) continue;
        const label = plan.labels[i]!;
        counts[label] = (counts[label] ?? 0) + n;
        plan.hits[i] = 0;
      }
      plan.hitCount = 0;
      this.count(counts, stmt);
    }
    this.hitPlans.length = 0;
  }
}
