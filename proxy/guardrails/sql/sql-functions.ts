/**
 * Built-in and common extension functions that execute SQL text or read relations named by a
 * string: what they run is judged like a statement of its own. A constant argument is parsed and
 * judged; any other (a column, a parameter, a concatenation) is dynamic SQL (fail closed).
 */

/** What a function does with its arguments. */
export type SqlTextUse =
  /** The listed arguments are SQL statements it executes. */
  | { readonly kind: 'query'; readonly args: (argc: number, isString: (i: number) => boolean) => number[] }
  /** The argument names a relation whose rows it reads (`regclass` or relation-name text). */
  | { readonly kind: 'relation'; readonly arg: number }
  /** The argument names a schema: it reads every relation of that schema. */
  | { readonly kind: 'schema'; readonly arg: number }
  /** It reads every relation of the database. */
  | { readonly kind: 'database' }
  /** It fetches from a cursor opened earlier (whose query was judged when it was declared). */
  | { readonly kind: 'cursor' };

const first = () => [0];
/** dblink's SQL is its last text argument (`dblink(sql)`, `dblink(conn, sql)`, `dblink(conn, sql, bool)`). */
const lastString = (argc: number, isString: (i: number) => boolean) => {
  for (let i = argc - 1; i >= 0; i--) if (isString(i)) return [i];
  return [argc - 1];
};

const query = (args: (argc: number, isString: (i: number) => boolean) => number[]): SqlTextUse => ({
  kind: 'query',
  args,
});

/** By the function's own name (case-folded), whatever its schema. */
export const SQL_TEXT_FUNCTIONS: ReadonlyMap<string, SqlTextUse> = new Map<string, SqlTextUse>([
  ['query_to_xml', query(first)],
  ['query_to_xmlschema', query(first)],
  ['query_to_xml_and_xmlschema', query(first)],
  ['table_to_xml', { kind: 'relation', arg: 0 }],
  ['table_to_xmlschema', { kind: 'relation', arg: 0 }],
  ['table_to_xml_and_xmlschema', { kind: 'relation', arg: 0 }],
  ['cursor_to_xml', { kind: 'cursor' }],
  ['cursor_to_xmlschema', { kind: 'cursor' }],
  ['schema_to_xml', { kind: 'schema', arg: 0 }],
  ['schema_to_xmlschema', { kind: 'schema', arg: 0 }],
  ['schema_to_xml_and_xmlschema', { kind: 'schema', arg: 0 }],
  ['database_to_xml', { kind: 'database' }],
  ['database_to_xmlschema', { kind: 'database' }],
  ['database_to_xml_and_xmlschema', { kind: 'database' }],
  // ts_stat(sqlquery [, weights]) and ts_rewrite(query, select) run their SQL argument.
  ['ts_stat', query(first)],
  ['ts_rewrite', query((argc) => (argc === 2 ? [1] : []))],
  // dblink: SQL on another (or the same) server; also refused as a dangerous function.
  ['dblink', query(lastString)],
  ['dblink_exec', query(lastString)],
  ['dblink_send_query', query((argc) => [argc - 1])],
  ['dblink_open', query((argc, isString) => (argc >= 3 && isString(2) ? [2] : [1]))],
  // tablefunc: crosstab(source_sql [, category_sql]) runs both; connectby reads a named relation.
  ['crosstab', query((argc, isString) => [0, 1].filter((i) => i < argc && isString(i)))],
  ['crosstab2', query(first)],
  ['crosstab3', query(first)],
  ['crosstab4', query(first)],
  ['connectby', { kind: 'relation', arg: 0 }],
]);
