/**
 * What the SQL guardrails are told about the database they guard, read from its catalog over a
 * session's own connection: which schemas hold which relations, with their NOT NULL columns
 * (`pg_class`, `pg_namespace`, `pg_attribute.attnotnull`; the guardrails' `RelationCatalog`), the
 * names of the functions defined outside `pg_catalog` (so a call of a built-in costs no lookup),
 * and the bodies of the functions a statement calls (`pg_proc`; the guardrails' `RoutineResolver`).
 *
 * A snapshot of the relations and function names is shared by the sessions of one target and
 * database for {@link GUARD_CATALOG_TTL_MS}; a session that changed the schema (DDL) reads the
 * relations it touched again and keeps its own copy from then on. Function bodies are read per
 * session when a statement calls a function whose body is not known yet, and forgotten when the
 * schema changes. Objects are immutable: a change is a new object, which tells the guardrails'
 * verdict cache that what they answer changed.
 */
import type {
  QualifiedName,
  RelationCatalog,
  RoutineBody,
  RoutineResolver,
} from '../guardrails/sql/index.ts';
import { nameArray } from './backchannel.ts';

/** How long a shared snapshot serves new sessions, and a session its own, in ms. */
export const GUARD_CATALOG_TTL_MS = 30_000;
/** Function names whose bodies a session keeps. */
const MAX_BODIES = 1_000;

const USER_SCHEMAS =
  "n.nspname OPERATOR(pg_catalog.<>) ALL (ARRAY['pg_catalog', 'information_schema']::pg_catalog.name[]) " +
  "AND (n.nspname::pg_catalog.text OPERATOR(pg_catalog.!~) '^pg_temp_' OR n.oid OPERATOR(pg_catalog.=) pg_catalog.pg_my_temp_schema())";

/**
 * Relations of every schema but the temporary and TOAST ones (the session's temporary relations
 * are tracked, not read), one row per NOT NULL column (a null column for a relation without any):
 * schema, relation, column. `names`: only relations of these names.
 */
export function relationsSql(names?: readonly string[]): string {
  return (
    'SELECT n.nspname, c.relname, a.attname FROM pg_catalog.pg_class c ' +
    'JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace ' +
    'LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) c.oid ' +
    'AND a.attnum OPERATOR(pg_catalog.>) 0 AND a.attnotnull AND NOT a.attisdropped ' +
    "WHERE c.relkind OPERATOR(pg_catalog.=) ANY (ARRAY['r', 'p', 'v', 'm', 'f']::pg_catalog.\"char\"[]) " +
    "AND n.nspname::pg_catalog.text OPERATOR(pg_catalog.!~) '^pg_(toast|temp_)'" +
    (names ? ` AND c.relname OPERATOR(pg_catalog.=) ANY (${nameArray(names)})` : '')
  );
}

/** Names of the functions and procedures outside pg_catalog and information_schema. */
export const ROUTINE_NAMES_SQL =
  'SELECT DISTINCT p.proname FROM pg_catalog.pg_proc p ' +
  `JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) p.pronamespace WHERE ${USER_SCHEMAS}`;

/**
 * The definitions of the functions named `names` outside pg_catalog: schema (`pg_temp` for the
 * session's own), name, language, `prosrc`, SECURITY DEFINER, and the body of a new-style SQL
 * function (`pg_get_function_sqlbody`; its `prosrc` is empty).
 */
export function routineBodiesSql(names: readonly string[]): string {
  return (
    "SELECT CASE WHEN n.oid OPERATOR(pg_catalog.=) pg_catalog.pg_my_temp_schema() THEN 'pg_temp' " +
    'ELSE n.nspname::pg_catalog.text END, p.proname, l.lanname, p.prosrc, p.prosecdef, ' +
    'CASE WHEN p.prosqlbody IS NOT NULL THEN pg_catalog.pg_get_function_sqlbody(p.oid) END ' +
    'FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) p.pronamespace ' +
    'JOIN pg_catalog.pg_language l ON l.oid OPERATOR(pg_catalog.=) p.prolang ' +
    `WHERE p.proname OPERATOR(pg_catalog.=) ANY (${nameArray(names)}) AND ${USER_SCHEMAS}`
  );
}

type Rows = readonly (readonly (string | null)[])[];

/** Relations by name, then schema, with their NOT NULL columns. */
export class RelationIndex implements RelationCatalog {
  private constructor(
    private readonly byName: ReadonlyMap<string, ReadonlyMap<string, ReadonlySet<string>>>,
  ) {}

  /** Reads the rows of {@link relationsSql}; malformed rows are skipped. */
  static fromRows(rows: Rows): RelationIndex {
    return new RelationIndex(RelationIndex.group(rows));
  }

  private static group(rows: Rows): Map<string, Map<string, Set<string>>> {
    const byName = new Map<string, Map<string, Set<string>>>();
    for (const [schema, name, column] of rows) {
      if (!schema || !name) continue;
      let schemas = byName.get(name);
      if (!schemas) {
        schemas = new Map();
        byName.set(name, schemas);
      }
      let columns = schemas.get(schema);
      if (!columns) {
        columns = new Set();
        schemas.set(schema, columns);
      }
      if (column) columns.add(column);
    }
    return byName;
  }

  /** A copy in which the relations named `names` are as `rows` (of `relationsSql(names)`) say. */
  patched(names: readonly string[], rows: Rows): RelationIndex {
    const byName = new Map(this.byName);
    for (const name of names) byName.delete(name);
    for (const [name, schemas] of RelationIndex.group(rows)) byName.set(name, schemas);
    return new RelationIndex(byName);
  }

  hasRelation(schema: string, name: string): boolean {
    return this.byName.get(name)?.has(schema) ?? false;
  }

  notNullColumns(schema: string, name: string): ReadonlySet<string> | undefined {
    return this.byName.get(name)?.get(schema);
  }
}

/**
 * A catalog that may be out of date (the schema changed and could not be read again yet): which
 * schema holds a name is not trusted, so every schema of the path stays a candidate; NOT NULL
 * columns are still used.
 */
export function uncertainCatalog(index: RelationIndex): RelationCatalog {
  return { notNullColumns: (schema, name) => index.notNullColumns(schema, name) };
}

/** Relations and function names as read at one moment. */
export interface SchemaSnapshot {
  readonly relations: RelationIndex | undefined;
  /** Undefined when they could not be read: every called function's body is then looked up. */
  readonly routineNames: ReadonlySet<string> | undefined;
  readonly loadedAt: number;
}

/** Builds a snapshot from the rows of {@link relationsSql} and {@link ROUTINE_NAMES_SQL}. */
export function buildSchemaSnapshot(
  relations: Rows | undefined,
  names: Rows | undefined,
  loadedAt: number,
): SchemaSnapshot {
  return {
    relations: relations ? RelationIndex.fromRows(relations) : undefined,
    routineNames: names ? new Set(names.flatMap(([name]) => (name ? [name] : []))) : undefined,
    loadedAt,
  };
}

/** Shared snapshots by `target/database`. */
export class SchemaSnapshotCache {
  private readonly entries = new Map<string, SchemaSnapshot>();

  constructor(private readonly clock: () => number = Date.now) {}

  /** The fresh snapshot of `key`, or undefined when it must be read. */
  get(key: string): SchemaSnapshot | undefined {
    const entry = this.entries.get(key);
    if (!entry || this.clock() - entry.loadedAt > GUARD_CATALOG_TTL_MS) return undefined;
    return entry;
  }

  set(key: string, snapshot: SchemaSnapshot): void {
    if (snapshot.relations && snapshot.routineNames) this.entries.set(key, snapshot);
  }

  /** The next session on `key` reads the catalog again (a session changed the schema). */
  invalidate(key: string): void {
    this.entries.delete(key);
  }
}

/**
 * The text a body is judged by: `prosrc`, or for a new-style SQL body (`BEGIN ATOMIC ... END`,
 * `RETURN expr`) the statements inside it.
 */
export function routineBodyText(prosrc: string, sqlBody: string | null): string {
  if (sqlBody === null) return prosrc;
  const atomic = /^\s*BEGIN\s+ATOMIC\b([\s\S]*)\bEND\s*;?\s*$/i.exec(sqlBody);
  if (atomic) return atomic[1]!;
  const expression = /^\s*RETURN\b([\s\S]*)$/i.exec(sqlBody);
  return expression ? `SELECT ${expression[1]}` : sqlBody;
}

/**
 * A session's function bodies for the guardrails: a name that may be a function defined outside
 * pg_catalog and whose body is not known yet is recorded as a miss (the relay reads it, then
 * checks again with the next resolver).
 */
export class SessionRoutines implements RoutineResolver {
  private readonly missed = new Set<string>();

  constructor(
    private readonly names: ReadonlySet<string> | undefined,
    private readonly bodies: ReadonlyMap<string, readonly RoutineBody[]>,
  ) {}

  lookup(name: QualifiedName, schemas: readonly string[]): readonly RoutineBody[] {
    if (schemas.length === 0) return [];
    if (this.names && !this.names.has(name.name)) return [];
    const known = this.bodies.get(name.name);
    if (!known) {
      this.missed.add(name.name);
      return [];
    }
    return known.filter((r) => schemas.includes('*') || schemas.includes(r.schema));
  }

  /** Names looked up and not known since the last call. */
  takeMisses(): string[] {
    const out = [...this.missed];
    this.missed.clear();
    return out;
  }

  /** A resolver that also knows the bodies of `names`, read as `rows` of {@link routineBodiesSql}. */
  with(names: readonly string[], rows: Rows): SessionRoutines {
    const bodies = new Map(this.bodies.size >= MAX_BODIES ? [] : this.bodies);
    for (const name of names) bodies.set(name, []);
    for (const [schema, name, language, prosrc, secdef, sqlBody] of rows) {
      if (!schema || !name || !language || prosrc === null) continue;
      const body: RoutineBody = {
        schema,
        name,
        language,
        body: routineBodyText(prosrc, sqlBody ?? null),
        securityDefiner: secdef === 't',
      };
      bodies.set(name, [...(bodies.get(name) ?? []), body]);
    }
    return new SessionRoutines(this.names, bodies);
  }

  /** A resolver with other function names and no bodies (the schema changed). */
  reset(names: ReadonlySet<string> | undefined): SessionRoutines {
    return new SessionRoutines(names, new Map());
  }
}
