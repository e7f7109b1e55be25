/**
 * Statements Warden itself runs on a session's own upstream connection (the guardrails' EXPLAIN
 * estimates, catalog and function lookups, reading the session's search_path back), with their
 * replies kept from the client. Pure: a job turns into the bytes to send and consumes the
 * server's replies; the relay puts it in its reply queue like a client message.
 *
 * Nothing here may change what the client's session sees:
 * - names are reserved (`warden_<token>_...`, never the unnamed statement or portal): a Close of
 *   the name comes first, so a statement left by a failed job cannot collide with the next;
 * - at a sync boundary the statements run sandboxed, always rolled back: outside a block in a
 *   read-only transaction of their own, inside one in a read-only savepoint that is rolled back
 *   and released whatever happens; a failed transaction runs nothing;
 * - inside a client's unfinished extended-protocol batch (no Sync yet) nothing can be wrapped
 *   (a Sync would end the client's implicit transaction): the statements are sent as
 *   Parse/Bind/Execute with a Flush, and a failure is the client's statement's failure (see the relay);
 * - every function and operator of Warden's own SQL is schema-qualified, so a session that put
 *   its own schema before pg_catalog cannot run code through them.
 */
import type { WriteEstimate } from '../guardrails/sql/index.ts';
import type { QualifiedName } from '../guardrails/sql/names.ts';
import { decodeCommandComplete, decodeDataRow, decodeErrorResponse } from './protocol/backend-parser.ts';
import { BackendCode, TransactionStatus } from './protocol/message-codes.ts';
import {
  encodeMessages,
  writeBind,
  writeClose,
  writeExecute,
  writeFlush,
  writeParse,
  writeQuery,
  writeSync,
} from './protocol/serializer.ts';

/** One statement of a job. */
export type InternalStep =
  /** A simple-protocol Query (one or more statements; each statement's result is kept). */
  | { readonly query: string }
  /** One statement through the extended protocol, with parameters as a client's Bind gave them. */
  | {
      readonly statement: string;
      readonly types?: readonly number[];
      readonly formats?: readonly number[];
      readonly values?: readonly (Buffer | null)[];
    }
  /** A Sync (ends the job's own batch). */
  | { readonly sync: true };

/** A statement's outcome: its result sets (rows as text), or why it has none. */
export interface StepResult {
  readonly sets: (string | null)[][][];
  error?: { readonly code: string; readonly message: string };
  /** The server skipped it (an earlier message of the batch failed). */
  skipped?: boolean;
}

/** What a job brought back. */
export interface JobOutcome {
  readonly steps: readonly StepResult[];
  /** The transaction status of the last ReadyForQuery the job received, if any. */
  readonly status?: TransactionStatus;
}

type Expect = 'query' | 'close' | 'parse' | 'bind' | 'execute' | 'sync';

/** The replies of a job's statements, as they are expected. */
interface Expectation {
  readonly kind: Expect;
  readonly step: number;
}

/** One job in the relay's reply queue (see the module comment). */
export class InternalJob {
  readonly bytes: Buffer;
  private readonly expected: Expectation[] = [];
  private next = 0;
  private readonly results: StepResult[];
  private current: (string | null)[][] | null = null;
  private status: TransactionStatus | undefined;
  private finished = false;

  /**
   * @param prefix reserved name prefix of this session (`warden_<token>`)
   * @param flush end with a Flush (inside a client's batch, where no Sync may be sent)
   */
  constructor(
    steps: readonly InternalStep[],
    prefix: string,
    flush: boolean,
    private readonly onDone: (outcome: JobOutcome) => void,
  ) {
    this.results = steps.map(() => ({ sets: [] }));
    this.bytes = encodeMessages((w) => {
      steps.forEach((step, index) => {
        if ('query' in step) {
          writeQuery(w, step.query);
          this.expected.push({ kind: 'query', step: index });
        } else if ('statement' in step) {
          const name = `${prefix}_s${index}`;
          writeClose(w, 'statement', name);
          writeParse(w, { name, sql: step.statement, parameterTypes: step.types ?? [] });
          writeBind(w, {
            portal: name,
            statement: name,
            parameterFormats: step.formats ?? [],
            parameters: step.values ?? [],
          });
          writeExecute(w, name);
          // Closing the statement closes its portal too.
          writeClose(w, 'statement', name);
          for (const kind of ['close', 'parse', 'bind', 'execute', 'close'] as const)
            this.expected.push({ kind, step: index });
        } else {
          writeSync(w);
          this.expected.push({ kind: 'sync', step: index });
        }
      });
      if (flush) writeFlush(w);
    });
  }

  /** True once every reply arrived (or none will). */
  get done(): boolean {
    return this.finished;
  }

  /** Consumes one server message addressed to this job; true when the job is complete. */
  feed(code: number, raw: Buffer): boolean {
    const expectation = this.expected[this.next];
    if (!expectation) return this.finish();
    const result = this.results[expectation.step]!;
    switch (code) {
      case BackendCode.RowDescription:
        this.current = [];
        return false;
      case BackendCode.DataRow:
        this.row(raw);
        return false;
      case BackendCode.CommandComplete:
      case BackendCode.EmptyQueryResponse:
      case BackendCode.PortalSuspended:
        if (code === BackendCode.CommandComplete) decodeCommandComplete(raw);
        result.sets.push(this.current ?? []);
        this.current = null;
        if (expectation.kind === 'execute') this.next++;
        return this.settleIfDone();
      case BackendCode.ParseComplete:
      case BackendCode.BindComplete:
      case BackendCode.CloseComplete:
        this.next++;
        return this.settleIfDone();
      case BackendCode.ErrorResponse: {
        const error = decodeErrorResponse(raw);
        result.error ??= { code: error.code, message: error.message };
        this.current = null;
        if (expectation.kind === 'query' || expectation.kind === 'sync') return false;
        // The server skips the rest of the batch: up to a Sync of ours, or to the client's.
        this.skipRest(this.next + 1);
        return this.settleIfDone();
      }
      case BackendCode.ReadyForQuery:
        this.status = raw[5] as TransactionStatus;
        this.next++;
        return this.settleIfDone();
      default:
        // NoticeResponse (EXPLAIN may warn), NoData: nothing to keep.
        return false;
    }
  }

  /** A run of whole DataRows `data[start, end)` for this job. */
  rows(data: Buffer, start: number, end: number): void {
    let at = start;
    while (at < end) {
      const length = data.readInt32BE(at + 1);
      this.row(data.subarray(at, at + 1 + length));
      at += 1 + length;
    }
  }

  /**
   * The server is skipping messages up to the next Sync (a client message before this job
   * failed). Returns true when the job ends the skip itself (it holds a Sync of its own) and
   * waits for that Sync's ReadyForQuery; false when the job is over.
   */
  skippedByServer(): boolean {
    const sync = this.expected.findIndex((e, i) => i >= this.next && e.kind === 'sync');
    this.skipRest(this.next);
    if (sync < 0) {
      this.finish();
      return false;
    }
    return true;
  }

  /** Ends the job without its replies (the session is closing). */
  abandon(): void {
    if (this.finished) return;
    this.skipRest(this.next);
    this.next = this.expected.length;
    this.finish();
  }

  private row(raw: Buffer): void {
    const values = decodeDataRow(raw).map((v) => (v === null ? null : v.toString('utf8')));
    this.current ??= [];
    this.current.push(values);
  }

  /** Marks the steps of expectations from `from` up to the next Sync as skipped. */
  private skipRest(from: number): void {
    let i = from;
    while (i < this.expected.length && this.expected[i]!.kind !== 'sync') {
      const result = this.results[this.expected[i]!.step]!;
      if (!result.error) result.skipped = true;
      i++;
    }
    this.next = i;
  }

  private settleIfDone(): boolean {
    return this.next >= this.expected.length ? this.finish() : false;
  }

  private finish(): boolean {
    if (!this.finished) {
      this.finished = true;
      this.onDone({ steps: this.results, ...(this.status !== undefined ? { status: this.status } : {}) });
    }
    return true;
  }
}

/**
 * The steps that run `statements` sandboxed at a sync boundary in transaction status `status`
 * (see the module comment), and the index of each statement's step. Undefined in a failed
 * transaction, where nothing runs. `savepoint` is the session's reserved savepoint name.
 */
export function sandboxSteps(
  statements: readonly InternalStep[],
  status: TransactionStatus,
  savepoint: string,
): { steps: InternalStep[]; at: number[] } | undefined {
  if (status === TransactionStatus.Failed) return undefined;
  const steps: InternalStep[] = [];
  const at: number[] = [];
  const inBlock = status === TransactionStatus.InTransaction;
  // Extended statements need a batch of their own inside the sandbox, closed by a Sync.
  const extended = statements.some((s) => 'statement' in s);
  // Never an implicit transaction that commits: planning may run the session's IMMUTABLE
  // functions (constant folding), and what they did that a read-only transaction allows
  // (set_config(..., false), pg_notify) would outlive it. The sandbox is always rolled back, in
  // steps of their own so that a failing statement cannot skip the ROLLBACK.
  steps.push({
    query: inBlock
      ? `SAVEPOINT ${savepoint}; SET LOCAL transaction_read_only = on`
      : 'BEGIN TRANSACTION READ ONLY',
  });
  for (const statement of statements) {
    at.push(steps.length);
    steps.push(statement);
  }
  if (extended) steps.push({ sync: true });
  // Sent whatever happened: a failure above leaves the block (or the savepoint) aborted.
  steps.push({
    query: inBlock ? `ROLLBACK TO SAVEPOINT ${savepoint}; RELEASE SAVEPOINT ${savepoint}` : 'ROLLBACK',
  });
  return { steps, at };
}

/**
 * The rows of the last `count` result sets of a step (the sandbox may run a statement of its own
 * first), or undefined when it failed, was skipped or returned fewer.
 */
export function lastSets(result: StepResult | undefined, count: number): (string | null)[][][] | undefined {
  if (!result || result.error || result.skipped || result.sets.length < count) return undefined;
  return result.sets.slice(result.sets.length - count);
}

// ------------------------------------------------------------------ SQL text

/** A string literal that reads the same whatever `standard_conforming_strings` says. */
export function quoteLiteral(text: string): string {
  return `E'${text.replace(/[\\']/g, (c) => `\\${c}`)}'`;
}

/** A quoted identifier. */
export function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** `"schema"."name"` (or `"name"`) for a name as a statement wrote it. */
export function quoteName(name: QualifiedName): string {
  return name.schema === undefined
    ? quoteIdentifier(name.name)
    : `${quoteIdentifier(name.schema)}.${quoteIdentifier(name.name)}`;
}

/** `ARRAY[E'a', ...]::pg_catalog.name[]`. */
export function nameArray(names: readonly string[]): string {
  return `ARRAY[${names.map(quoteLiteral).join(', ')}]::pg_catalog.name[]`;
}

// ------------------------------------------------------------------ estimates

/** What EXPLAIN is run with: the plan as JSON, with schemas (VERBOSE). Never ANALYZE. */
export const EXPLAIN_PREFIX = 'EXPLAIN (FORMAT JSON, VERBOSE) ';

/** The session's temporary schema, as the guardrails name it. */
function normaliseSchema(schema: string): string {
  return /^pg_temp_\d+$/.test(schema) ? 'pg_temp' : schema;
}

/**
 * The sizes of the relations `writes` name, resolved by the server as the write will resolve
 * them (`to_regclass`, the session's search_path): schema, name, `reltuples` (summed over the
 * leaves of a partitioned table). A view written through (a masking view first on the
 * search_path) adds the relations its query reads, since the plan's write node names the table
 * under the view.
 */
export function tableSizeSql(writes: readonly QualifiedName[]): string {
  const oids = writes.map((w) => `pg_catalog.to_regclass(${quoteLiteral(quoteName(w))})`).join(', ');
  return (
    `WITH w AS (SELECT pg_catalog.unnest(ARRAY[${oids}]::pg_catalog.oid[]) AS oid), ` +
    'rel AS (SELECT oid FROM w UNION SELECT d.refobjid FROM pg_catalog.pg_depend d ' +
    'JOIN pg_catalog.pg_rewrite r ON r.oid OPERATOR(pg_catalog.=) d.objid ' +
    "WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_rewrite'::pg_catalog.regclass " +
    "AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass " +
    'AND r.ev_class OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT oid FROM w))) ' +
    "SELECT n.nspname, c.relname, CASE WHEN c.relkind OPERATOR(pg_catalog.=) 'p' THEN " +
    '(SELECT pg_catalog.sum(l.reltuples) FROM pg_catalog.pg_partition_tree(c.oid) t ' +
    'JOIN pg_catalog.pg_class l ON l.oid OPERATOR(pg_catalog.=) t.relid WHERE t.isleaf ' +
    'AND l.reltuples OPERATOR(pg_catalog.>=) 0) ELSE c.reltuples END ' +
    'FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace ' +
    'WHERE c.oid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT oid FROM rel))'
  );
}

interface PlanNode {
  'Node Type'?: string;
  'Relation Name'?: string;
  Schema?: string;
  'Plan Rows'?: number;
  'Parent Relationship'?: string;
  Plans?: PlanNode[];
}

/**
 * The write nodes of an `EXPLAIN (FORMAT JSON, VERBOSE)` plan and the rows of `tableSizeSql`:
 * one estimate per ModifyTable node (writable CTEs and MERGE included), its rows being the rows
 * its input produces. Undefined when the plan cannot be read.
 */
export function readWriteEstimates(
  planJson: string | null | undefined,
  sizes: readonly (readonly (string | null)[])[] | undefined,
): WriteEstimate[] | undefined {
  if (!planJson) return undefined;
  let plans: unknown;
  try {
    plans = JSON.parse(planJson);
  } catch {
    return undefined;
  }
  if (!Array.isArray(plans)) return undefined;
  const tableRows = new Map<string, number>();
  for (const [schema, name, tuples] of sizes ?? []) {
    const value = Number(tuples);
    if (schema && name && tuples !== null && Number.isFinite(value) && value >= 0)
      tableRows.set(`${normaliseSchema(schema)}.${name}`, value);
  }
  const out: WriteEstimate[] = [];
  const visit = (node: PlanNode): void => {
    if (node['Node Type'] === 'ModifyTable' && node['Relation Name']) {
      const inputs = (node.Plans ?? []).filter((p) => p['Parent Relationship'] === 'Outer');
      const rows = Math.max(0, ...inputs.map((p) => Number(p['Plan Rows'] ?? 0)));
      const schema = node.Schema === undefined ? undefined : normaliseSchema(node.Schema);
      const relation = { ...(schema !== undefined ? { schema } : {}), name: node['Relation Name'] };
      const size = schema === undefined ? undefined : tableRows.get(`${schema}.${relation.name}`);
      out.push({ relation, rows, ...(size !== undefined ? { tableRows: size } : {}) });
    }
    for (const child of node.Plans ?? []) visit(child);
  };
  for (const entry of plans) {
    const plan = (entry as { Plan?: PlanNode }).Plan;
    if (!plan) return undefined;
    visit(plan);
  }
  return out;
}
