/**
 * PL/pgSQL bodies (`DO` blocks, `LANGUAGE plpgsql` routines), read with libpg_query's PL/pgSQL
 * parser: every embedded SQL statement and expression is parsed and judged as a statement of the
 * enclosing one; `EXECUTE` of a string constant is judged like static SQL, `EXECUTE` of anything
 * computed (a variable, a concatenation, `format(...)`) is dynamic SQL (fail closed).
 */
import { constantString, isObject, unwrap } from './ast.ts';
import type { StatementWalker } from './classify.ts';
import { SqlUnparseableError } from './errors.ts';
import { parsePlpgsql, parseStatements } from './parser.ts';

/** Deepest PL/pgSQL tree walked. */
const MAX_NODE_DEPTH = 1_000;

/** Analyses the PL/pgSQL `body` of a `DO` block or a routine into `walker`'s statement. */
export function walkPlpgsqlBody(walker: StatementWalker, body: string, what: 'DO' | 'FUNCTION'): void {
  let tag = '$warden$';
  for (let n = 0; body.includes(tag); n++) tag = `$warden${n}$`;
  const text =
    what === 'DO'
      ? `DO ${tag}${body}${tag}`
      : `CREATE FUNCTION warden_probe() RETURNS SETOF record LANGUAGE plpgsql AS ${tag}${body}${tag}`;
  walkTree(walker, parsePlpgsql(text), false, 0);
}

function walkTree(walker: StatementWalker, value: unknown, dynamic: boolean, depth: number): void {
  if (depth > MAX_NODE_DEPTH) throw new SqlUnparseableError('routine nesting is too deep to analyse');
  if (Array.isArray(value)) {
    for (const item of value) walkTree(walker, item, dynamic, depth + 1);
    return;
  }
  if (!isObject(value)) return;
  const expr = isObject(value.PLpgSQL_expr) ? value.PLpgSQL_expr : undefined;
  if (expr && typeof expr.query === 'string') {
    visitExpression(walker, expr.query, Number(expr.parseMode ?? 0), dynamic);
    return;
  }
  for (const [key, child] of Object.entries(value)) {
    if ((key === 'PLpgSQL_stmt_dynexecute' || key === 'PLpgSQL_stmt_dynfors') && isObject(child)) {
      // The `query` of EXECUTE / FOR ... IN EXECUTE is the dynamic text; USING params are static.
      for (const [field, v] of Object.entries(child)) walkTree(walker, v, field === 'query', depth + 1);
    } else {
      walkTree(walker, child, key === 'dynquery', depth + 1);
    }
  }
}

function visitExpression(walker: StatementWalker, query: string, parseMode: number, dynamic: boolean): void {
  // parseMode 0: a whole statement; 2: an expression; 3-5: an assignment `target := expr`.
  let sql = query;
  if (parseMode === 2) sql = `SELECT ${query}`;
  else if (parseMode >= 3) {
    const at = query.search(/:=|=/);
    sql = `SELECT ${at < 0 ? query : query.slice(at + (query[at] === ':' ? 2 : 1))}`;
  }
  if (!dynamic) {
    walker.mergeSql(sql, 'routine');
    return;
  }
  const statements = parseStatements(sql);
  const only = statements.length === 1 ? unwrap(statements[0]!.stmt) : undefined;
  const targets = only?.[0] === 'SelectStmt' ? only[1].targetList : undefined;
  const literal =
    Array.isArray(targets) && targets.length === 1 ? constantString(unwrap(targets[0])?.[1].val) : undefined;
  if (literal !== undefined) {
    walker.mergeSql(walker.readLiteral(literal), 'routine');
  } else {
    walker.effect('dynamic-sql');
    walker.mergeSql(sql, 'routine');
  }
}
