/**
 * Names as PostgreSQL resolves them. A statement names relations and functions as written
 * (`salaries`, `payroll.salaries`, `"Payroll"."Salaries"`); which object that is depends on the
 * session's `search_path`: `pg_catalog` is searched first unless the path lists it elsewhere,
 * `pg_temp` (the session's temporary schema) first for relations unless listed (never for
 * functions), then the path in order, `"$user"` standing for the session user's name.
 *
 * Without a catalog the guardrails cannot know in which schema of the path an unqualified name
 * exists, so they consider every schema it could resolve to (a rule on `payroll.salaries` matches
 * `salaries` whenever `payroll` is on the path): that errs towards applying a rule, never towards
 * missing one. With a {@link RelationCatalog} the first schema that has the relation is the one.
 */

/** A name as written in a statement (identifiers already folded by the parser). */
export interface QualifiedName {
  /** The schema when the name is qualified; `*` for "any schema" (`database_to_xml`). */
  readonly schema?: string;
  /** The object's own name; `*` for "every relation of the schema" (`schema_to_xml`). */
  readonly name: string;
}

/**
 * The session's search path as a list of schema names (`"$user"` as written, unquoted), or
 * `unknown` when it was set to a value the guardrails could not read.
 */
export type SearchPath = readonly string[] | 'unknown';

/** PostgreSQL's default `search_path`: `"$user", public`. */
export const DEFAULT_SEARCH_PATH: readonly string[] = ['$user', 'public'];

/** Optional knowledge of the database, looked up by the relay (phase B) from its catalog. */
export interface RelationCatalog {
  /** True when `schema.name` is a relation (table, view, ...) the session can see. */
  hasRelation?(schema: string, name: string): boolean;
  /**
   * The columns of `schema.name` declared NOT NULL (an empty set for none), or undefined when
   * there is no such relation. Used to read `WHERE col IS NOT NULL` as a filter that keeps every row.
   */
  notNullColumns?(schema: string, name: string): ReadonlySet<string> | undefined;
}

/** `a.b` for display and for the legacy `relations` / `functions` lists. */
export function formatName(name: QualifiedName): string {
  return name.schema === undefined ? name.name : `${name.schema}.${name.name}`;
}

/** Splits SQL identifier text (`Payroll."Salaries"`) into folded parts; undefined if malformed. */
export function parseIdentifierChain(text: string): string[] | undefined {
  const parts: string[] = [];
  let i = 0;
  const n = text.length;
  const skipSpace = () => {
    while (i < n && /\s/.test(text[i]!)) i++;
  };
  for (;;) {
    skipSpace();
    if (text[i] === '"') {
      let part = '';
      i++;
      for (;;) {
        if (i >= n) return undefined;
        if (text[i] === '"') {
          if (text[i + 1] === '"') {
            part += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        part += text[i++];
      }
      if (part === '') return undefined;
      parts.push(part);
    } else {
      const start = i;
      while (i < n && /[A-Za-z0-9_$\u0080-\uffff*]/.test(text[i]!)) i++;
      if (i === start) return undefined;
      // Unquoted identifiers fold to lower case (ASCII letters only, as downcase_identifier does).
      parts.push(text.slice(start, i).replace(/[A-Z]+/g, (m) => m.toLowerCase()));
    }
    skipSpace();
    if (i >= n) return parts;
    if (text[i] !== '.') return undefined;
    i++;
  }
}

/** Reads `schema.name` (or `name`) written as SQL identifiers; undefined when it is not one. */
export function parseQualifiedName(text: string): QualifiedName | undefined {
  const parts = parseIdentifierChain(text);
  if (!parts || parts.length === 0) return undefined;
  // database.schema.name is accepted by regclass input when database is the current one.
  if (parts.length === 3) return { schema: parts[1]!, name: parts[2]! };
  if (parts.length > 3) return undefined;
  return parts.length === 1 ? { name: parts[0]! } : { schema: parts[0]!, name: parts[1]! };
}

/**
 * Reads a `search_path` value the way the server does (a comma-separated list of identifiers,
 * possibly quoted); undefined when it cannot be read.
 */
export function parseSearchPathValue(text: string): string[] | undefined {
  if (text.trim() === '') return [];
  const out: string[] = [];
  for (const item of splitTopLevel(text, ',')) {
    const parts = parseIdentifierChain(item);
    if (parts?.length !== 1) return undefined;
    out.push(parts[0]!);
  }
  return out;
}

function splitTopLevel(text: string, separator: string): string[] {
  const items: string[] = [];
  let current = '';
  let quoted = false;
  for (const ch of text) {
    if (ch === '"') quoted = !quoted;
    if (ch === separator && !quoted) {
      items.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  items.push(current);
  return items;
}

/** The schemas an unqualified name is looked up in, in order. */
export function effectiveSchemas(
  path: readonly string[],
  kind: 'relation' | 'function',
  user?: string,
): string[] {
  const schemas = path.flatMap((s) => (s === '$user' ? (user === undefined ? [] : [user]) : [s]));
  const out: string[] = [];
  if (kind === 'relation' && !schemas.includes('pg_temp')) out.push('pg_temp');
  if (!schemas.includes('pg_catalog')) out.push('pg_catalog');
  for (const s of schemas) if (!(kind === 'function' && s === 'pg_temp')) out.push(s);
  return out;
}

/** How names are resolved for one check: the session's path, temporary objects and catalog. */
export interface NameScope {
  readonly searchPath: SearchPath;
  /** The session user's name (for `"$user"` in the path); unknown users match no schema. */
  readonly user?: string;
  /** Unqualified names of the session's temporary relations. */
  readonly tempRelations: ReadonlySet<string>;
  readonly catalog?: RelationCatalog;
}

/**
 * The schemas `name` may designate: one when it is qualified or the catalog knows, several when
 * any schema of the path could hold it, `['*']` when the path is unknown.
 */
export function candidateSchemas(
  name: QualifiedName,
  kind: 'relation' | 'function',
  scope: NameScope,
): string[] {
  if (name.schema !== undefined) return [name.schema];
  if (scope.searchPath === 'unknown') return ['*'];
  const schemas = effectiveSchemas(scope.searchPath, kind, scope.user);
  if (kind === 'relation') {
    // pg_temp holds only what this session created, which the temp set knows exactly; other
    // schemas are known only through the catalog, else any of them may hold the name.
    const temp = scope.tempRelations.has(name.name);
    const lookup = scope.catalog?.hasRelation;
    const candidates: string[] = [];
    for (const schema of schemas) {
      if (schema === 'pg_temp') {
        if (!temp) continue;
        candidates.push(schema);
        return candidates;
      }
      if (lookup?.call(scope.catalog, schema, name.name)) return [...candidates, schema];
      if (!lookup) candidates.push(schema);
    }
    return candidates.length > 0 ? candidates : schemas.filter((s) => s !== 'pg_temp');
  }
  return schemas;
}

/** True when `actual` (as written, resolved in `scope`) may be the object `wanted` names. */
export function nameMatches(
  wanted: QualifiedName,
  actual: QualifiedName,
  kind: 'relation' | 'function',
  scope: NameScope,
): boolean {
  if (actual.name !== '*' && actual.name !== wanted.name) return false;
  if (wanted.schema === undefined) return true;
  if (actual.schema === '*') return true;
  return candidateSchemas(actual, kind, scope).some((s) => s === '*' || s === wanted.schema);
}

/**
 * True when the relation `name` certainly is one of the session's own temporary relations:
 * qualified with `pg_temp`, or unqualified, in the temp set, and looked up in `pg_temp` first.
 */
export function isSessionTemp(name: QualifiedName, scope: NameScope): boolean {
  if (name.schema !== undefined) return name.schema === 'pg_temp';
  if (!scope.tempRelations.has(name.name) || scope.searchPath === 'unknown') return false;
  return effectiveSchemas(scope.searchPath, 'relation', scope.user)[0] === 'pg_temp';
}
