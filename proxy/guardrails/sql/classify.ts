/**
 * Classifies SQL text into one report per statement by walking PostgreSQL's own parse tree:
 * every subquery, CTE, `EXPLAIN ANALYZE` target, `PREPARE` body, SQL and PL/pgSQL routine body
 * (`DO`, `CREATE FUNCTION/PROCEDURE`) and function call found anywhere adds its effects.
 *
 * Literal values are read in few places (routine bodies, `SET` values, `set_config` names); each
 * read marks the analysis `literalSensitive`, which tells the verdict cache that a statement of
 * the same shape with other literals may not reuse this result.
 */

import { isDangerousFunction, type SqlEffect, type StatementKind, sortEffects } from './effects.ts';
import { isAsciiSafeEncoding } from './encodings.ts';
import { SqlUnparseableError } from './errors.ts';
import { type AstNode, parsePlpgsql, parseStatements, type RawStatement } from './parser.ts';

/** What one statement is and does. */
export interface StatementReport {
  /** The top-level statement's kind. */
  readonly kind: StatementKind;
  /** Every effect found anywhere inside, most consequential first. */
  readonly effects: readonly SqlEffect[];
  /** The most consequential effect (the statement's classification), if any. */
  readonly primaryEffect: SqlEffect | undefined;
  /** Relations named anywhere inside, as PostgreSQL folds them (`public.customers`, `t`). */
  readonly relations: readonly string[];
  /** Functions called anywhere inside, folded and qualified as written (`pg_catalog.pg_sleep`). */
  readonly functions: readonly string[];
  /** For `PREPARE name AS ...`: the name and the report of the prepared statement. */
  readonly prepares?: { readonly name: string; readonly statement: StatementReport };
  /** For `EXECUTE name`: the prepared statement's name, resolved by the caller's session map. */
  readonly executes?: string;
  /** For `COPY`: what it copies, where, and its options as written. */
  readonly copy?: CopyDescription;
}

/**
 * A `COPY` statement's target and options, read from the parse tree. Option values are
 * `true`/`false` for booleans, a string for words and strings, `'*'` or a column list for
 * `FORCE_QUOTE`-like options, `undefined` for a bare option (`HEADER`) and `null` when unreadable.
 */
export interface CopyDescription {
  /** The table form's relation; undefined for `COPY (query)`. */
  readonly relation?: { readonly schema?: string; readonly table: string };
  /** The column list as written (folded), if any. */
  readonly columns?: readonly string[];
  /** `COPY ... FROM` (true) or `COPY ... TO` (false). */
  readonly from: boolean;
  /** True for `STDIN`/`STDOUT` (not a server file or program). */
  readonly client: boolean;
  readonly options: readonly (readonly [string, CopyOptionValue])[];
}

/** The value of one `COPY` option (see {@link CopyDescription}). */
export type CopyOptionValue = string | boolean | readonly string[] | undefined | null;

/** Result of {@link analyseSql}. */
export interface SqlAnalysis {
  readonly statements: readonly StatementReport[];
  /** True when a literal's value influenced the result (the cache must compare literals). */
  readonly literalSensitive: boolean;
}

/** Deepest AST nesting walked; deeper trees are refused as unparseable. */
const MAX_NODE_DEPTH = 1_000;
/** Deepest nesting of routine bodies in routine bodies (`DO` running `EXECUTE 'DO ...'`). */
const MAX_BODY_DEPTH = 8;

const ROLE_STATEMENTS = new Set(['CreateRoleStmt', 'AlterRoleStmt', 'DropRoleStmt', 'AlterRoleSetStmt']);
const PRIVILEGE_STATEMENTS = new Set([
  'GrantStmt',
  'GrantRoleStmt',
  'AlterDefaultPrivilegesStmt',
  'ReassignOwnedStmt',
  'DropOwnedStmt',
  'AlterOwnerStmt',
]);
const SESSION_STATEMENTS = new Set([
  'VariableSetStmt',
  'VariableShowStmt',
  'DiscardStmt',
  'DeallocateStmt',
  'ListenStmt',
  'UnlistenStmt',
  'NotifyStmt',
  'FetchStmt',
  'ClosePortalStmt',
  'DeclareCursorStmt',
]);
const MAINTENANCE_STATEMENTS = new Set(['VacuumStmt', 'ClusterStmt', 'ReindexStmt', 'CheckPointStmt']);
const DDL_PREFIX =
  /^(Create|Alter|Define|Drop|Rename|Comment|Composite|SecLabel|Import|Refresh|View|Index|Rule)/;

const SIMPLE_KINDS: Record<string, StatementKind> = {
  SelectStmt: 'select',
  InsertStmt: 'insert',
  UpdateStmt: 'update',
  DeleteStmt: 'delete',
  MergeStmt: 'merge',
  TruncateStmt: 'truncate',
  CopyStmt: 'copy',
  TransactionStmt: 'transaction',
  ExplainStmt: 'explain',
  PrepareStmt: 'prepare',
  ExecuteStmt: 'execute',
  DoStmt: 'procedural',
  CallStmt: 'procedural',
  LockStmt: 'utility',
  LoadStmt: 'utility',
  AlterSystemStmt: 'ddl',
  DropdbStmt: 'ddl',
};

function kindOf(type: string): StatementKind {
  const simple = SIMPLE_KINDS[type];
  if (simple) return simple;
  if (ROLE_STATEMENTS.has(type)) return 'role';
  if (PRIVILEGE_STATEMENTS.has(type)) return 'privilege';
  if (SESSION_STATEMENTS.has(type)) return 'session';
  if (MAINTENANCE_STATEMENTS.has(type)) return 'maintenance';
  if (DDL_PREFIX.test(type)) return 'ddl';
  return 'utility';
}

function isObject(value: unknown): value is AstNode {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The single `{ Type: fields }` entry of a node, if it is one. */
function unwrap(node: unknown): [string, AstNode] | undefined {
  if (!isObject(node)) return undefined;
  const keys = Object.keys(node);
  if (keys.length !== 1) return undefined;
  const inner = node[keys[0]!];
  return isObject(inner) ? [keys[0]!, inner] : undefined;
}

/** Names from a list of `{ String: { sval } }` nodes. */
function stringList(list: unknown): string[] {
  if (!Array.isArray(list)) return [];
  return list.flatMap((item) => {
    const u = unwrap(item);
    return u && u[0] === 'String' && typeof u[1].sval === 'string' ? [u[1].sval] : [];
  });
}

/** Deep search for any of the given node types. */
function containsNode(value: unknown, types: ReadonlySet<string>): boolean {
  if (Array.isArray(value)) return value.some((v) => containsNode(v, types));
  if (!isObject(value)) return false;
  for (const [key, child] of Object.entries(value)) {
    if (types.has(key) || containsNode(child, types)) return true;
  }
  return false;
}

const ROW_DEPENDENT = new Set(['ColumnRef', 'SubLink', 'CurrentOfExpr']);
const TRUE_VALUES = new Set(['on', 'true', 'yes', '1']);
/**
 * Settings that change who the session acts as, by `SET` or `set_config`. (Other settings that
 * widen privileges, such as `session_replication_role`, are superuser-only.)
 */
const IDENTITY_SETTINGS = new Set(['role', 'session_authorization']);

/** Shared across every statement of one analysis. */
interface AnalysisState {
  literalSensitive: boolean;
}

/** Accumulates one statement's facts while walking its tree. */
class StatementWalker {
  readonly effects = new Set<SqlEffect>();
  readonly relations = new Set<string>();
  readonly functions = new Set<string>();
  prepares: { name: string; statement: StatementReport } | undefined;
  executes: string | undefined;
  copy: CopyDescription | undefined;

  constructor(
    private readonly state: AnalysisState,
    private readonly bodyDepth: number,
  ) {}

  /** Reads a literal's value: from now on the analysis depends on literal values. */
  private readLiteral<T>(value: T): T {
    this.state.literalSensitive = true;
    return value;
  }

  /** Merges another walker's or report's facts into this one. */
  merge(report: Pick<StatementReport, 'effects' | 'relations' | 'functions'>): void {
    for (const e of report.effects) this.effects.add(e);
    for (const r of report.relations) this.relations.add(r);
    for (const f of report.functions) this.functions.add(f);
  }

  report(kind: StatementKind): StatementReport {
    const effects = sortEffects(this.effects);
    return {
      kind,
      effects,
      primaryEffect: effects[0],
      relations: [...this.relations].sort(),
      functions: [...this.functions].sort(),
      ...(this.prepares ? { prepares: this.prepares } : {}),
      ...(this.executes !== undefined ? { executes: this.executes } : {}),
      ...(this.copy ? { copy: this.copy } : {}),
    };
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
      const schema = typeof value.schemaname === 'string' ? `${value.schemaname}.` : '';
      this.relations.add(schema + value.relname);
    }
    for (const [key, child] of Object.entries(value)) {
      if (isObject(child) && /^[A-Z]/.test(key)) this.visitNode(key, child, depth + 1);
      else this.walk(child, depth + 1);
    }
  }

  /** Handles one typed node, then walks its children unless the handler already did. */
  private visitNode(type: string, node: AstNode, depth: number): void {
    switch (type) {
      case 'SelectStmt':
        this.effects.add('read');
        if (node.intoClause) this.effects.add('ddl');
        this.resolveSettingNames(node);
        break;
      case 'InsertStmt':
      case 'MergeStmt':
        this.effects.add('write');
        break;
      case 'UpdateStmt':
      case 'DeleteStmt': {
        const filtered = node.whereClause !== undefined && containsNode(node.whereClause, ROW_DEPENDENT);
        this.effects.add(
          filtered ? 'write' : type === 'UpdateStmt' ? 'update-unfiltered' : 'delete-unfiltered',
        );
        break;
      }
      case 'TruncateStmt':
        this.effects.add('truncate');
        break;
      case 'DropStmt':
        this.visitDrop(node);
        break;
      case 'DropdbStmt':
        this.effects.add('drop-database');
        break;
      case 'AlterSystemStmt':
        this.effects.add('alter-system');
        break;
      case 'LoadStmt':
        this.effects.add('load-library');
        break;
      case 'LockStmt':
        this.effects.add('lock');
        break;
      case 'CopyStmt':
        if (node.is_program) this.effects.add('copy-program');
        else if (node.filename !== undefined) this.effects.add('copy-server-file');
        this.effects.add(node.is_from ? 'write' : 'read');
        this.copy = this.describeCopy(node);
        break;
      case 'AlterTableCmd':
        this.effects.add(node.subtype === 'AT_ChangeOwner' ? 'privilege-change' : 'ddl');
        break;
      case 'RenameStmt':
        this.effects.add(node.renameType === 'OBJECT_ROLE' ? 'role-change' : 'ddl');
        break;
      case 'VariableSetStmt':
        this.visitSet(node);
        break;
      case 'FuncCall':
        this.visitFunctionCall(node);
        break;
      case 'CallStmt':
        if (isObject(node.funccall)) this.visitFunctionCall(node.funccall);
        break;
      case 'CreateTrigStmt':
      case 'CreateEventTrigStmt':
        this.recordFunction(stringList(node.funcname));
        this.effects.add('ddl');
        break;
      case 'ExplainStmt':
        this.visitExplain(node, depth);
        return;
      case 'PrepareStmt':
        this.visitPrepare(node, depth);
        return;
      case 'ExecuteStmt':
        this.executes = String(node.name ?? '');
        this.effects.add('execute-prepared');
        break;
      case 'DoStmt':
        this.visitRoutine(node.args, 'DO');
        break;
      case 'CreateFunctionStmt':
        this.effects.add('ddl');
        this.visitRoutine(node.options, 'FUNCTION');
        break;
      default:
        this.classifyByType(type);
    }
    this.walk(node, depth);
  }

  private classifyByType(type: string): void {
    if (ROLE_STATEMENTS.has(type)) this.effects.add('role-change');
    else if (PRIVILEGE_STATEMENTS.has(type)) this.effects.add('privilege-change');
    else if (MAINTENANCE_STATEMENTS.has(type)) this.effects.add('maintenance');
    else if (type === 'TransactionStmt') this.effects.add('transaction');
    else if (SESSION_STATEMENTS.has(type)) this.effects.add('session');
    else if (type.endsWith('Stmt') && DDL_PREFIX.test(type)) this.effects.add('ddl');
  }

  private visitDrop(node: AstNode): void {
    const removeType = node.removeType;
    if (removeType === 'OBJECT_TABLE' || removeType === 'OBJECT_FOREIGN_TABLE') {
      this.effects.add('drop-table');
      if (Array.isArray(node.objects)) {
        for (const object of node.objects) {
          const u = unwrap(object);
          if (u && u[0] === 'List') this.relations.add(stringList(u[1].items).join('.'));
        }
      }
    } else if (removeType === 'OBJECT_SCHEMA') {
      this.effects.add('drop-schema');
    } else {
      this.effects.add('drop');
    }
    this.effects.add('ddl');
  }

  private visitSet(node: AstNode): void {
    // Setting names are case-insensitive: SET "ROLE" = ... is SET ROLE.
    const name = typeof node.name === 'string' ? node.name.toLowerCase() : '';
    const setsValue = node.kind === 'VAR_SET_VALUE';
    const value = setsValue ? this.readLiteral(firstConstant(node.args)) : undefined;
    if (IDENTITY_SETTINGS.has(name)) {
      const resets = !setsValue || (name === 'role' && value?.toLowerCase() === 'none');
      this.effects.add(resets ? 'session' : 'session-identity');
    } else if (name === 'standard_conforming_strings') {
      // libpg_query lexes as if this were on; off would let the server see other statements.
      this.effects.add(
        setsValue && TRUE_VALUES.has(value?.toLowerCase() ?? '') ? 'session' : 'unsafe-setting',
      );
    } else if (name === 'client_encoding') {
      this.effects.add(setsValue && isAsciiSafeEncoding(value ?? '') ? 'session' : 'unsafe-setting');
    } else {
      this.effects.add(
        node.kind === 'VAR_SET_MULTI' && name.startsWith('TRANSACTION') ? 'transaction' : 'session',
      );
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
    this.functions.add(names.join('.'));
    if (isDangerousFunction(own)) this.effects.add('dangerous-function');
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
    if (own !== 'set_config') return;
    // set_config('role', ...) is SET ROLE; an unknown setting name is treated as the worst case.
    const setting = (
      this.settingNames.get(node) ??
      this.readLiteral(Array.isArray(node.args) ? constantString(node.args[0]) : undefined)
    )?.toLowerCase();
    if (setting === undefined || IDENTITY_SETTINGS.has(setting)) {
      this.effects.add('session-identity');
    } else if (setting === 'standard_conforming_strings' || setting === 'client_encoding') {
      this.effects.add('unsafe-setting');
    } else {
      this.effects.add('session');
    }
  }

  private visitExplain(node: AstNode, depth: number): void {
    const analyze =
      Array.isArray(node.options) &&
      node.options.some((o) => {
        const u = unwrap(o);
        return u?.[0] === 'DefElem' && u[1].defname === 'analyze';
      });
    this.effects.add('read');
    // Plain EXPLAIN plans without executing; any ANALYZE option (even `ANALYZE false`) counts as running.
    if (analyze) this.walk(node.query, depth);
  }

  private visitPrepare(node: AstNode, depth: number): void {
    const inner = new StatementWalker(this.state, this.bodyDepth);
    inner.walk(node.query, depth);
    const type = unwrap(node.query)?.[0] ?? '';
    const statement = inner.report(kindOf(type));
    // Refuse at PREPARE time what EXECUTE would run, and remember it for EXECUTE.
    this.merge(statement);
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
    if (this.bodyDepth >= MAX_BODY_DEPTH) throw new SqlUnparseableError('routine bodies are nested too deep');
    if (language === 'sql') {
      for (const body of bodies) this.mergeSql(body);
    } else if (language === 'plpgsql') {
      this.visitPlpgsql(bodies[0] ?? '', what);
    } else {
      // C, internal, plpython3u, plperlu, ...: nothing we can read.
      this.effects.add('opaque-code');
    }
  }

  /** Classifies nested SQL text (a routine body, a literal EXECUTE) into this statement. */
  private mergeSql(sql: string): void {
    if (sql.trim() === '') return;
    for (const report of analyseStatements(parseStatements(sql), this.state, this.bodyDepth + 1)) {
      this.merge(report);
      if (report.prepares) this.merge(report.prepares.statement);
    }
  }

  private visitPlpgsql(body: string, what: 'DO' | 'FUNCTION'): void {
    let tag = '$warden$';
    for (let n = 0; body.includes(tag); n++) tag = `$warden${n}$`;
    const text =
      what === 'DO'
        ? `DO ${tag}${body}${tag}`
        : `CREATE FUNCTION warden_probe() RETURNS SETOF record LANGUAGE plpgsql AS ${tag}${body}${tag}`;
    this.walkPlpgsql(parsePlpgsql(text), false, 0);
  }

  /** Walks a PL/pgSQL tree: each embedded SQL expression is parsed and classified. */
  private walkPlpgsql(value: unknown, dynamic: boolean, depth: number): void {
    if (depth > MAX_NODE_DEPTH) throw new SqlUnparseableError('routine nesting is too deep to analyse');
    if (Array.isArray(value)) {
      for (const item of value) this.walkPlpgsql(item, dynamic, depth + 1);
      return;
    }
    if (!isObject(value)) return;
    const expr = isObject(value.PLpgSQL_expr) ? value.PLpgSQL_expr : undefined;
    if (expr && typeof expr.query === 'string') {
      this.visitPlpgsqlExpression(expr.query, Number(expr.parseMode ?? 0), dynamic);
      return;
    }
    for (const [key, child] of Object.entries(value)) {
      if ((key === 'PLpgSQL_stmt_dynexecute' || key === 'PLpgSQL_stmt_dynfors') && isObject(child)) {
        // The `query` of EXECUTE / FOR ... IN EXECUTE is the dynamic text; USING params are static.
        for (const [field, v] of Object.entries(child)) this.walkPlpgsql(v, field === 'query', depth + 1);
      } else {
        this.walkPlpgsql(child, key === 'dynquery', depth + 1);
      }
    }
  }

  private visitPlpgsqlExpression(query: string, parseMode: number, dynamic: boolean): void {
    // parseMode 0: a whole statement; 2: an expression; 3-5: an assignment `target := expr`.
    let sql = query;
    if (parseMode === 2) sql = `SELECT ${query}`;
    else if (parseMode >= 3) {
      const at = query.search(/:=|=/);
      sql = `SELECT ${at < 0 ? query : query.slice(at + (query[at] === ':' ? 2 : 1))}`;
    }
    if (!dynamic) {
      this.mergeSql(sql);
      return;
    }
    // EXECUTE of a string constant is analysed like static SQL; anything computed is dynamic SQL.
    const statements = parseStatements(sql);
    const only = statements.length === 1 ? unwrap(statements[0]!.stmt) : undefined;
    const targets = only?.[0] === 'SelectStmt' ? only[1].targetList : undefined;
    const literal =
      Array.isArray(targets) && targets.length === 1
        ? constantString(unwrap(targets[0])?.[1].val)
        : undefined;
    if (literal !== undefined) {
      this.mergeSql(literal);
    } else {
      this.effects.add('dynamic-sql');
      this.mergeSql(sql);
    }
  }
}

/** The string value of an `A_Const` string node, if that is what `node` is. */
function constantString(node: unknown): string | undefined {
  const u = unwrap(node);
  if (u?.[0] !== 'A_Const') return undefined;
  const sval = u[1].sval;
  return isObject(sval) && typeof sval.sval === 'string' ? sval.sval : undefined;
}

/** A `COPY` option's argument as {@link CopyOptionValue}. */
function copyOptionValue(arg: unknown): CopyOptionValue {
  if (arg === undefined) return undefined;
  const u = unwrap(arg);
  if (!u) return null;
  const [type, value] = u;
  if (type === 'String') return typeof value.sval === 'string' ? value.sval : null;
  if (type === 'Boolean') return value.boolval === true;
  if (type === 'Integer') return value.ival === undefined ? false : value.ival === 1 ? true : null;
  if (type === 'A_Star') return '*';
  if (type === 'List') return stringList(value.items);
  return null;
}

/** True for the column reference `name` or `pg_settings.name`. */
function isSettingsName(node: unknown): boolean {
  const u = unwrap(node);
  if (u?.[0] !== 'ColumnRef' || !Array.isArray(u[1].fields)) return false;
  const names = stringList(u[1].fields);
  if (names.length !== u[1].fields.length) return false;
  return names.length === 1
    ? names[0] === 'name'
    : names.length === 2 && names.join('.') === 'pg_settings.name';
}

/** The constant `c` of a filter `name = 'c'` (alone or in an AND), if there is one. */
function pinnedSettingName(where: unknown): string | undefined {
  const u = unwrap(where);
  if (u?.[0] === 'BoolExpr' && u[1].boolop === 'AND_EXPR' && Array.isArray(u[1].args)) {
    for (const arg of u[1].args) {
      const pinned = pinnedSettingName(arg);
      if (pinned !== undefined) return pinned;
    }
    return undefined;
  }
  if (u?.[0] !== 'A_Expr' || u[1].kind !== 'AEXPR_OP') return undefined;
  const operator = stringList(u[1].name).join('.');
  if (operator !== '=' && operator !== 'pg_catalog.=') return undefined;
  if (isSettingsName(u[1].lexpr)) return constantString(u[1].rexpr);
  if (isSettingsName(u[1].rexpr)) return constantString(u[1].lexpr);
  return undefined;
}

/** The first argument of a `SET` as text (string or number constant). */
function firstConstant(args: unknown): string | undefined {
  if (!Array.isArray(args) || args.length === 0) return undefined;
  const text = constantString(args[0]);
  if (text !== undefined) return text;
  const u = unwrap(args[0]);
  if (u?.[0] !== 'A_Const') return undefined;
  const number = u[1].ival ?? u[1].fval;
  if (isObject(number)) return String(number.ival ?? number.fval ?? 0);
  return undefined;
}

function analyseStatements(
  statements: readonly RawStatement[],
  state: AnalysisState,
  bodyDepth: number,
): StatementReport[] {
  return statements.map((raw) => {
    const walker = new StatementWalker(state, bodyDepth);
    walker.walk(raw.stmt, 0);
    return walker.report(kindOf(unwrap(raw.stmt)?.[0] ?? ''));
  });
}

/**
 * Parses and classifies `sql` (one or many statements).
 * @throws SqlUnparseableError when PostgreSQL's parser (or PL/pgSQL's) cannot read the text.
 */
export function analyseSql(sql: string): SqlAnalysis {
  const state: AnalysisState = { literalSensitive: false };
  const statements = analyseStatements(parseStatements(sql), state, 0);
  return { statements, literalSensitive: state.literalSensitive };
}

/**
 * One report per statement of `sql`: its kind, every effect found anywhere inside it, the
 * relations and functions it names.
 * @throws SqlUnparseableError when the text cannot be parsed.
 */
export function classify(sql: string): StatementReport[] {
  return [...analyseSql(sql).statements];
}
