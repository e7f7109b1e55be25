/**
 * The guardrails' view of one proxied session: one stable check context (level, groups, the
 * session's search_path and its default, the minted role for `"$user"`, its temporary relations,
 * prepared statements and open transaction block, the catalog and the function bodies), kept true
 * as the session runs. Pure: the relay says what it sent and what the server answered; this
 * says what the next check must wait for and what to read from the server first.
 *
 * - Statements that change the session (`Verdict.impact`) are tracked as units. Their changes are
 *   applied once the server ran them: a simple Query at its ReadyForQuery; an extended-protocol
 *   Execute at its CommandComplete, for the rest of its batch, and for good at the batch's
 *   ReadyForQuery without an error. A check waits until every unit it may depend on is applied
 *   (the barrier), so a pipelined `SET search_path` is never judged before it ran.
 * - What cannot be followed exactly (a failed text in a block, ROLLBACK TO SAVEPOINT after a
 *   change, a called function that sets search_path, a block that ended unseen) makes the path
 *   `unknown` (every schema a candidate) and the temporary set smaller (never larger): both err
 *   towards applying rules. The session's real state is then read back (`SHOW search_path`, the
 *   relations of `pg_my_temp_schema()`) before the next check, when the transaction allows it.
 * - After DDL the catalog is read again for the relations the statement named (all of it when it
 *   cannot tell) and the function names and bodies are forgotten; until then the catalog is used
 *   for NOT NULL columns only.
 */
import {
  advanceSession,
  type CheckContext,
  DEFAULT_SEARCH_PATH,
  parseSearchPathValue,
  type SearchPath,
  type SessionImpact,
  type StatementReport,
  type TransactionState,
  type Verdict,
} from '../guardrails/sql/index.ts';
import { remember } from './bounded-names.ts';
import {
  GUARD_CATALOG_TTL_MS,
  RelationIndex,
  ROUTINE_NAMES_SQL,
  relationsSql,
  routineBodiesSql,
  type SchemaSnapshot,
  SessionRoutines,
  uncertainCatalog,
} from './guard-catalog.ts';
import { TransactionStatus } from './protocol/message-codes.ts';

/** The relations of the session's temporary schema. */
export const TEMP_RELATIONS_SQL =
  'SELECT c.relname FROM pg_catalog.pg_class c WHERE c.relnamespace OPERATOR(pg_catalog.=) pg_catalog.pg_my_temp_schema()';

/** Names re-read after DDL before the whole catalog is read instead. */
const MAX_TARGETED_NAMES = 200;

/** The check context the guard keeps up to date (one object for the whole session). */
export interface GuardContext extends CheckContext {
  searchPath: SearchPath;
  defaultSearchPath: SearchPath;
  tempRelations: ReadonlySet<string>;
  prepared: Map<string, StatementReport>;
  catalog?: CheckContext['catalog'];
  routines?: SessionRoutines;
  transaction?: TransactionState;
}

/** Statements of one client message that change the session, in flight. */
export interface Unit {
  readonly reports: readonly StatementReport[];
  readonly impact: SessionImpact;
  /** The batch it was sent in (a Query is a batch of its own). */
  readonly batch: number;
  readonly kind: 'query' | 'execute';
  /** Transaction status when it was sent. */
  readonly sentIn: TransactionStatus;
  state: 'sent' | 'done';
}

/** What to read from the server before the next check. */
export interface Reads {
  path: boolean;
  temp: boolean;
  /** Relations to read again (`all`: the whole catalog). */
  relations: readonly string[] | 'all' | undefined;
  /** Function names to read again (always with `relations`). */
  routineNames: boolean;
}

/** Options of {@link SessionGuard}. */
export interface SessionGuardOptions {
  level: string;
  groups: readonly string[];
  /** The role the session runs as (`"$user"`). */
  user: string;
  /** `SHOW search_path` after login (undefined when it could not be read). */
  searchPath: string | undefined;
  /** The shared snapshot the session starts from, if one could be read. */
  snapshot: SchemaSnapshot | undefined;
  clock: () => number;
  /** Tells the shared cache that this session changed the schema. */
  onSchemaChange?: () => void;
  /**
   * False for a relay without a server to ask (unit tests of the wire core): nothing is read,
   * waited for or estimated, writes are judged as unestimated.
   */
  live?: boolean;
}

/** One session's guardrail state (see the module comment). */
export class SessionGuard {
  readonly ctx: GuardContext;
  /** Whether the guard may ask the server (see {@link SessionGuardOptions.live}). */
  readonly live: boolean;
  private readonly clock: () => number;
  private readonly onSchemaChange: (() => void) | undefined;
  private readonly units: Unit[] = [];
  private relations: RelationIndex | undefined;
  private routineNames: ReadonlySet<string> | undefined;
  private loadedAt: number;
  /** The batch's state before its first applied unit, for undoing it when the batch fails. */
  private batchBefore: { batch: number; path: SearchPath; temp: ReadonlySet<string> } | undefined;
  private pathDoubt = false;
  private tempDoubt = false;
  private staleRelations: Set<string> | 'all' | undefined;
  private status: TransactionStatus = TransactionStatus.Idle;

  constructor(options: SessionGuardOptions) {
    this.clock = options.clock;
    this.live = options.live ?? true;
    this.onSchemaChange = options.onSchemaChange;
    const path = options.searchPath === undefined ? undefined : parseSearchPathValue(options.searchPath);
    const searchPath: SearchPath = path ?? (this.live ? 'unknown' : DEFAULT_SEARCH_PATH);
    this.relations = options.snapshot?.relations;
    this.routineNames = options.snapshot?.routineNames;
    this.loadedAt = options.snapshot?.loadedAt ?? options.clock();
    this.ctx = {
      level: options.level,
      groups: options.groups,
      user: options.user,
      searchPath,
      defaultSearchPath: searchPath,
      tempRelations: new Set(),
      prepared: new Map(),
      ...(this.relations ? { catalog: this.relations } : {}),
      ...(this.live ? { routines: new SessionRoutines(this.routineNames, new Map()) } : {}),
    };
    if (!options.snapshot?.relations && this.live) this.staleRelations = 'all';
  }

  /** The transaction status of the last ReadyForQuery. */
  get transactionStatus(): TransactionStatus {
    return this.status;
  }

  // ------------------------------------------------------------------ before a check

  /**
   * True when a check made now may depend on a unit not yet applied: for a message that starts a
   * new batch, any unit in flight; inside a batch (`batch`), a unit of an earlier batch not
   * finished, or one of this batch whose CommandComplete has not arrived.
   */
  mustWait(batch: number, inBatch: boolean): boolean {
    if (!this.live) return false;
    for (const unit of this.units) {
      if (!inBatch || unit.batch !== batch || unit.state === 'sent') return true;
    }
    return false;
  }

  /** What to read before the next check, in the current transaction status (undefined: nothing). */
  reads(): Reads | undefined {
    if (!this.live || this.status === TransactionStatus.Failed) return undefined;
    const relations =
      this.staleRelations === undefined
        ? undefined
        : this.staleRelations === 'all'
          ? 'all'
          : [...this.staleRelations];
    // A session's own snapshot grows old too; it is read again outside a block only, so a block's
    // first statement keeps taking the block's snapshot itself.
    const expired =
      this.status === TransactionStatus.Idle && this.clock() - this.loadedAt > GUARD_CATALOG_TTL_MS;
    const reads: Reads = {
      path: this.pathDoubt,
      temp: this.tempDoubt,
      relations: expired ? 'all' : relations,
      routineNames: expired || relations !== undefined,
    };
    return reads.path || reads.temp || reads.relations !== undefined ? reads : undefined;
  }

  /** The statements that read what `reads` asks for, in order, and how many result sets each returns. */
  readStatements(reads: Reads): { sql: string; kind: 'path' | 'temp' | 'relations' | 'names' }[] {
    const out: { sql: string; kind: 'path' | 'temp' | 'relations' | 'names' }[] = [];
    if (reads.path) out.push({ sql: 'SHOW search_path', kind: 'path' });
    if (reads.temp) out.push({ sql: TEMP_RELATIONS_SQL, kind: 'temp' });
    if (reads.relations !== undefined)
      out.push({
        sql: relationsSql(reads.relations === 'all' ? undefined : reads.relations),
        kind: 'relations',
      });
    if (reads.routineNames) out.push({ sql: ROUTINE_NAMES_SQL, kind: 'names' });
    return out;
  }

  /**
   * Applies what was read (`undefined` for a statement that failed). A failed read leaves the
   * conservative state as it is; the read is tried again before a later check.
   */
  applyReads(reads: Reads, results: Map<string, (string | null)[][] | undefined>): void {
    if (reads.path) {
      const shown = results.get('path')?.[0]?.[0];
      const path = shown === undefined || shown === null ? undefined : parseSearchPathValue(shown);
      if (path) {
        // Inside a block the path SET LOCAL would return to may stay unknown: the block's end
        // makes the path unknown again, and it is read again then.
        this.ctx.searchPath = path;
        this.pathDoubt = false;
      }
    }
    if (reads.temp) {
      const rows = results.get('temp');
      if (rows) {
        this.ctx.tempRelations = new Set(rows.flatMap(([name]) => (name ? [name] : [])));
        this.tempDoubt = false;
      }
    }
    if (reads.relations !== undefined) {
      const rows = results.get('relations');
      if (rows) {
        const names = reads.relations;
        this.relations =
          names === 'all' || !this.relations
            ? RelationIndex.fromRows(rows)
            : this.relations.patched(names, rows);
        if (names === 'all') this.loadedAt = this.clock();
        this.staleRelations = undefined;
        this.ctx.catalog = this.relations;
      }
    }
    if (reads.routineNames) {
      const rows = results.get('names');
      this.routineNames = rows ? new Set(rows.flatMap(([name]) => (name ? [name] : []))) : undefined;
      this.ctx.routines = (this.ctx.routines ?? new SessionRoutines(undefined, new Map())).reset(
        this.routineNames,
      );
    }
  }

  /** Function names the last check looked up without knowing their bodies. */
  takeMisses(): string[] {
    return this.ctx.routines?.takeMisses() ?? [];
  }

  /** The statement that reads the bodies of `names`. */
  bodiesSql(names: readonly string[]): string {
    return routineBodiesSql(names);
  }

  /** Adds the bodies read (`rows` undefined: the read failed). */
  applyBodies(names: readonly string[], rows: (string | null)[][] | undefined): boolean {
    if (!rows) return false;
    this.ctx.routines = (this.ctx.routines ?? new SessionRoutines(this.routineNames, new Map())).with(
      names,
      rows,
    );
    return true;
  }

  // ------------------------------------------------------------------ units

  /** A unit for the statements of `verdict` sent in `batch`, if they change the session. */
  unitFor(verdict: Verdict, batch: number, kind: Unit['kind']): Unit | undefined {
    const impact = verdict.impact;
    if (!impact) return undefined;
    return this.track(
      verdict.statements.map((s) => s.report),
      impact,
      batch,
      kind,
    );
  }

  /** A unit for an Execute of a prepared statement whose Parse was checked with `reports`. */
  track(reports: readonly StatementReport[], impact: SessionImpact, batch: number, kind: Unit['kind']): Unit {
    const unit: Unit = { reports, impact, batch, kind, sentIn: this.status, state: 'sent' };
    this.units.push(unit);
    return unit;
  }

  /**
   * A unit's statements ran: an Execute's CommandComplete (applied for the rest of its batch), or
   * a Query's ReadyForQuery with no error. `tags` are the CommandComplete tags in order: a COMMIT
   * that answers ROLLBACK ended a failed block.
   */
  ran(unit: Unit, tags: readonly string[]): void {
    if (unit.kind === 'execute') {
      if (!this.batchBefore || this.batchBefore.batch !== unit.batch) {
        this.batchBefore = { batch: unit.batch, path: this.ctx.searchPath, temp: this.ctx.tempRelations };
      }
      unit.state = 'done';
    } else {
      this.remove(unit);
    }
    this.apply(unit, tags);
    this.afterRun(unit);
  }

  /**
   * A Query unit failed (an ErrorResponse; `status` of its ReadyForQuery): what may have run is
   * undone conservatively.
   */
  failed(unit: Unit, status: TransactionStatus): void {
    this.remove(unit);
    const implicit = status === TransactionStatus.Idle && unit.sentIn === TransactionStatus.Idle;
    const control = unit.reports.some((r) => r.transaction !== undefined);
    for (const report of unit.reports) {
      if (report.prepares) remember(this.ctx.prepared, report.prepares.name, report.prepares.statement);
    }
    if (implicit && !control) {
      // The text's implicit transaction was rolled back: nothing else it did remains.
      if (unit.impact.schema) this.schemaChanged(unit.reports);
      return;
    }
    // Statements before the error may have run: keep only what is certain.
    if (unit.reports.some((r) => r.searchPath || r.transaction || r.discardsTemp)) this.unknownPath();
    const gone = new Set<string>();
    for (const report of unit.reports) {
      for (const d of report.dropped ?? []) gone.add(d.name);
      if (report.renamed) gone.add(report.renamed.from.name);
    }
    if (unit.reports.some((r) => r.discardsTemp)) this.ctx.tempRelations = new Set();
    else if (gone.size > 0)
      this.ctx.tempRelations = new Set([...this.ctx.tempRelations].filter((n) => !gone.has(n)));
    if (gone.size > 0 || unit.reports.some((r) => r.tempCreated)) this.tempDoubt = true;
    this.afterRun(unit);
  }

  /** An Execute unit did not run (its own error, or the server skipped it): its batch fails. */
  skipped(unit: Unit): void {
    this.remove(unit);
  }

  /**
   * A ReadyForQuery of a client batch (a Sync or a Query), with whether an error occurred in the
   * batch. The batch's applied Execute units are confirmed, or undone when it failed.
   */
  batchEnded(batch: number, status: TransactionStatus, failed: boolean): void {
    const applied = this.units.filter((u) => u.batch === batch && u.kind === 'execute');
    for (const unit of applied) this.remove(unit);
    const before = this.batchBefore?.batch === batch ? this.batchBefore : undefined;
    this.batchBefore = undefined;
    if (failed && before) {
      if (status === TransactionStatus.Idle && applied.every((u) => u.sentIn === TransactionStatus.Idle)) {
        // The batch's implicit transaction was rolled back.
        this.ctx.searchPath = before.path;
        this.ctx.tempRelations = before.temp;
      } else {
        if (this.ctx.searchPath !== before.path) this.unknownPath();
        this.ctx.tempRelations = new Set([...this.ctx.tempRelations].filter((n) => before.temp.has(n)));
        this.tempDoubt = true;
      }
    }
    this.observeStatus(status);
  }

  /** Follows the transaction status of every ReadyForQuery (the client's and Warden's own). */
  observeStatus(status: TransactionStatus): void {
    const previous = this.status;
    this.status = status;
    if (status === TransactionStatus.Idle && this.ctx.transaction) {
      // The block ended without a COMMIT or ROLLBACK the tracking followed.
      if (previous === TransactionStatus.Failed) this.rollbackBlock();
      else {
        delete this.ctx.transaction;
        this.unknownPath();
        this.tempDoubt = true;
      }
    } else if (status !== TransactionStatus.Idle && !this.ctx.transaction) {
      this.ctx.transaction = {
        startPath: this.ctx.searchPath,
        startTemp: this.ctx.tempRelations,
        sessionPath: this.ctx.searchPath,
      };
    }
  }

  private apply(unit: Unit, tags: readonly string[]): void {
    const reports = unit.reports.map((report, i) =>
      report.transaction?.startsWith('commit') && tags[i] === 'ROLLBACK'
        ? ({
            ...report,
            transaction: report.transaction === 'commit' ? 'rollback' : 'rollback-and-chain',
          } as StatementReport)
        : report,
    );
    const next = advanceSession(this.ctx, reports);
    this.ctx.searchPath = next.searchPath;
    this.ctx.tempRelations = next.tempRelations;
    this.ctx.prepared.clear();
    for (const [name, report] of next.prepared) remember(this.ctx.prepared, name, report);
    if (next.transaction) this.ctx.transaction = next.transaction;
    else delete this.ctx.transaction;
    if (next.searchPath === 'unknown') this.pathDoubt = true;
  }

  private afterRun(unit: Unit): void {
    if (unit.impact.opaque) {
      // A called function set search_path or made temporary tables: read the session back.
      this.pathDoubt = true;
      this.tempDoubt = true;
    }
    if (unit.impact.schema) this.schemaChanged(unit.reports);
  }

  private rollbackBlock(): void {
    const block = this.ctx.transaction;
    if (block) {
      this.ctx.searchPath = block.startPath;
      this.ctx.tempRelations = block.startTemp;
      delete this.ctx.transaction;
    }
    if (this.ctx.searchPath === 'unknown') this.pathDoubt = true;
  }

  private unknownPath(): void {
    this.ctx.searchPath = 'unknown';
    if (this.ctx.transaction) this.ctx.transaction = { ...this.ctx.transaction, sessionPath: 'unknown' };
    this.pathDoubt = true;
  }

  /** DDL ran: read the relations it named again, forget function bodies. */
  private schemaChanged(reports: readonly StatementReport[]): void {
    this.onSchemaChange?.();
    const names = new Set<string>();
    let all = false;
    for (const report of reports) {
      // Statements that name no relation (CREATE SCHEMA, CREATE EXTENSION, a DO block's or a
      // called function's DDL) may change any: all of it.
      if (report.relations.length === 0 || report.kind === 'procedural') all = true;
      for (const relation of report.relations) names.add(relation.split('.').at(-1)!);
      if (report.renamed) names.add(report.renamed.to);
    }
    if (reports.some((r) => r.effects.includes('drop-schema'))) all = true;
    if (this.staleRelations === 'all' || all || names.size > MAX_TARGETED_NAMES) this.staleRelations = 'all';
    else {
      this.staleRelations ??= new Set();
      for (const name of names) this.staleRelations.add(name);
    }
    if (this.relations) this.ctx.catalog = uncertainCatalog(this.relations);
  }

  private remove(unit: Unit): void {
    const at = this.units.indexOf(unit);
    if (at >= 0) this.units.splice(at, 1);
  }
}
