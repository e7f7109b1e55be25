/**
 * Result planning: what happens to each column of a result before the client sees it. A row
 * result is planned from its RowDescription, once per result shape per session: a column a rule
 * names is masked in its rule's style (nullified in binary format, which cannot be rewritten), a
 * column of a type that cannot hold what a detector looks for is skipped, every other text column
 * goes through the detectors. A result that needs nothing has no plan (it is passed through
 * untouched). A COPY TO result carries no RowDescription: it is planned from its statement (see
 * copy-masking.ts), and refused when it cannot be masked. Pure: fields and reports in, plans out.
 */
import { isAsciiSafeEncoding, type StatementReport } from '../guardrails/sql/index.ts';
import type { ColumnRule, Masker } from '../masking/index.ts';
import { remember } from './bounded-names.ts';
import type { Catalog } from './catalog.ts';
import { type CopyOutPlan, planCopyOut } from './copy-masking.ts';
import { rewriteForMaskingViews } from './masking-view-rewrite.ts';
import { decodeRowDescription, type FieldDescription } from './protocol/backend-parser.ts';
import { ColumnOp, type RowPlan } from './row-rewriter.ts';

/** What to do to each column of a result; null when no column needs anything (zero-copy). */
export type ResultPlan = RowPlan;

/** Most result shapes planned per session before the cache starts over. */
const MAX_PLANS = 256;
/**
 * Types whose text form cannot hold anything a built-in detector looks for (no `@` or letters,
 * at most 10 digits, no digit groups with separators: cards need 13 digits, SSNs and phone
 * numbers need separators): bool, int2, int4, oid, date, time, timestamp, timestamptz, interval,
 * timetz, uuid. Their values skip the content scan unless custom patterns are configured (a
 * pattern may match anything). Floats and int8 stay scanned (a card number fits in them).
 */
const UNSCANNED_TYPES: ReadonlySet<number> = new Set([
  16, 21, 23, 26, 1082, 1083, 1114, 1184, 1186, 1266, 2950,
]);
const NO_TYPES: ReadonlySet<number> = new Set();
/** Types whose binary form is their text (text, varchar, bpchar, name, json, unknown). */
const TEXT_TYPES = new Set([25, 1043, 1042, 19, 114, 705]);

const REDACTED = Buffer.from('[REDACTED]');

/** Used when a result's columns are unknown: every value goes through the detectors. */
export const FALLBACK_PLAN: ResultPlan = {
  ops: new Uint8Array(0),
  rules: [],
  constants: [],
  labels: [],
  hits: new Int32Array(0),
  hitCount: 0,
};

/** What the planning of a COPY TO decided. */
export type CopyPlanning =
  /** Not a COPY TO STDOUT: nothing to plan. */
  | undefined
  /** The plan (null: no column rule applies). */
  | { plan: CopyOutPlan | null }
  /** It cannot be masked: the statement is refused with this message. */
  | { refusal: string };

/** Plans the results of one session (see the module comment). */
export class ResultPlanner {
  /** Whether any content detector or pattern is on (else only column rules mask). */
  readonly detectorsOn: boolean;
  private readonly masker: Masker;
  private readonly catalog: Catalog | undefined;
  private readonly recordRows: boolean;
  private readonly onUnknownTable: (() => void) | undefined;
  private readonly unscannedTypes: ReadonlySet<number>;
  private readonly cache = new Map<string, ResultPlan | null>();
  private readonly maskedRelations = new Map<string, boolean>();
  private unknownTableReported = false;

  constructor(options: {
    masker: Masker;
    catalog: Catalog | undefined;
    /** Rows are sampled for the recording: every result gets a plan. */
    recordRows: boolean;
    /** Called once when a result names a table the catalog does not know. */
    onUnknownTable?: (() => void) | undefined;
  }) {
    this.masker = options.masker;
    this.catalog = options.catalog;
    this.recordRows = options.recordRows;
    this.onUnknownTable = options.onUnknownTable;
    const config = options.masker.config;
    this.detectorsOn = config.patterns.length > 0 || Object.values(config.detectors).some((s) => s !== null);
    this.unscannedTypes = config.patterns.length > 0 ? NO_TYPES : UNSCANNED_TYPES;
  }

  /** The plan of a query or portal result, by its RowDescription message (planned once per shape). */
  planRowDescription(raw: Buffer): ResultPlan | null {
    // Results of the same shape come back again and again: plan them once per session.
    const key = raw.toString('latin1');
    let plan = this.cache.get(key);
    if (plan === undefined) {
      const fields = decodeRowDescription(raw);
      plan = this.plan(
        fields,
        fields.map((f) => f.format),
      );
      if (this.cache.size >= MAX_PLANS) this.cache.clear();
      this.cache.set(key, plan);
    }
    return plan;
  }

  /** Decides per column: mask by rule, scan with detectors, nullify (binary masked) or skip. */
  plan(fields: readonly FieldDescription[], formats: readonly number[]): ResultPlan | null {
    const masker = this.masker;
    const catalog = this.catalog;
    let rules: (ColumnRule | null)[];
    if (masker.config.columns.length === 0) rules = fields.map(() => null);
    else {
      const tables = catalog?.tables ?? new Map();
      if (!this.unknownTableReported && fields.some((f) => f.tableOid !== 0 && !tables.has(f.tableOid)))
        this.reportUnknownTable();
      rules = masker.resolveColumns(
        tables,
        fields.map((f) => ({ tableOid: f.tableOid, attnum: f.columnAttribute, name: f.name })),
        catalog?.attributes ?? new Map(),
      );
    }
    let any = false;
    const ops = new Uint8Array(fields.length);
    for (let i = 0; i < fields.length; i++) {
      const field = fields[i]!;
      const format = formats.length === 0 ? 0 : formats.length === 1 ? formats[0] : formats[i];
      const binary = format === 1;
      const rule = rules[i];
      let op: ColumnOp;
      if (rule && rule.style !== 'none') {
        op = binary
          ? ColumnOp.Nullify
          : rule.style === 'redact'
            ? ColumnOp.Constant
            : rule.style === 'last4'
              ? ColumnOp.Last4
              : rule.style === 'hash'
                ? ColumnOp.Hash
                : ColumnOp.Rule;
      } else if (rule || !this.detectorsOn || this.unscannedTypes.has(field.typeOid)) op = ColumnOp.Skip;
      else op = binary && !TEXT_TYPES.has(field.typeOid) ? ColumnOp.Skip : ColumnOp.Scan;
      if (op !== ColumnOp.Skip) any = true;
      ops[i] = op;
    }
    if (!any && !this.recordRows) return null;
    return {
      ops,
      rules,
      constants: rules.map((rule) => (rule?.style === 'redact' ? REDACTED : null)),
      labels: rules.map((rule) => (rule && rule.style !== 'none' ? `column:${rule.match}` : null)),
      hits: new Int32Array(rules.length),
      hitCount: 0,
    };
  }

  /** The statement to send instead of `sql` so it reads a masking view (`masking-view-rewrite.ts`). */
  rewriteForMaskingViews(report: StatementReport, sql: string): string | undefined {
    return rewriteForMaskingViews(report, sql, this.catalog);
  }

  /**
   * Plans a checked statement's COPY TO STDOUT, in the session's `client_encoding` (see
   * {@link CopyPlanning}).
   */
  planCopy(report: StatementReport, clientEncoding: string): CopyPlanning {
    const copy = report.copy;
    if (!copy || copy.from || !copy.client) return undefined;
    if (!this.copiesMaskedColumns(report)) return { plan: null };
    if (!isAsciiSafeEncoding(clientEncoding)) {
      return {
        refusal: `COPY output in client_encoding ${clientEncoding} cannot be masked by column: use UTF8`,
      };
    }
    const plan = planCopyOut(copy, this.catalog, this.masker);
    if ('refusal' in plan) {
      if (plan.unknownTable) this.reportUnknownTable();
      return { refusal: plan.refusal };
    }
    return { plan };
  }

  private reportUnknownTable(): void {
    if (this.unknownTableReported) return;
    this.unknownTableReported = true;
    this.onUnknownTable?.();
  }

  /**
   * True when a COPY reads a table with a rule-masked column. A relation the catalog does not know
   * counts as masked (fail closed).
   */
  private copiesMaskedColumns(report: StatementReport): boolean {
    const rules = this.masker.config.columns;
    if (report.kind !== 'copy' || report.effects.includes('write') || rules.length === 0) return false;
    return report.relations.some((relation) => {
      let masked = this.maskedRelations.get(relation);
      if (masked === undefined) {
        masked = this.hasMaskedColumn(relation);
        remember(this.maskedRelations, relation, masked);
      }
      return masked;
    });
  }

  private hasMaskedColumn(relation: string): boolean {
    const catalog = this.catalog;
    const dot = relation.lastIndexOf('.');
    const schema = dot < 0 ? undefined : relation.slice(0, dot);
    const table = relation.slice(dot + 1);
    let known = false;
    for (const [oid, name] of catalog?.tables ?? []) {
      if (name.table !== table || (schema !== undefined && name.schema !== schema)) continue;
      known = true;
      const columns = [...(catalog!.attributes.get(oid)?.values() ?? [])];
      const masked = this.masker.resolveColumns(
        new Map([[oid, name]]),
        columns.map((column, i) => ({ tableOid: oid, attnum: i + 1, name: column })),
        new Map(),
      );
      if (masked.some((rule) => rule !== null && rule.style !== 'none')) return true;
    }
    return !known;
  }
}
