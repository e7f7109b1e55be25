/**
 * Classifies SQL text into one report per statement by walking PostgreSQL's own parse tree. A
 * report lists every operation the statement would execute, wherever it is nested: the statement
 * itself, writable CTEs, each MERGE action, the target of `EXPLAIN ANALYZE`, the query of
 * `COPY (...)`, `PREPARE` bodies, `DO` bodies (PL/pgSQL, statement by statement), routine bodies
 * being defined, and the SQL text run by SQL-executing functions (`query_to_xml`, dblink, ...).
 * Each operation carries its own kind, effects, the relations it reads and writes, the functions
 * it calls and, for DELETE/UPDATE/MERGE actions, what its filter does (see filters.ts).
 *
 * The report is independent of the session: names are kept as written and resolved later against
 * the session's search_path, temporary objects and catalog (see resolve.ts), so one analysis
 * serves every session from the verdict cache. Literal values are read in few places (routine
 * bodies, `SET` values, `set_config` names, SQL text given to functions); each read marks the
 * analysis `literalSensitive`, which tells the cache that a statement of the same shape with other
 * literals may not reuse this result.
 *
 * Over 600 lines: one walker over one tree, whose cases share its state. The report's types are
 * in report.ts, node-type tables and part readers in statement-parts.ts, PL/pgSQL in plpgsql-walk.ts.
 */

import { constantString, findOption, isObject, stringList, unwrap } from './ast.ts';
import { isDangerousFunction, type SqlEffect, type StatementKind, sortEffects } from './effects.ts';
import { isAsciiSafeEncoding } from './encodings.ts';
import { SqlUnparseableError } from './errors.ts';
import { analyseFilter, combineFilters, type FilterVerdict, referenceNames, targetName } from './filters.ts';
import { formatName, parseQualifiedName, parseSearchPathValue, type QualifiedName } from './names.ts';
import { type AstNode, parseStatements, type RawStatement } from './parser.ts';
import { walkPlpgsqlBody } from './plpgsql-walk.ts';
import type {
  CopyDescription,
  EstimateSource,
  Operation,
  OperationOrigin,
  SearchPathChange,
  SqlAnalysis,
  StatementReport,
  TransactionControl,
} from './report.ts';
import { SQL_TEXT_FUNCTIONS, type SqlTextUse } from './sql-functions.ts';
import {
  copyOptionValue,
  DDL_PREFIX,
  DESTRUCTIVE_ALTER,
  firstConstant,
  IDENTITY_SETTINGS,
  isSecurityDefiner,
  isSettingsName,
  kindOf,
  MAINTENANCE_STATEMENTS,
  MERGE_COMMANDS,
  PERSISTENT_STATEMENTS,
  PRIVILEGE_STATEMENTS,
  pinnedSettingName,
  qualified,
  ROLE_STATEMENTS,
  relationName,
  SESSION_STATEMENTS,
  stringOrBool,
  TRUE_VALUES,
  unfilteredEffect,
} from './statement-parts.ts';

export type {
  CopyDescription,
  CopyOptionValue,
  EstimateSource,
  Operation,
  OperationOrigin,
  SearchPathChange,
  SqlAnalysis,
  StatementReport,
  TransactionControl,
} from './report.ts';
export { kindOf } from './statement-parts.ts';

/** Deepest AST nesting walked; deeper trees are refused as unparseable. */
const MAX_NODE_DEPTH = 1_000;
/** Deepest nesting of bodies in bodies (`DO` running `EXECUTE 'DO ...'`, query_to_xml in query_to_xml). */
export const MAX_BODY_DEPTH = 8;

/** Shared across every statement of one analysis. */
export interface AnalysisState {
  literalSensitive: boolean;
}

/** Accumulates one operation's facts. */
class OperationBuilder {
  readonly effects = new Set<SqlEffect>();
  readonly reads = new Map<string, QualifiedName>();
  readonly writes = new Map<string, QualifiedName>();
  readonly functions = new Map<string, QualifiedName>();
  filter: FilterVerdict | undefined;
  readonly tempExempt = new Set<SqlEffect>();

  constructor(
    readonly kind: StatementKind,
    readonly origin: OperationOrigin,
    public estimate: EstimateSource,
    /** The node this operation is (so the walker does not open it twice). */
    readonly node: AstNode | undefined,
  ) {}

  build(): Operation {
    const list = (m: Map<string, QualifiedName>) => [...m.keys()].sort().map((k) => m.get(k)!);
    return {
      kind: this.kind,
      origin: this.origin,
      effects: sortEffects(this.effects),
      reads: list(this.reads),
      writes: list(this.writes),
      functions: list(this.functions),
      ...(this.filter ? { filter: this.filter } : {}),
      ...(this.tempExempt.size > 0 ? { tempExempt: sortEffects(this.tempExempt) } : {}),
      estimate: this.estimate,
    };
  }
}

const add = (map: Map<string, QualifiedName>, name: QualifiedName) => map.set(formatName(name), name);

/** Where a walk is: what new operations inherit. */
interface Position {
  readonly origin: OperationOrigin;
  /** The body runs later (PREPARE, routine definitions): no estimate now. */
  readonly deferred: boolean;
}

/** Accumulates one statement's facts while walking its tree. */
export class StatementWalker {
  readonly operations: OperationBuilder[] = [];
  current: OperationBuilder;
  prepares: { name: string; statement: StatementReport } | undefined;
  executes: string | undefined;
  copy: CopyDescription | undefined;
  searchPath: SearchPathChange | undefined;
  readonly tempCreated = new Map<string, QualifiedName>();
  readonly indexesCreated: { name: string; on: QualifiedName }[] = [];
  discardsTemp = false;
  readonly dropped = new Map<string, QualifiedName>();
  renamed: { from: QualifiedName; to: string } | undefined;
  deallocates: { name?: string } | undefined;
  transaction: TransactionControl | undefined;
  /** RangeVars that are the relation written by their statement. */
  private readonly targets = new WeakSet<object>();
  /** RangeVars of temporary tables created ON COMMIT DROP (gone at the end of the transaction). */
  private readonly commitDropped = new WeakSet<object>();
  private position: Position = { origin: 'statement', deferred: false };

  constructor(
    readonly state: AnalysisState,
    readonly bodyDepth: number,
    root: AstNode,
  ) {
    const type = unwrap(root)?.[0] ?? '';
    this.current = new OperationBuilder(kindOf(type), 'statement', 'statement', unwrap(root)?.[1]);
    this.operations.push(this.current);
  }

  /** Reads a literal's value: from now on the analysis depends on literal values. */
  readLiteral<T>(value: T): T {
    this.state.literalSensitive = true;
    return value;
  }

  /** Adds an effect to the current operation. */
  effect(effect: SqlEffect): void {
    this.current.effects.add(effect);
  }

  report(): StatementReport {
    const operations = this.operations.map((op) => op.build());
    const effects = sortEffects(new Set(operations.flatMap((op) => op.effects)));
    const relations = new Set<string>();
    const functions = new Set<string>();
    for (const op of operations) {
      for (const r of [...op.reads, ...op.writes]) relations.add(formatName(r));
      for (const f of op.functions) functions.add(formatName(f));
    }
    return {
      kind: operations[0]!.kind,
      effects,
      primaryEffect: effects[0],
      relations: [...relations].sort(),
      functions: [...functions].sort(),
      operations,
      ...(this.prepares ? { prepares: this.prepares } : {}),
      ...(this.executes !== undefined ? { executes: this.executes } : {}),
      ...(this.copy ? { copy: this.copy } : {}),
      ...(this.searchPath ? { searchPath: this.searchPath } : {}),
      ...(this.tempCreated.size > 0 ? { tempCreated: [...this.tempCreated.values()] } : {}),
      ...(this.indexesCreated.length > 0 ? { indexesCreated: this.indexesCreated } : {}),
      ...(this.discardsTemp ? { discardsTemp: true } : {}),
      ...(this.dropped.size > 0 ? { dropped: [...this.dropped.values()] } : {}),
      ...(this.renamed ? { renamed: this.renamed } : {}),
      ...(this.deallocates ? { deallocates: this.deallocates } : {}),
      ...(this.transaction ? { transaction: this.transaction } : {}),
    };
  }

  /** Runs `fn` inside a new operation of `kind` (or the current one if it is `node` itself). */
  private within(kind: StatementKind, node: AstNode, fn: (op: OperationBuilder) => void): void {
    if (this.current.node === node) {
      fn(this.current);
      return;
    }
    const { origin, deferred } = this.position;
    const op = new OperationBuilder(kind, origin, deferred ? 'none' : 'statement', node);
    this.operations.push(op);
    const saved = this.current;
    this.current = op;
    try {
      fn(op);
    } finally {
      this.current = saved;
    }
  }

  /** Walks `value` with new operations opened at `position`. */
  walkAt(value: unknown, depth: number, position: Partial<Position>): void {
    const saved = this.position;
    this.position = { ...saved, ...position, deferred: saved.deferred || position.deferred === true };
    try {
      this.walk(value, depth);
    } finally {
      this.position = saved;
    }
  }

  /** Merges the operations of a nested statement (a body, a function's SQL) into this one. */
  mergeNested(report: StatementReport, estimate: EstimateSource | undefined): void {
    const deferred = this.position.deferred;
    for (const op of [...report.operations, ...(report.prepares?.statement.operations ?? [])]) {
      const builder = new OperationBuilder(op.kind, this.position.origin, 'none', undefined);
      for (const e of op.effects) builder.effects.add(e);
      for (const r of op.reads) add(builder.reads, r);
      for (const w of op.writes) add(builder.writes, w);
      for (const f of op.functions) add(builder.functions, f);
      for (const e of op.tempExempt ?? []) builder.tempExempt.add(e);
      builder.filter = op.filter;
      builder.estimate =
        deferred || estimate === undefined ? 'none' : op.estimate === 'statement' ? estimate : op.estimate;
      this.operations.push(builder);
    }
    // What a body defined for later does to the session happens later, not now.
    if (deferred) return;
    if (report.searchPath) this.searchPath = report.searchPath;
    for (const t of report.tempCreated ?? []) this.tempCreated.set(formatName(t), t);
    this.indexesCreated.push(...(report.indexesCreated ?? []));
    if (report.discardsTemp) this.discardsTemp = true;
    for (const d of report.dropped ?? []) this.dropped.set(formatName(d), d);
    if (report.renamed) this.renamed = report.renamed;
  }

  walk(value: unknown, depth: number): void {
    if (depth > MAX_NODE_DEPTH) throw new SqlUnparseableError('statement nesting is too deep to analyse');
    if (Array.isArray(value)) {
      for (const item of value) this.walk(item, depth + 1);
      return;
    }
    if (!isObject(value)) return;
    // RangeVar appears both wrapped and bare (in typed fields such as `relation`).
    if (typeof value.relname === 'string') {
      const name: QualifiedName = {
        ...(typeof value.schemaname === 'string' ? { schema: value.schemaname } : {}),
        name: value.relname,
      };
      add(this.targets.has(value) ? this.current.writes : this.current.reads, name);
      if (
        value.relpersistence === 't' &&
        this.position.origin !== 'routine-definition' &&
        !this.commitDropped.has(value)
      ) {
        // Only a created relation carries `t` (CREATE TEMP ..., SELECT INTO TEMP).
        this.tempCreated.set(name.name, { name: name.name });
      }
    }
    for (const [key, child] of Object.entries(value)) {
      if (isObject(child) && /^[A-Z]/.test(key)) this.visitNode(key, child, depth + 1);
      else if (key === 'withClause' && isObject(child)) this.walkAt(child, depth + 1, { origin: 'cte' });
      else this.walk(child, depth + 1);
    }
  }

  private target(relation: unknown): void {
    if (isObject(relation)) this.targets.add(relation);
  }

  /** Handles one typed node, then walks its children unless the handler already did. */
  private visitNode(type: string, node: AstNode, depth: number): void {
    switch (type) {
      case 'SelectStmt':
        this.effect('read');
        if (node.intoClause) this.effect('ddl');
        this.resolveSettingNames(node);
        break;
      case 'InsertStmt':
        this.within('insert', node, () => {
          this.effect('write');
          this.target(node.relation);
          this.walk(node, depth);
        });
        return;
      case 'UpdateStmt':
      case 'DeleteStmt':
        this.within(type === 'UpdateStmt' ? 'update' : 'delete', node, (op) => {
          const others = new Set<string>();
          const from = type === 'UpdateStmt' ? node.fromClause : node.usingClause;
          if (Array.isArray(from)) for (const item of from) referenceNames(item, others);
          op.filter = analyseFilter(node.whereClause, { target: targetName(node.relation), others });
          this.effect(unfilteredEffect(op.kind, op.filter));
          this.target(node.relation);
          this.walk(node, depth);
        });
        return;
      case 'MergeStmt':
        this.visitMerge(node, depth);
        return;
      case 'TruncateStmt':
        this.effect('truncate');
        if (Array.isArray(node.relations)) for (const r of node.relations) this.target(unwrap(r)?.[1]);
        break;
      case 'DropStmt':
        this.visitDrop(node);
        break;
      case 'DropdbStmt':
        this.effect('drop-database');
        break;
      case 'AlterSystemStmt':
        this.effect('alter-system');
        break;
      case 'LoadStmt':
        this.effect('load-library');
        break;
      case 'LockStmt':
        this.effect('lock');
        break;
      case 'CopyStmt':
        if (node.is_program) this.effect('copy-program');
        else if (node.filename !== undefined) this.effect('copy-server-file');
        this.effect(node.is_from ? 'write' : 'read');
        if (node.is_from) this.target(node.relation);
        this.copy = this.describeCopy(node);
        if (node.query !== undefined) {
          const { query, ...rest } = node;
          this.walk(rest, depth);
          this.walkAt(query, depth, { origin: 'copy' });
          return;
        }
        break;
      case 'AlterTableStmt':
        this.target(node.relation);
        break;
      case 'AlterTableCmd':
        this.visitAlterTableCmd(node);
        break;
      case 'AlterDomainStmt':
        this.effect(node.subtype === 'X' ? 'destructive-ddl' : 'ddl');
        break;
      case 'RenameStmt':
        this.effect(node.renameType === 'OBJECT_ROLE' ? 'role-change' : 'ddl');
        this.target(node.relation);
        if (RELATION_RENAMES.has(String(node.renameType)) && typeof node.newname === 'string') {
          this.renamed = { from: relationName(node.relation), to: node.newname };
        }
        break;
      case 'CreateTableAsStmt':
        if (isObject(node.into) && node.into.onCommit === 'ONCOMMIT_DROP') this.commitDrop(node.into.rel);
        this.classifyByType(type);
        break;
      case 'DeallocateStmt':
        this.deallocates = typeof node.name === 'string' ? { name: node.name } : {};
        this.classifyByType(type);
        break;
      case 'TransactionStmt':
        this.transaction = transactionControl(node);
        this.classifyByType(type);
        break;
      case 'CreateStmt':
      case 'CreateSeqStmt':
      case 'ViewStmt':
        this.effect('ddl');
        this.target(node.relation ?? node.sequence ?? node.view);
        if (node.oncommit === 'ONCOMMIT_DROP') this.commitDrop(node.relation);
        else this.noteTempSchema(node.relation ?? node.sequence ?? node.view);
        break;
      case 'IndexStmt':
        this.effect('ddl');
        this.target(node.relation);
        if (typeof node.idxname === 'string' && isObject(node.relation)) {
          const on = node.relation;
          this.indexesCreated.push({
            name: node.idxname,
            on: {
              ...(typeof on.schemaname === 'string' ? { schema: on.schemaname } : {}),
              name: String(on.relname),
            },
          });
        }
        break;
      case 'VariableSetStmt':
        this.visitSet(node);
        break;
      case 'DiscardStmt':
        this.effect('session');
        if (node.target === 'DISCARD_ALL' || node.target === 'DISCARD_TEMP') this.discardsTemp = true;
        if (node.target === 'DISCARD_ALL') this.searchPath = { value: 'default', local: false };
        break;
      case 'FuncCall':
        this.visitFunctionCall(node);
        break;
      case 'CallStmt':
        if (isObject(node.funccall)) this.visitFunctionCall(node.funccall);
        break;
      case 'CreateTrigStmt':
      case 'RuleStmt':
        this.recordFunction(stringList(node.funcname));
        this.effect('ddl');
        this.effect('persistent-object');
        // A trigger or rule on the session's own temporary table dies with it.
        this.current.tempExempt.add('persistent-object');
        this.target(node.relation);
        if (type === 'RuleStmt') {
          const { actions, ...rest } = node;
          this.walk(rest, depth);
          this.walkAt(actions, depth, { origin: 'routine-definition', deferred: true });
          return;
        }
        break;
      case 'CreateEventTrigStmt':
        this.recordFunction(stringList(node.funcname));
        this.effect('ddl');
        this.effect('persistent-object');
        break;
      case 'ExplainStmt':
        this.visitExplain(node, depth);
        return;
      case 'PrepareStmt':
        this.visitPrepare(node, depth);
        return;
      case 'ExecuteStmt':
        this.executes = String(node.name ?? '');
        this.effect('execute-prepared');
        break;
      case 'DoStmt':
        this.visitRoutine(node.args, 'DO');
        break;
      case 'CreateFunctionStmt':
        this.effect('ddl');
        if (isSecurityDefiner(node.options)) this.effect('persistent-object');
        this.visitRoutine(node.options, 'FUNCTION');
        this.walkAt(node, depth, { origin: 'routine-definition', deferred: true });
        return;
      case 'AlterFunctionStmt':
        this.effect('ddl');
        if (isSecurityDefiner(node.actions)) this.effect('persistent-object');
        break;
      default:
        this.classifyByType(type);
    }
    this.walk(node, depth);
  }

  private commitDrop(relation: unknown): void {
    if (isObject(relation)) this.commitDropped.add(relation);
  }

  private classifyByType(type: string): void {
    if (PERSISTENT_STATEMENTS.has(type)) this.effect('persistent-object');
    if (ROLE_STATEMENTS.has(type)) this.effect('role-change');
    else if (PRIVILEGE_STATEMENTS.has(type)) this.effect('privilege-change');
    else if (MAINTENANCE_STATEMENTS.has(type)) this.effect('maintenance');
    else if (type === 'TransactionStmt') this.effect('transaction');
    else if (SESSION_STATEMENTS.has(type)) this.effect('session');
    else if (type.endsWith('Stmt') && DDL_PREFIX.test(type)) this.effect('ddl');
  }

  /** `CREATE TABLE pg_temp.x`: a temporary relation without the TEMP keyword. */
  private noteTempSchema(relation: unknown): void {
    if (isObject(relation) && relation.schemaname === 'pg_temp' && typeof relation.relname === 'string') {
      this.tempCreated.set(relation.relname, { name: relation.relname });
    }
  }

  private visitMerge(node: AstNode, depth: number): void {
    this.within('merge', node, () => {
      this.effect('write');
      this.target(node.relation);
      const target = targetName(node.relation);
      const others = new Set<string>();
      referenceNames(node.sourceRelation, others);
      const on = analyseFilter(node.joinCondition, { target, others });
      const { mergeWhenClauses, ...rest } = node;
      this.walk(rest, depth);
      for (const clause of Array.isArray(mergeWhenClauses) ? mergeWhenClauses : []) {
        const when = unwrap(clause)?.[1];
        const kind = when ? MERGE_COMMANDS[String(when.commandType)] : undefined;
        if (!when || !kind) {
          this.walk(clause, depth);
          continue;
        }
        const saved = this.position;
        this.position = { ...saved, origin: 'merge-action' };
        try {
          this.within(kind, when, (op) => {
            add(op.writes, relationName(node.relation));
            this.effect('write');
            if (kind !== 'insert') {
              const own =
                when.condition === undefined ? undefined : analyseFilter(when.condition, { target, others });
              op.filter =
                when.matchKind === 'MERGE_WHEN_MATCHED'
                  ? combineFilters(on, own)
                  : // NOT MATCHED BY SOURCE acts on every target row without a source row.
                    (own ?? { kind: 'unfiltered', reason: 'WHEN NOT MATCHED BY SOURCE without a condition' });
              this.effect(unfilteredEffect(kind, op.filter));
            }
            this.walk(when, depth);
          });
        } finally {
          this.position = saved;
        }
      }
    });
  }

  private visitAlterTableCmd(node: AstNode): void {
    const subtype = String(node.subtype);
    if (subtype === 'AT_ChangeOwner') {
      this.effect('privilege-change');
      return;
    }
    this.effect('ddl');
    const def = unwrap(node.def);
    const using =
      subtype === 'AT_AlterColumnType' && def?.[0] === 'ColumnDef' && def[1].raw_default !== undefined;
    if (DESTRUCTIVE_ALTER.has(subtype) || using) {
      this.effect('destructive-ddl');
      this.current.tempExempt.add('destructive-ddl');
    }
  }

  private visitDrop(node: AstNode): void {
    const removeType = node.removeType;
    const objects = Array.isArray(node.objects) ? node.objects : [];
    const names = objects.flatMap((object) => {
      const u = unwrap(object);
      const parsed = u?.[0] === 'List' ? qualified(stringList(u[1].items)) : undefined;
      return parsed ? [parsed] : [];
    });
    if (DROPPED_RELATIONS.has(String(removeType))) for (const name of names) add(this.dropped, name);
    if (removeType === 'OBJECT_TABLE' || removeType === 'OBJECT_FOREIGN_TABLE') {
      this.effect('drop-table');
      this.current.tempExempt.add('drop-table');
      for (const name of names) add(this.current.writes, name);
    } else if (removeType === 'OBJECT_INDEX') {
      this.effect('destructive-ddl');
      this.current.tempExempt.add('destructive-ddl');
      for (const name of names) add(this.current.writes, name);
    } else if (removeType === 'OBJECT_SCHEMA') {
      this.effect('drop-schema');
    } else {
      this.effect('drop');
      if (
        removeType === 'OBJECT_VIEW' ||
        removeType === 'OBJECT_SEQUENCE' ||
        removeType === 'OBJECT_MATVIEW'
      ) {
        for (const name of names) add(this.current.writes, name);
      }
    }
    this.effect('ddl');
  }

  private visitSet(node: AstNode): void {
    // Setting names are case-insensitive: SET "ROLE" = ... is SET ROLE.
    const name = typeof node.name === 'string' ? node.name.toLowerCase() : '';
    const setsValue = node.kind === 'VAR_SET_VALUE';
    const value = setsValue ? this.readLiteral(firstConstant(node.args)) : undefined;
    if (node.kind === 'VAR_RESET_ALL') this.searchPath = { value: 'default', local: false };
    if (IDENTITY_SETTINGS.has(name)) {
      const resets = !setsValue || (name === 'role' && value?.toLowerCase() === 'none');
      this.effect(resets ? 'session' : 'session-identity');
    } else if (name === 'standard_conforming_strings') {
      // libpg_query lexes as if this were on; off would let the server see other statements.
      this.effect(setsValue && TRUE_VALUES.has(value?.toLowerCase() ?? '') ? 'session' : 'unsafe-setting');
    } else if (name === 'client_encoding') {
      this.effect(setsValue && isAsciiSafeEncoding(value ?? '') ? 'session' : 'unsafe-setting');
    } else {
      if (name === 'search_path') this.visitSearchPathSet(node);
      this.effect(
        node.kind === 'VAR_SET_MULTI' && name.startsWith('TRANSACTION') ? 'transaction' : 'session',
      );
    }
  }

  private visitSearchPathSet(node: AstNode): void {
    const local = node.is_local === true;
    if (node.kind === 'VAR_SET_DEFAULT' || node.kind === 'VAR_RESET') {
      this.searchPath = { value: 'default', local };
    } else if (node.kind === 'VAR_SET_VALUE') {
      const args = Array.isArray(node.args) ? node.args : [];
      const values = this.readLiteral(args.map((a) => constantString(a)));
      // Each item is one schema name, even with commas inside (SET search_path = 'a, b' is one).
      this.searchPath = {
        value: values.every((v) => v !== undefined) ? (values as string[]) : 'unknown',
        local,
      };
    }
  }

  private describeCopy(node: AstNode): CopyDescription {
    const relation = isObject(node.relation) ? node.relation : undefined;
    const options = Array.isArray(node.options) ? node.options : [];
    return {
      ...(relation && typeof relation.relname === 'string'
        ? {
            relation: {
              ...(typeof relation.schemaname === 'string' ? { schema: relation.schemaname } : {}),
              table: relation.relname,
            },
          }
        : {}),
      ...(Array.isArray(node.attlist) ? { columns: stringList(node.attlist) } : {}),
      from: node.is_from === true,
      client: !node.is_program && node.filename === undefined,
      // Option values (DELIMITER ';', NULL 'x') are literals: the verdict cache must compare them.
      options: this.readLiteral(
        options.flatMap((option) => {
          const u = unwrap(option);
          return u?.[0] === 'DefElem' ? [[String(u[1].defname), copyOptionValue(u[1].arg)] as const] : [];
        }),
      ),
    };
  }

  private recordFunction(names: string[]): string | undefined {
    const own = names.at(-1);
    if (own === undefined) return undefined;
    const name = qualified(names);
    if (name) add(this.current.functions, name);
    if (isDangerousFunction(own)) this.effect('dangerous-function');
    return own;
  }

  /** `set_config` calls whose name argument is pinned by a `pg_settings` filter (see below). */
  private readonly settingNames = new WeakMap<AstNode, string>();

  /**
   * pg_dump runs `SELECT set_config(name, ...) FROM pg_settings WHERE name = '<setting>'`: the
   * column `name` of the only relation can then only be `<setting>`. Calls of that shape in the
   * select list (outside subqueries) are classified by that constant.
   */
  private resolveSettingNames(select: AstNode): void {
    const from = Array.isArray(select.fromClause) ? select.fromClause : [];
    const relation = from.length === 1 ? unwrap(from[0]) : undefined;
    if (relation?.[0] !== 'RangeVar' || relation[1].relname !== 'pg_settings' || relation[1].alias) return;
    if (relation[1].schemaname !== undefined && relation[1].schemaname !== 'pg_catalog') return;
    const pinned = pinnedSettingName(select.whereClause);
    if (pinned === undefined || !Array.isArray(select.targetList)) return;
    const setting = this.readLiteral(pinned);
    const visit = (value: unknown): void => {
      if (Array.isArray(value)) {
        for (const item of value) visit(item);
        return;
      }
      if (!isObject(value)) return;
      for (const [key, child] of Object.entries(value)) {
        if (key === 'SubLink') continue;
        if (
          key === 'FuncCall' &&
          isObject(child) &&
          Array.isArray(child.args) &&
          isSettingsName(child.args[0])
        ) {
          this.settingNames.set(child, setting);
        }
        visit(child);
      }
    };
    visit(select.targetList);
  }

  private visitFunctionCall(node: AstNode): void {
    const own = this.recordFunction(stringList(node.funcname));
    if (own === undefined) return;
    const use = SQL_TEXT_FUNCTIONS.get(own);
    if (use) this.visitSqlTextFunction(use, Array.isArray(node.args) ? node.args : []);
    if (own !== 'set_config') return;
    const args = Array.isArray(node.args) ? node.args : [];
    // set_config('role', ...) is SET ROLE; an unknown setting name is treated as the worst case.
    const setting = (this.settingNames.get(node) ?? this.readLiteral(constantString(args[0])))?.toLowerCase();
    if (setting === undefined || IDENTITY_SETTINGS.has(setting)) {
      this.effect('session-identity');
    } else if (setting === 'standard_conforming_strings' || setting === 'client_encoding') {
      this.effect('unsafe-setting');
    } else {
      this.effect('session');
    }
    if (setting === undefined || setting === 'search_path') {
      const text = this.readLiteral(constantString(args[1]));
      const value = text === undefined || setting === undefined ? undefined : parseSearchPathValue(text);
      const local = this.readLiteral(unwrap(args[2])?.[0] === 'A_Const' ? stringOrBool(args[2]) : undefined);
      this.searchPath = { value: value ?? 'unknown', local: local === true };
    }
  }

  /** query_to_xml('SELECT ...'), table_to_xml('t', ...), dblink(..., 'SQL'), ... */
  private visitSqlTextFunction(use: SqlTextUse, args: unknown[]): void {
    const text = (i: number) => this.readLiteral(constantString(args[i]));
    switch (use.kind) {
      case 'query': {
        for (const i of use.args(args.length, (k) => constantString(args[k]) !== undefined)) {
          const sql = text(i);
          if (sql === undefined) {
            this.effect('dynamic-sql');
            continue;
          }
          this.mergeSql(sql, 'sql-function');
        }
        return;
      }
      case 'relation': {
        const name = text(use.arg);
        const parsed = name === undefined ? undefined : parseQualifiedName(name);
        if (parsed) add(this.current.reads, parsed);
        else this.effect('dynamic-sql');
        this.effect('read');
        return;
      }
      case 'schema': {
        const schema = text(use.arg);
        const parts = schema === undefined ? undefined : parseQualifiedName(schema);
        if (parts && parts.schema === undefined) add(this.current.reads, { schema: parts.name, name: '*' });
        else this.effect('dynamic-sql');
        this.effect('read');
        return;
      }
      case 'database':
        add(this.current.reads, { schema: '*', name: '*' });
        this.effect('read');
        return;
      case 'cursor':
        this.effect('read');
        return;
    }
  }

  private visitExplain(node: AstNode, depth: number): void {
    this.effect('read');
    // Plain EXPLAIN plans without executing; any ANALYZE option (even `ANALYZE false`) counts as running.
    if (findOption(node.options, 'analyze')) this.walkAt(node.query, depth, { origin: 'explain-analyze' });
  }

  private visitPrepare(node: AstNode, depth: number): void {
    const inner = new StatementWalker(this.state, this.bodyDepth, node.query as AstNode);
    inner.walk(node.query, depth);
    const statement = inner.report();
    // Refuse at PREPARE time what EXECUTE would run, and remember it for EXECUTE.
    const saved = this.position;
    this.position = { origin: 'prepare', deferred: true };
    try {
      this.mergeNested(statement, undefined);
    } finally {
      this.position = saved;
    }
    this.prepares = { name: String(node.name ?? ''), statement };
  }

  /** `DO` blocks and routine definitions: analyse the body in its language. */
  private visitRoutine(options: unknown, what: 'DO' | 'FUNCTION'): void {
    let language = what === 'DO' ? 'plpgsql' : 'sql';
    const bodies: string[] = [];
    let hasBody = false;
    for (const option of Array.isArray(options) ? options : []) {
      const u = unwrap(option);
      if (u?.[0] !== 'DefElem') continue;
      const arg = u[1].arg;
      if (u[1].defname === 'language') {
        language = this.readLiteral(stringList([arg])[0] ?? language);
      } else if (u[1].defname === 'as') {
        hasBody = true;
        const list = unwrap(arg);
        bodies.push(
          ...this.readLiteral(list?.[0] === 'List' ? stringList(list[1].items) : stringList([arg])),
        );
      }
    }
    if (!hasBody) return; // new-style SQL bodies (BEGIN ATOMIC / RETURN) are walked as nodes
    const position: Position =
      what === 'DO'
        ? { origin: 'routine', deferred: false }
        : { origin: 'routine-definition', deferred: true };
    const saved = this.position;
    this.position = { origin: position.origin, deferred: saved.deferred || position.deferred };
    try {
      this.analyseBody(language, bodies, what);
    } finally {
      this.position = saved;
    }
  }

  /** Analyses a routine body in `language` into this statement; unreadable languages are opaque. */
  analyseBody(language: string, bodies: readonly string[], what: 'DO' | 'FUNCTION'): void {
    if (this.bodyDepth >= MAX_BODY_DEPTH) throw new SqlUnparseableError('routine bodies are nested too deep');
    if (language === 'sql') {
      for (const body of bodies) this.mergeSql(body, this.position.origin);
    } else if (language === 'plpgsql') {
      walkPlpgsqlBody(this, bodies[0] ?? '', what);
    } else {
      // C, internal, plpython3u, plperlu, ...: nothing we can read.
      this.effect('opaque-code');
    }
  }

  /** Classifies nested SQL text (a routine body, a literal EXECUTE, a function's SQL) into this statement. */
  mergeSql(sql: string, origin: OperationOrigin): void {
    if (sql.trim() === '') return;
    if (this.bodyDepth >= MAX_BODY_DEPTH) throw new SqlUnparseableError('nested SQL is nested too deep');
    const saved = this.position;
    this.position = { ...saved, origin: saved.origin === 'routine-definition' ? saved.origin : origin };
    try {
      for (const raw of parseStatements(sql)) {
        const report = analyseStatement(raw, this.state, this.bodyDepth + 1);
        this.mergeNested(report, { sql: raw.text });
      }
    } finally {
      this.position = saved;
    }
  }
}

/** RenameStmt types that rename a relation (its `relation` and `newname`). */
const RELATION_RENAMES = new Set([
  'OBJECT_TABLE',
  'OBJECT_INDEX',
  'OBJECT_VIEW',
  'OBJECT_SEQUENCE',
  'OBJECT_MATVIEW',
  'OBJECT_FOREIGN_TABLE',
]);

/** DropStmt types whose objects are relations (what `dropped` reports). */
const DROPPED_RELATIONS = new Set([
  'OBJECT_TABLE',
  'OBJECT_FOREIGN_TABLE',
  'OBJECT_INDEX',
  'OBJECT_VIEW',
  'OBJECT_SEQUENCE',
  'OBJECT_MATVIEW',
]);

const TRANSACTION_KINDS: Record<string, TransactionControl> = {
  TRANS_STMT_BEGIN: 'begin',
  TRANS_STMT_START: 'begin',
  TRANS_STMT_COMMIT: 'commit',
  TRANS_STMT_ROLLBACK: 'rollback',
  TRANS_STMT_SAVEPOINT: 'savepoint',
  TRANS_STMT_RELEASE: 'release',
  TRANS_STMT_ROLLBACK_TO: 'rollback-to',
  TRANS_STMT_PREPARE: 'prepare',
};

/** What a TransactionStmt does to the block (COMMIT/ROLLBACK PREPARED act on another transaction). */
function transactionControl(node: AstNode): TransactionControl | undefined {
  const kind = TRANSACTION_KINDS[String(node.kind)];
  if (node.chain === true && kind === 'commit') return 'commit-and-chain';
  if (node.chain === true && kind === 'rollback') return 'rollback-and-chain';
  return kind;
}

/** Analyses one raw statement (`bodyDepth`: how deep in nested bodies it sits). */
export function analyseStatement(
  raw: RawStatement,
  state: AnalysisState,
  bodyDepth: number,
): StatementReport {
  const walker = new StatementWalker(state, bodyDepth, raw.stmt);
  walker.walk(raw.stmt, 0);
  return walker.report();
}

/**
 * Parses and classifies `sql` (one or many statements).
 * @throws SqlUnparseableError when PostgreSQL's parser (or PL/pgSQL's) cannot read the text.
 */
export function analyseSql(sql: string): SqlAnalysis {
  const state: AnalysisState = { literalSensitive: false };
  const statements = parseStatements(sql).map((raw) => analyseStatement(raw, state, 0));
  return { statements, literalSensitive: state.literalSensitive };
}

/**
 * One report per statement of `sql`: its kind, every effect found anywhere inside it, the
 * relations and functions it names, and the operations it executes.
 * @throws SqlUnparseableError when the text cannot be parsed.
 */
export function classify(sql: string): StatementReport[] {
  return [...analyseSql(sql).statements];
}

/**
 * Analyses a routine body as it runs when called (`prosrc` in `language`), for the function
 * bodies a {@link RoutineResolver} reads. The first operation is a placeholder for the call.
 * @throws SqlUnparseableError when the body cannot be read.
 */
export function analyseRoutineBody(language: string, body: string): StatementReport {
  const state: AnalysisState = { literalSensitive: false };
  const walker = new StatementWalker(state, 1, { SelectStmt: {} });
  walker.analyseBody(language, [body], 'FUNCTION');
  const report = walker.report();
  return { ...report, operations: report.operations.slice(1) };
}
