/**
 * The one place that touches the PostgreSQL parser (libpg_query compiled to WASM). The module is
 * loaded once, at import, so the synchronous entry points are always ready for callers.
 */
import { loadModule, parsePlPgSQLSync, parseSync } from '@libpg-query/parser';
import { SqlUnparseableError } from './errors.ts';

await loadModule();

/** A parse-tree node as libpg_query's JSON gives it: `{ NodeType: { ...fields } }`. */
export type AstNode = Record<string, unknown>;

/** One raw statement of a parsed text. */
export interface RawStatement {
  /** The statement node (`{ SelectStmt: {...} }`, ...). */
  readonly stmt: AstNode;
  /** The statement's own source text (without the separating semicolon). */
  readonly text: string;
}

interface ParsedStatement {
  stmt?: unknown;
  stmt_location?: number;
  stmt_len?: number;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Parses `sql` with PostgreSQL 17's grammar into its raw statements.
 * @throws SqlUnparseableError when the text is not valid SQL or contains a NUL character.
 */
export function parseStatements(sql: string): RawStatement[] {
  // libpg_query reads a C string: text after a NUL would be invisible to it.
  if (sql.includes('\0')) throw new SqlUnparseableError('statement text contains a NUL character');
  let result: { stmts?: ParsedStatement[] };
  try {
    result = parseSync(sql) as unknown as { stmts?: ParsedStatement[] };
  } catch (error) {
    throw new SqlUnparseableError(`syntax error: ${describe(error)}`, { cause: error });
  }
  // Locations are byte offsets into the UTF-8 text.
  const bytes = Buffer.from(sql, 'utf8');
  return (result.stmts ?? []).flatMap((s) => {
    if (!s.stmt || typeof s.stmt !== 'object') return [];
    const start = s.stmt_location ?? 0;
    const end = s.stmt_len ? start + s.stmt_len : bytes.length;
    return [{ stmt: s.stmt as AstNode, text: bytes.subarray(start, end).toString('utf8') }];
  });
}

/**
 * Parses a PL/pgSQL routine (a `DO` block or a `CREATE FUNCTION ... LANGUAGE plpgsql`) given as
 * the full statement text, into libpg_query's PL/pgSQL tree.
 * @throws SqlUnparseableError when the body cannot be compiled by PL/pgSQL's parser.
 */
export function parsePlpgsql(sql: string): AstNode[] {
  if (sql.includes('\0')) throw new SqlUnparseableError('routine text contains a NUL character');
  try {
    const result = parsePlPgSQLSync(sql) as unknown as { plpgsql_funcs?: AstNode[] };
    return result.plpgsql_funcs ?? [];
  } catch (error) {
    throw new SqlUnparseableError(`PL/pgSQL body cannot be analysed: ${describe(error)}`, { cause: error });
  }
}
