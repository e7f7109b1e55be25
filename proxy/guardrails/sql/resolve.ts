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
}

/** A statement with the session applied. */
export interface ResolvedStatement {
  readonly report: StatementReport;
  /** Every operation, with session-dependent effects settled. */
  readonly operations: readonly Operation[];
  readonly effects: readonly SqlEffect[];
  /** How names of this statement resolve. */
  readonly scope: NameScope;
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

/** Resolves each report in order, threading the text's own changes to the session. */
export function resolveStatements(
  reports: readonly StatementReport[],
  session: SessionState,
  bodies: RoutineAnalyser,
): ResolvedStatement[] {
  let searchPath: SearchPath = session.searchPath ?? DEFAULT_SEARCH_PATH;
  const temp = new Set(session.tempRelations ?? []);
  const prepared = new Map(session.prepared ?? []);
  const out: ResolvedStatement[] = [];
  for (const report of reports) {
    const scope: NameScope = {
      searchPath,
      ...(session.user !== undefined ? { user: session.user } : {}),
      tempRelations: new Set(temp),
      ...(session.catalog ? { catalog: session.catalog } : {}),
    };
    let operations = [...report.operations];
    if (report.executes !== undefined) {
      const target = prepared.get(report.executes);
      if (target) operations.push(...target.operations);
      else operations[0] = withEffects(operations[0]!, [...operations[0]!.effects, 'unknown-prepared']);
    }
    if (session.routines)
      operations = [...operations, ...routineOperations(operations, scope, session.routines, bodies)];
    operations = operations.map((op) => settle(op, scope));
    out.push({
      report,
      operations,
      effects: sortEffects(new Set(operations.flatMap((op) => op.effects))),
      scope,
    });
    // What this statement changes, the next one sees.
    searchPath = applyStatement(report, scope, session, prepared, temp) ?? searchPath;
  }
  return out;
}

/**
 * Applies what `report` changes in the session to `prepared` and `temp`; returns the new
 * search_path when it changes one.
 */
function applyStatement(
  report: StatementReport,
  scope: NameScope,
  session: SessionState,
  prepared: Map<string, StatementReport>,
  temp: Set<string>,
): SearchPath | undefined {
  if (report.prepares) prepared.set(report.prepares.name, report.prepares.statement);
  if (report.discardsTemp) temp.clear();
  for (const t of report.tempCreated ?? []) temp.add(t.name);
  for (const index of report.indexesCreated ?? []) if (isSessionTemp(index.on, scope)) temp.add(index.name);
  if (!report.searchPath) return undefined;
  const value = report.searchPath.value;
  return value === 'default' ? (session.defaultSearchPath ?? DEFAULT_SEARCH_PATH) : value;
}

/** The session state the relay keeps between checks (see {@link advanceSession}). */
export interface TrackedSession {
  readonly searchPath: SearchPath;
  readonly tempRelations: ReadonlySet<string>;
  readonly prepared: ReadonlyMap<string, StatementReport>;
}

/**
 * The session after `reports` ran (a text the relay let through and the server executed):
 * prepared statements, temporary relations and search_path as they changed. The relay (phase B)
 * calls it once the server has executed the statements (on CommandComplete), keeps the
 * search_path of `SET LOCAL` / `set_config(..., true)` only until the transaction ends, and forgets
 * prepared statements on DEALLOCATE and DISCARD.
 */
export function advanceSession(session: SessionState, reports: readonly StatementReport[]): TrackedSession {
  let searchPath: SearchPath = session.searchPath ?? DEFAULT_SEARCH_PATH;
  const temp = new Set(session.tempRelations ?? []);
  const prepared = new Map(session.prepared ?? []);
  for (const report of reports) {
    const scope: NameScope = {
      searchPath,
      ...(session.user !== undefined ? { user: session.user } : {}),
      tempRelations: temp,
    };
    searchPath = applyStatement(report, scope, session, prepared, temp) ?? searchPath;
  }
  return { searchPath, tempRelations: temp, prepared };
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

/** The operations of the bodies of the functions `operations` call, transitively. */
function routineOperations(
  operations: readonly Operation[],
  scope: NameScope,
  routines: RoutineResolver,
  bodies: RoutineAnalyser,
): Operation[] {
  const out: Operation[] = [];
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
  return out;
}

/** A name's display form (for messages). */
export const describeName = formatName;
