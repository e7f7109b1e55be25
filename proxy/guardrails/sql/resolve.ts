/**
 * Applies the session to cached, session-independent statement reports: what `EXECUTE` runs (the
 * session's prepared statements, and those prepared earlier in the same text), the bodies of the
 * functions a statement calls (when a {@link RoutineResolver} can read them), which relations are
 * the session's own temporary ones (dropping those is ordinary work), which filters keep every row
 * given the catalog's NOT NULL columns, and the `search_path` each statement of a text sees
 * (`SET search_path = payroll; SELECT * FROM salaries` resolves `salaries` in `payroll`).
 */
import type { Operation, StatementReport } from './classify.ts';
import { type SqlEffect, sortEffects } from './effects.ts';
import {
  candidateSchemas,
  DEFAULT_SEARCH_PATH,
  formatName,
  isSessionTemp,
  type NameScope,
  type QualifiedName,
  type RelationCatalog,
  type SearchPath,
} from './names.ts';

/** A routine's definition as `pg_proc` holds it. */
export interface RoutineBody {
  readonly schema: string;
  readonly name: string;
  /** `sql`, `plpgsql`, `c`, `internal`, ... */
  readonly language: string;
  /** `prosrc` (for new-style SQL bodies, the text of `pg_get_functiondef`'s body). */
  readonly body: string;
  readonly securityDefiner?: boolean;
}

/**
 * Reads the definitions a called function name may designate (every overload in every schema it
 * may resolve to: argument types are not known statically). Implemented by the relay (phase B)
 * over a cached `pg_proc` lookup; returns an empty list for unknown and built-in functions.
 */
export interface RoutineResolver {
  lookup(name: QualifiedName, schemas: readonly string[]): readonly RoutineBody[];
}

/**
 * The open transaction block, as far as the session's tracking needs it: what ROLLBACK returns
 * to, and the search_path plain `SET` gave (what COMMIT keeps when `SET LOCAL` changed the
 * current one). Absent outside a block.
 */
export interface TransactionState {
  readonly startPath: SearchPath;
  readonly startTemp: ReadonlySet<string>;
  /** The path without this block's `SET LOCAL` / `set_config(..., true)` changes. */
  readonly sessionPath: SearchPath;
}

/** What the session brings to a check (see `CheckContext`). */
export interface SessionState {
  readonly prepared?: ReadonlyMap<string, StatementReport>;
  readonly searchPath?: SearchPath;
  /** What RESET / SET ... TO DEFAULT returns to (the startup or role value); default `"$user", public`. */
  readonly defaultSearchPath?: SearchPath;
  readonly user?: string;
  readonly tempRelations?: ReadonlySet<string>;
  readonly catalog?: RelationCatalog;
  readonly routines?: RoutineResolver;
  /** The open transaction block (absent: none, or not known to be open). */
  readonly transaction?: TransactionState;
}

/** A statement with the session applied. */
export interface ResolvedStatement {
  readonly report: StatementReport;
  /** Every operation, with session-dependent effects settled. */
  readonly operations: readonly Operation[];
  readonly effects: readonly SqlEffect[];
  /** How names of this statement resolve. */
  readonly scope: NameScope;
  /**
   * A called function's body changes the session (search_path, temporary relations) in ways the
   * tracking cannot follow: the relay reads the session's state again after it ran.
   */
  readonly opaqueSessionChange: boolean;
}

/**
 * Analyses a routine body (cached by the caller); undefined when it cannot be read, which makes
 * the call `opaque-code`.
 */
export type RoutineAnalyser = (language: string, body: string) => StatementReport | undefined;

/** Languages whose bodies are read; calls of functions in other languages (C, internal) are not judged. */
const READABLE_LANGUAGES = new Set(['sql', 'plpgsql']);

/** Deepest chain of function bodies followed (f calls g calls h ...). */
const MAX_ROUTINE_DEPTH = 8;

/** The session's state while the statements of one text are applied in order. */
class Tracker {
  path: SearchPath;
  /** The path without the current block's (or text's) local changes. */
  sessionPath: SearchPath;
  readonly temp: Set<string>;
  readonly prepared: Map<string, StatementReport>;
  transaction: { startPath: SearchPath; startTemp: ReadonlySet<string> } | undefined;

  constructor(private readonly session: SessionState) {
    this.path = session.searchPath ?? DEFAULT_SEARCH_PATH;
    this.sessionPath = session.transaction?.sessionPath ?? this.path;
    this.temp = new Set(session.tempRelations ?? []);
    this.prepared = new Map(session.prepared ?? []);
    const t = session.transaction;
    this.transaction = t ? { startPath: t.startPath, startTemp: t.startTemp } : undefined;
  }

  scope(): NameScope {
    return {
      searchPath: this.path,
      ...(this.session.user !== undefined ? { user: this.session.user } : {}),
      tempRelations: this.temp,
      ...(this.session.catalog ? { catalog: this.session.catalog } : {}),
    };
  }

  /** Applies what `report` changes in the session (the statement ran without error). */
  apply(report: StatementReport): void {
    const scope = this.scope();
    if (report.prepares) this.prepared.set(report.prepares.name, report.prepares.statement);
    if (report.deallocates) {
      if (report.deallocates.name === undefined) this.prepared.clear();
      else this.prepared.delete(report.deallocates.name);
    }
    // Dropped and renamed relations leave the temporary set before anything is added: the set
    // must never name a relation that is gone (DROP TABLE x would then reach a permanent x).
    for (const d of report.dropped ?? []) if (isSessionTemp(d, scope)) this.temp.delete(d.name);
    if (report.renamed && isSessionTemp(report.renamed.from, scope)) {
      this.temp.delete(report.renamed.from.name);
      this.temp.add(report.renamed.to);
    }
    if (report.discardsTemp) this.temp.clear();
    for (const t of report.tempCreated ?? []) this.temp.add(t.name);
    for (const index of report.indexesCreated ?? [])
      if (isSessionTemp(index.on, scope)) this.temp.add(index.name);
    if (report.searchPath) {
      const { value, local } = report.searchPath;
      const path = value === 'default' ? (this.session.defaultSearchPath ?? DEFAULT_SEARCH_PATH) : value;
      this.path = path;
      if (!local) this.sessionPath = path;
    }
    if (report.transaction) this.control(report.transaction);
  }

  private control(control: NonNullable<StatementReport['transaction']>): void {
    const open = () => ({ startPath: this.sessionPath, startTemp: new Set(this.temp) });
    switch (control) {
      case 'begin':
        // BEGIN inside a block is a no-op (with a warning).
        this.transaction ??= open();
        return;
      case 'commit':
      case 'commit-and-chain':
        this.path = this.sessionPath;
        this.transaction = control === 'commit' ? undefined : open();
        return;
      case 'rollback':
      case 'rollback-and-chain':
        if (this.transaction) {
          this.sessionPath = this.transaction.startPath;
          this.replaceTemp(this.transaction.startTemp);
        }
        this.path = this.sessionPath;
        this.transaction = control === 'rollback' ? undefined : open();
        return;
      case 'rollback-to': {
        // Which changes came after the savepoint is not tracked: a changed path becomes unknown,
        // relations created in the block may be gone.
        const start = this.transaction;
        if (!start) return;
        if (this.path !== start.startPath || this.sessionPath !== start.startPath) {
          this.path = 'unknown';
          this.sessionPath = 'unknown';
        }
        for (const name of [...this.temp]) if (!start.startTemp.has(name)) this.temp.delete(name);
        return;
      }
      case 'prepare':
        // The block leaves the session; what its SETs leave behind is not modelled.
        if (
          this.transaction &&
          (this.path !== this.transaction.startPath || this.sessionPath !== this.path)
        ) {
          this.path = 'unknown';
          this.sessionPath = 'unknown';
        }
        this.transaction = undefined;
        return;
      case 'savepoint':
      case 'release':
        return;
    }
  }

  private replaceTemp(names: ReadonlySet<string>): void {
    this.temp.clear();
    for (const name of names) this.temp.add(name);
  }

  /** The state after the text: outside a block, the text's own (implicit) block has ended. */
  finish(): TrackedSession {
    const open = this.transaction;
    return {
      searchPath: open ? this.path : this.sessionPath,
      tempRelations: this.temp,
      prepared: this.prepared,
      ...(open ? { transaction: { ...open, sessionPath: this.sessionPath } } : {}),
    };
  }
}

/** Resolves each report in order, threading the text's own changes to the session. */
export function resolveStatements(
  reports: readonly StatementReport[],
  session: SessionState,
  bodies: RoutineAnalyser,
): ResolvedStatement[] {
  const tracker = new Tracker(session);
  const out: ResolvedStatement[] = [];
  for (const report of reports) {
    const scope: NameScope = { ...tracker.scope(), tempRelations: new Set(tracker.temp) };
    let operations = [...report.operations];
    if (report.executes !== undefined) {
      const target = tracker.prepared.get(report.executes);
      // What EXECUTE runs is estimated by EXPLAIN EXECUTE (the statement itself).
      if (target)
        operations.push(...target.operations.map((op) => ({ ...op, estimate: 'statement' as const })));
      else operations[0] = withEffects(operations[0]!, [...operations[0]!.effects, 'unknown-prepared']);
    }
    let opaqueSessionChange = false;
    if (session.routines) {
      const called = routineOperations(operations, scope, session.routines, bodies);
      operations = [...operations, ...called.operations];
      opaqueSessionChange = called.changesSession;
    }
    operations = operations.map((op) => settle(op, scope));
    out.push({
      report,
      operations,
      effects: sortEffects(new Set(operations.flatMap((op) => op.effects))),
      scope,
      opaqueSessionChange,
    });
    // What this statement changes, the next one sees.
    tracker.apply(report);
  }
  return out;
}

/** The session state the relay keeps between checks (see {@link advanceSession}). */
export interface TrackedSession {
  readonly searchPath: SearchPath;
  readonly tempRelations: ReadonlySet<string>;
  readonly prepared: ReadonlyMap<string, StatementReport>;
  /** The transaction block still open after the text (absent: none). */
  readonly transaction?: TransactionState;
}

/**
 * The session after `reports` ran without error (a text the relay let through and the server
 * executed): prepared statements (PREPARE, DEALLOCATE), temporary relations (created, dropped,
 * renamed, discarded; restored by ROLLBACK) and search_path (plain SET, SET LOCAL until the block
 * or the text ends, ROLLBACK, RESET, DISCARD ALL) as they changed, and the transaction block left
 * open. A path the analysis cannot follow (`ROLLBACK TO SAVEPOINT` after a change) is `unknown`:
 * the relay then reads the session's path again.
 */
export function advanceSession(session: SessionState, reports: readonly StatementReport[]): TrackedSession {
  const tracker = new Tracker(session);
  for (const report of reports) tracker.apply(report);
  return tracker.finish();
}

function withEffects(op: Operation, effects: readonly SqlEffect[]): Operation {
  return { ...op, effects: sortEffects(new Set(effects)) };
}

/** Effects that depend on the session: own temporary objects, NOT NULL columns. */
function settle(op: Operation, scope: NameScope): Operation {
  let effects = op.effects;
  if (op.tempExempt && op.writes.length > 0 && op.writes.every((w) => isSessionTemp(w, scope))) {
    effects = effects.filter((e) => !op.tempExempt!.includes(e));
  }
  if (op.filter?.kind === 'unfiltered-if-not-null' && isNotNull(op, op.filter.columns, scope)) {
    effects = [...effects, op.kind === 'update' ? 'update-unfiltered' : 'delete-unfiltered'];
  }
  return effects === op.effects ? op : withEffects(op, effects);
}

function isNotNull(op: Operation, columns: readonly string[], scope: NameScope): boolean {
  const lookup = scope.catalog?.notNullColumns;
  const written = op.writes[0];
  if (!lookup || !written) return false;
  // PostgreSQL uses the first schema of the path that has the relation.
  for (const schema of candidateSchemas(written, 'relation', scope)) {
    if (schema === '*') return false;
    const notNull = lookup.call(scope.catalog, schema, written.name);
    if (notNull !== undefined) return columns.every((c) => notNull.has(c));
  }
  return false;
}

/**
 * The operations of the bodies of the functions `operations` call, transitively, and whether one
 * of those bodies changes the session (its own SET search_path, temporary tables).
 */
function routineOperations(
  operations: readonly Operation[],
  scope: NameScope,
  routines: RoutineResolver,
  bodies: RoutineAnalyser,
): { operations: Operation[]; changesSession: boolean } {
  const out: Operation[] = [];
  let changesSession = false;
  const seen = new Set<string>();
  let frontier = operations.filter((op) => op.estimate !== 'none');
  for (let depth = 0; depth < MAX_ROUTINE_DEPTH && frontier.length > 0; depth++) {
    const next: Operation[] = [];
    for (const op of frontier) {
      for (const name of op.functions) {
        const schemas = candidateSchemas(name, 'function', scope).filter((s) => s !== 'pg_catalog');
        for (const routine of routines.lookup(name, schemas)) {
          const key = `${routine.schema}.${routine.name}\u0000${routine.body}`;
          if (seen.has(key)) continue;
          seen.add(key);
          if (!READABLE_LANGUAGES.has(routine.language)) continue;
          const report = bodies(routine.language, routine.body);
          if (!report) {
            out.push({ ...op, origin: 'function-body', effects: ['opaque-code'], estimate: 'none' });
            continue;
          }
          if (changesSessionState(report)) changesSession = true;
          for (const inner of report.operations) {
            const called: Operation = { ...inner, origin: 'function-body' };
            out.push(called);
            next.push(called);
          }
        }
      }
    }
    frontier = next;
  }
  return { operations: out, changesSession };
}

/** True when running `report` changes what later statements of the session resolve. */
export function changesSessionState(report: StatementReport): boolean {
  return (
    report.searchPath !== undefined ||
    report.tempCreated !== undefined ||
    report.indexesCreated !== undefined ||
    report.discardsTemp === true ||
    report.dropped !== undefined ||
    report.renamed !== undefined ||
    report.prepares !== undefined ||
    report.deallocates !== undefined ||
    report.transaction !== undefined
  );
}

/** A name's display form (for messages). */
export const describeName = formatName;
