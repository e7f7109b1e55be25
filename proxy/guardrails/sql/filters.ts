/**
 * Blast radius, statically: does the filter of a DELETE, UPDATE or MERGE action keep every row of
 * the relation it writes? A filter does not restrict anything when it
 *   - is absent, or does not depend on the written row at all (`true`, `1 = 1`, `now() > '2000-01-01'`,
 *     `EXISTS (SELECT 1)`, an uncorrelated subquery, a condition on the joined relation only:
 *     `DELETE FROM t USING u WHERE u.id = 1`, `MERGE ... ON true`), unless it is provably false;
 *   - is a tautology over the row: `x = x`, `x IS NOT DISTINCT FROM x`, `x IS NULL OR x IS NOT NULL`,
 *     `true OR x`, `NOT false`, conjunctions of those;
 *   - is `x IS NOT NULL` (or `x LIKE '%'`) on a column declared NOT NULL: reported as conditional
 *     on those columns, for the caller to decide with the catalog.
 * Anything else is taken as a real filter; how many rows it keeps is the planner's estimate's job
 * (the `max_rows` rule option), not this module's.
 */
import { type ConstantValue, constantValue, isObject, sameExpression, stringList, unwrap } from './ast.ts';
import type { AstNode } from './parser.ts';

/** What a filter does to the rows of the written relation. */
export type FilterVerdict =
  | { readonly kind: 'filtered' }
  | { readonly kind: 'unfiltered'; readonly reason: string }
  /** Keeps every row if all these columns of the written relation are NOT NULL. */
  | { readonly kind: 'unfiltered-if-not-null'; readonly columns: readonly string[] };

/** The names a filter can use for the written relation and for the other relations in scope. */
export interface TargetScope {
  /** The written relation's reference name (its alias, else its own name). */
  readonly target: string;
  /** Reference names of the other relations of the statement (USING, FROM, MERGE source). */
  readonly others: ReadonlySet<string>;
}

/** Built-in functions whose value may differ from row to row (evaluated per row). */
const VOLATILE_FUNCTIONS = new Set([
  'random',
  'random_normal',
  'nextval',
  'setval',
  'currval',
  'lastval',
  'clock_timestamp',
  'timeofday',
  'gen_random_uuid',
  'uuid_generate_v1',
  'uuid_generate_v4',
  'uuidv4',
  'uuidv7',
  'txid_current',
  'pg_current_xact_id',
]);

interface Truth {
  /** True for every row of the written relation. */
  readonly always: boolean;
  /** True for every row provided these columns are NOT NULL (when not `always`). */
  readonly ifNotNull?: readonly string[];
}

const SOME: Truth = { always: false };
const ALL: Truth = { always: true };

/** Reference names a FROM-list item brings into scope. */
export function referenceNames(item: unknown, into: Set<string>): void {
  const u = unwrap(item);
  if (!u) return;
  const [type, node] = u;
  const alias =
    isObject(node.alias) && typeof node.alias.aliasname === 'string' ? node.alias.aliasname : undefined;
  if (type === 'RangeVar') into.add(alias ?? String(node.relname));
  else if (type === 'JoinExpr') {
    referenceNames(node.larg, into);
    referenceNames(node.rarg, into);
    if (alias) into.add(alias);
  } else if (alias) into.add(alias);
}

/** The reference name of a written relation (a bare RangeVar): its alias, else its own name. */
export function targetName(relation: unknown): string {
  const r = isObject(relation) ? relation : {};
  return isObject(r.alias) && typeof r.alias.aliasname === 'string'
    ? r.alias.aliasname
    : String(r.relname ?? '');
}

/** Decides what `where` (undefined: no filter) does to the written relation's rows. */
export function analyseFilter(where: unknown, scope: TargetScope): FilterVerdict {
  if (where === undefined) return { kind: 'unfiltered', reason: 'no filter' };
  if (isNever(where)) return { kind: 'filtered' };
  if (!dependsOnRow(where, scope, new Set())) {
    return { kind: 'unfiltered', reason: 'the filter does not depend on the written row' };
  }
  const truth = evaluate(where, scope);
  if (truth.always) return { kind: 'unfiltered', reason: 'the filter is true for every row' };
  if (truth.ifNotNull) return { kind: 'unfiltered-if-not-null', columns: truth.ifNotNull };
  return { kind: 'filtered' };
}

/** Combines the filters of a MERGE action: the join condition and the action's own condition. */
export function combineFilters(a: FilterVerdict, b: FilterVerdict | undefined): FilterVerdict {
  if (b === undefined) return a;
  if (a.kind === 'filtered' || b.kind === 'filtered') return { kind: 'filtered' };
  if (a.kind === 'unfiltered') return b;
  if (b.kind === 'unfiltered') return a;
  return { kind: 'unfiltered-if-not-null', columns: [...new Set([...a.columns, ...b.columns])] };
}

/** The column of the written relation `ref` names, if it names one (`x`, `t.x`, `s.t.x`). */
function targetColumn(ref: AstNode, scope: TargetScope): string | undefined {
  const fields = stringList(ref.fields);
  if (fields.length !== (Array.isArray(ref.fields) ? ref.fields.length : -1)) return undefined;
  if (fields.length === 1) return scope.others.size === 0 ? fields[0] : undefined;
  if (fields.length >= 2 && fields.at(-2) === scope.target) return fields.at(-1);
  return undefined;
}

/**
 * True when the value of `node` may differ between rows of the written relation: it references
 * the row (or may: an unqualified column when other relations are in scope, any column of an
 * enclosing query inside a subquery), a volatile function, or `WHERE CURRENT OF`.
 */
function dependsOnRow(node: unknown, scope: TargetScope, shadowed: ReadonlySet<string>): boolean {
  if (Array.isArray(node)) return node.some((n) => dependsOnRow(n, scope, shadowed));
  if (!isObject(node)) return false;
  for (const [key, child] of Object.entries(node)) {
    if (!isObject(child)) {
      if (Array.isArray(child) && dependsOnRow(child, scope, shadowed)) return true;
      continue;
    }
    switch (key) {
      case 'ColumnRef': {
        const fields = stringList(child.fields);
        if (fields.length === 0) return true; // `t.*` or a star: treat as the row
        // An unqualified name may be a column of the row (or, with other relations in scope, of
        // theirs: without the catalog that is undecidable, so it counts as a real filter).
        if (fields.length === 1) return true;
        const qualifier = fields.at(-2)!;
        if (shadowed.has(qualifier)) continue;
        if (qualifier === scope.target) return true;
        if (scope.others.has(qualifier)) continue;
        return true;
      }
      case 'CurrentOfExpr':
        return true;
      case 'FuncCall': {
        const own = stringList(child.funcname).at(-1) ?? '';
        if (VOLATILE_FUNCTIONS.has(own)) return true;
        if (dependsOnRow(child, scope, shadowed)) return true;
        continue;
      }
      case 'SelectStmt': {
        const inner = new Set(shadowed);
        if (Array.isArray(child.fromClause)) for (const item of child.fromClause) referenceNames(item, inner);
        if (Array.isArray(child.fromClause) && child.fromClause.length > 0 && containsUnqualified(child)) {
          // An unqualified column in a subquery with its own FROM may be its own or the row's.
          return true;
        }
        const { fromClause: _from, ...rest } = child;
        if (dependsOnRow(rest, scope, inner)) return true;
        if (Array.isArray(_from) && dependsOnRow(_from, scope, inner)) return true;
        continue;
      }
      default:
        if (dependsOnRow(child, scope, shadowed)) return true;
    }
  }
  return false;
}

function containsUnqualified(node: unknown): boolean {
  if (Array.isArray(node)) return node.some(containsUnqualified);
  if (!isObject(node)) return false;
  for (const [key, child] of Object.entries(node)) {
    if (key === 'ColumnRef' && isObject(child) && Array.isArray(child.fields) && child.fields.length === 1) {
      return true;
    }
    if (containsUnqualified(child)) return true;
  }
  return false;
}

function operatorName(node: AstNode): string {
  const name = stringList(node.name);
  return name.at(-1) ?? '';
}

/** True when `node` is false or null for every row (a constant that never lets a row through). */
function isNever(node: unknown): boolean {
  const u = unwrap(node);
  if (!u) return false;
  const [type, n] = u;
  if (type === 'A_Const' || type === 'TypeCast') {
    const v = constantValue(node);
    return v === false || v === null;
  }
  if (type === 'BoolExpr' && Array.isArray(n.args)) {
    if (n.boolop === 'AND_EXPR') return n.args.some(isNever);
    if (n.boolop === 'OR_EXPR') return n.args.every(isNever);
    if (n.boolop === 'NOT_EXPR') return isAlwaysConstant(n.args[0]);
  }
  if (type === 'A_Expr') return compareConstants(n) === false;
  return false;
}

function isAlwaysConstant(node: unknown): boolean {
  const u = unwrap(node);
  if (!u) return false;
  if (u[0] === 'A_Const' || u[0] === 'TypeCast') return constantValue(node) === true;
  if (u[0] === 'A_Expr') return compareConstants(u[1]) === true;
  if (u[0] === 'BoolExpr' && Array.isArray(u[1].args)) {
    if (u[1].boolop === 'AND_EXPR') return u[1].args.every(isAlwaysConstant);
    if (u[1].boolop === 'OR_EXPR') return u[1].args.some(isAlwaysConstant);
    if (u[1].boolop === 'NOT_EXPR') return isNever(u[1].args[0]);
  }
  return false;
}

/** The result of comparing two constants with a comparison operator; undefined when not that. */
function compareConstants(node: AstNode): boolean | undefined {
  if (node.kind !== 'AEXPR_OP') return undefined;
  const a = constantValue(node.lexpr);
  const b = constantValue(node.rexpr);
  if (a === undefined || b === undefined || a === null || b === null) return undefined;
  const x = comparable(a);
  const y = comparable(b);
  if (x === undefined || y === undefined || typeof x !== typeof y) return undefined;
  switch (operatorName(node)) {
    case '=':
      return x === y;
    case '<>':
    case '!=':
      return x !== y;
    case '<':
      return x < y;
    case '>':
      return x > y;
    case '<=':
      return x <= y;
    case '>=':
      return x >= y;
    default:
      return undefined;
  }
}

/** Numbers as numbers (also numeric strings: `'1' = 1` is true), other strings as strings. */
function comparable(v: ConstantValue): number | string | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'string') return /^\s*-?\d+(\.\d+)?\s*$/.test(v) ? Number(v) : v;
  return undefined;
}

/** Truth of a row-dependent expression over every row of the written relation. */
function evaluate(node: unknown, scope: TargetScope): Truth {
  if (!dependsOnRow(node, scope, new Set())) return isNever(node) ? SOME : ALL;
  const u = unwrap(node);
  if (!u) return SOME;
  const [type, n] = u;
  switch (type) {
    case 'TypeCast':
      return evaluate(n.arg, scope);
    case 'BoolExpr': {
      const args = Array.isArray(n.args) ? n.args : [];
      if (n.boolop === 'NOT_EXPR') return isNever(args[0]) ? ALL : SOME;
      const truths = args.map((a) => evaluate(a, scope));
      if (n.boolop === 'OR_EXPR') {
        if (truths.some((t) => t.always) || complementaryNullTests(args)) return ALL;
        const conditional = truths
          .filter((t) => t.ifNotNull)
          .sort((a, b) => a.ifNotNull!.length - b.ifNotNull!.length);
        return conditional[0] ?? SOME;
      }
      if (truths.every((t) => t.always || t.ifNotNull)) {
        const columns = truths.flatMap((t) => t.ifNotNull ?? []);
        return columns.length === 0 ? ALL : { always: false, ifNotNull: [...new Set(columns)] };
      }
      return SOME;
    }
    case 'A_Expr': {
      const op = operatorName(n);
      const same = sameExpression(n.lexpr, n.rexpr);
      if (same && n.kind === 'AEXPR_OP' && (op === '=' || op === '<=' || op === '>=')) return ALL;
      if (same && n.kind === 'AEXPR_NOT_DISTINCT') return ALL;
      if (n.kind === 'AEXPR_LIKE' && op === '~~' && /^%+$/.test(String(constantValue(n.rexpr) ?? ''))) {
        return notNullOf(n.lexpr, scope);
      }
      return SOME;
    }
    case 'NullTest':
      return n.nulltesttype === 'IS_NOT_NULL' ? notNullOf(n.arg, scope) : SOME;
    case 'BooleanTest':
      if (n.booltesttype === 'IS_TRUE' || n.booltesttype === 'IS_NOT_FALSE') {
        return evaluate(n.arg, scope).always ? ALL : SOME;
      }
      return SOME;
    default:
      return SOME;
  }
}

/** `col IS NOT NULL`: true for every row when the column is NOT NULL. */
function notNullOf(arg: unknown, scope: TargetScope): Truth {
  const u = unwrap(arg);
  if (u?.[0] !== 'ColumnRef') return SOME;
  const column = targetColumn(u[1], scope);
  return column === undefined ? SOME : { always: false, ifNotNull: [column] };
}

/** `x IS NULL OR x IS NOT NULL` (in any order, among other disjuncts). */
function complementaryNullTests(args: readonly unknown[]): boolean {
  const tests = args.flatMap((a) => {
    const u = unwrap(a);
    return u?.[0] === 'NullTest' ? [u[1]] : [];
  });
  return tests.some((a) =>
    tests.some((b) => a.nulltesttype !== b.nulltesttype && sameExpression(a.arg, b.arg)),
  );
}
