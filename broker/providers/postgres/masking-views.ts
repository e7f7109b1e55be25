/**
 * Column masking enforced by the database (issue 15): a column rule holds for any SQL a grant's
 * role runs, through the proxy or with the minted credential directly.
 *
 * - Column privileges: on every relation in the level's scope, the level role gets SELECT (and
 *   REFERENCES) column by column, never on the whole relation, and never on a masked column. A
 *   column added later, or a table created later, is not readable until a look grants it (deny,
 *   not leak); the provider looks again as soon as it sees the scope's columns change
 *   (`schema-watch.ts`), so a rename that gives a granted column a masked name is revoked within
 *   seconds. pg_dump's `LOCK TABLE`, which needs table-wide SELECT, is rewritten by the proxy.
 * - Masking views: for each table with masked columns, `warden_mask.<table>` (owned by the admin,
 *   `security_barrier`) returns every column, the masked ones computed by the database. The
 *   schema comes first on the minted role's `search_path`, so `SELECT * FROM customers` reads
 *   the view; naming `public.customers` reads the table, where the masked columns are denied.
 * - `hash`: HMAC-SHA-256 built from `sha256()` (PostgreSQL 11+, no pgcrypto), keyed by
 *   `warden_mask.hmac_key`, a table nobody but the admin can read. The view reads it (with the
 *   view owner's rights, once per query), so the role has no function it could feed a guess to. Tokens equal the proxy's (`tok_` and 16 hex digits), so they match across sessions,
 *   grants and routes.
 * - Views and materialised views of the scope that depend, directly or through other views, on a
 *   masked column (or on a whole row of a table that has one) are not granted at all.
 *
 * See docs/masking.md for the design, what it costs and what it cannot cover.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import type { PgLevelConfig, PostgresTargetConfig } from '../../config/schema.ts';
import { ConfigError } from '../../errors.ts';
import { qualifyTable } from './statements.ts';

const { escapeIdentifier, escapeLiteral } = pg;

/** The schema Warden owns in each target database for its masking views. */
export const MASK_SCHEMA = 'warden_mask';

/** Mask styles the database computes (`none` exempts a column from the proxy's detectors only). */
export type DbMaskStyle = 'hash' | 'last4' | 'redact';

/** One column rule, as the database matches it: anchored, case-insensitive regexes per segment. */
export interface DbColumnRule {
  match: string;
  style: DbMaskStyle | 'none';
  schema: string;
  table: string;
  column: string;
}

interface RuleInput {
  match?: unknown;
  style?: unknown;
}

/** The `masking:` fragment whose column rules the database enforces for a target. */
export function findMaskingFragment(target: PostgresTargetConfig): Record<string, unknown> | undefined {
  const fragment = target.masking ?? target.proxy?.masking;
  return fragment && Object.keys(fragment).length > 0 ? fragment : undefined;
}

/**
 * Compiles the column rules of a `masking:` fragment into regexes PostgreSQL's `~` runs. Shapes
 * were checked by the masking schema at start-up; anything else here is skipped.
 */
export function compileDbColumnRules(fragment: Record<string, unknown> | undefined): DbColumnRule[] {
  const columns = Array.isArray(fragment?.columns) ? (fragment.columns as RuleInput[]) : [];
  const rules: DbColumnRule[] = [];
  for (const rule of columns) {
    if (typeof rule.match !== 'string' || typeof rule.style !== 'string') continue;
    if (!['hash', 'last4', 'redact', 'none'].includes(rule.style)) continue;
    const segments = rule.match.toLowerCase().split('.');
    if (segments.length > 3 || !segments.every((s) => /^[a-z0-9_$*-]{1,63}$/.test(s))) continue;
    while (segments.length < 3) segments.unshift('*');
    const [schema, table, column] = segments.map(
      (s) => `^${s.replace(/[$-]/g, '\\$&').split('*').join('.*')}$`,
    ) as [string, string, string];
    rules.push({ match: rule.match, style: rule.style as DbColumnRule['style'], schema, table, column });
  }
  return rules;
}

/** True when some rule masks (rather than only exempts) columns. */
export function hasMaskingRules(rules: readonly DbColumnRule[]): boolean {
  return rules.some((r) => r.style !== 'none');
}

/** The HMAC key as the key table keeps it: `key xor ipad` and `key xor opad` (RFC 2104, 64-byte blocks). */
export function deriveHmacPads(key: Uint8Array): { ipad: Buffer; opad: Buffer } {
  const block = Buffer.alloc(64);
  (key.length > 64 ? createHash('sha256').update(key).digest() : Buffer.from(key)).copy(block);
  const ipad = Buffer.alloc(64);
  const opad = Buffer.alloc(64);
  for (let i = 0; i < 64; i++) {
    ipad[i] = block[i]! ^ 0x36;
    opad[i] = block[i]! ^ 0x5c;
  }
  return { ipad, opad };
}

/** From the fourth-last ASCII letter or digit to the end. */
const TAIL =
  "'[A-Za-z0-9][^A-Za-z0-9]*[A-Za-z0-9][^A-Za-z0-9]*[A-Za-z0-9][^A-Za-z0-9]*[A-Za-z0-9][^A-Za-z0-9]*$'";

/**
 * Statements that create the schema, the key table and the `last4` function; idempotent. Run
 * under the ACL lock. The schema must be the admin's own: one made by somebody else beforehand
 * could hold objects that read the key or shadow the views.
 */
export function buildMaskSchemaStatements(): string[] {
  const schema = escapeIdentifier(MASK_SCHEMA);
  return [
    `CREATE SCHEMA IF NOT EXISTS ${schema}`,
    `DO $$ BEGIN
       IF (SELECT nspowner FROM pg_namespace WHERE nspname = ${escapeLiteral(MASK_SCHEMA)}) <> (SELECT oid FROM pg_roles WHERE rolname = current_user) THEN
         RAISE EXCEPTION 'schema ${MASK_SCHEMA} exists and is not owned by %; drop it or let the admin own it', current_user;
       END IF;
     END $$`,
    `REVOKE ALL ON SCHEMA ${schema} FROM PUBLIC`,
    `CREATE TABLE IF NOT EXISTS ${schema}.hmac_key (id int PRIMARY KEY CHECK (id = 1), ipad bytea NOT NULL, opad bytea NOT NULL)`,
    `REVOKE ALL ON ${schema}.hmac_key FROM PUBLIC`,
    // last4 as the proxy renders it (proxy/masking/styles.ts): fewer than eight ASCII letters or
    // digits are starred entirely; otherwise everything before the fourth-last one is starred
    // (letters, digits and non-ASCII), separators stay. One expression without FROM, so the
    // planner inlines it. Values of ASCII letters and digits only (most card numbers) take a
    // fast path (translate() costs ~7 µs a value, a class match ~0.3), the rest regular expressions.
    `CREATE OR REPLACE FUNCTION ${schema}.last4(v text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $f$
       SELECT CASE
         WHEN v IS NULL THEN NULL
         WHEN v ~ '^[A-Za-z0-9]*$' AND length(v) < 8 THEN repeat('*', length(v))
         WHEN v ~ '^[A-Za-z0-9]*$' THEN repeat('*', length(v) - 4) || right(v, 4)
         WHEN length(regexp_replace(v, '[^A-Za-z0-9]', '', 'g')) < 8
           THEN regexp_replace(v, '[A-Za-z0-9]|[^\\u0001-\\u007f]', '*', 'g')
         ELSE regexp_replace(left(v, length(v) - length(substring(v from ${TAIL}))), '[A-Za-z0-9]|[^\\u0001-\\u007f]', '*', 'g')
           || substring(v from ${TAIL})
       END
     $f$`,
  ];
}

const KEY_TABLE = `${escapeIdentifier(MASK_SCHEMA)}.hmac_key`;

/** The SQL expression a style computes over column reference `ref`. */
function buildMaskExpression(style: DbMaskStyle, ref: string): string {
  switch (style) {
    case 'redact':
      return `CASE WHEN ${ref} IS NULL THEN NULL ELSE '[REDACTED]'::text END`;
    case 'last4':
      return `${escapeIdentifier(MASK_SCHEMA)}.last4(${ref}::text)`;
    case 'hash':
      // The pads come from uncorrelated subqueries: InitPlans, read once per query, and the view
      // keeps one relation in FROM, so PostgreSQL can still write through it.
      return `'tok_' || left(encode(sha256((SELECT k.opad FROM ${KEY_TABLE} k) || sha256((SELECT k.ipad FROM ${KEY_TABLE} k) || convert_to(${ref}::text, 'UTF8'))), 'hex'), 16)`;
  }
}

/** One column of a relation in a level's scope, with the rule that masks it (if any). */
export interface ScopeColumn {
  oid: number;
  relkind: string;
  schema: string;
  table: string;
  attnum: number;
  column: string;
  style: DbMaskStyle | null;
  /** Index of the first matching rule (a `none` rule included), or null. */
  ruleIndex: number | null;
  /** A view or materialised view reading a masked column: not granted at all. */
  tainted: boolean;
  /** The level role holds SELECT on the whole relation (to be replaced by column privileges). */
  tableSelect: boolean;
  tableReferences: boolean;
  columnSelect: boolean;
  columnReferences: boolean;
  /** The admin may grant SELECT on this column. */
  grantable: boolean;
}

/**
 * Every column of every relation in scope (`$5` schemas, `$6` `schema.table` names) with its
 * first matching rule (`$1`..`$4`: schema, table, column regexes and styles, in order), whether
 * it feeds a view (taint), and what the level role (`$7`) holds on it.
 */
export const SCOPE_COLUMNS_SQL = `
WITH RECURSIVE rules AS (
  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS r(s, t, c, style, ord)
), scope AS (
  SELECT c.oid, c.relkind, n.nspname, c.relname
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND n.nspname <> '${MASK_SCHEMA}'
    AND (n.nspname = ANY($5::text[]) OR (n.nspname || '.' || c.relname) = ANY($6::text[]))
), every_column AS (
  SELECT c.oid, c.relkind, n.nspname, c.relname, a.attnum, a.attname,
         (SELECT r.style || ' ' || r.ord FROM rules r
           WHERE lower(n.nspname) ~ r.s AND lower(c.relname) ~ r.t AND lower(a.attname) ~ r.c
           ORDER BY r.ord LIMIT 1) AS hit
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
  WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND n.nspname NOT IN ('pg_catalog', 'information_schema', '${MASK_SCHEMA}')
), masked AS (
  SELECT oid, attnum FROM every_column WHERE split_part(hit, ' ', 1) IN ('hash', 'last4', 'redact')
), tainted(oid) AS (
  SELECT DISTINCT w.ev_class FROM pg_depend d JOIN pg_rewrite w ON w.oid = d.objid
  WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass AND w.ev_class <> d.refobjid
    AND EXISTS (SELECT 1 FROM masked m WHERE m.oid = d.refobjid AND (d.refobjsubid = 0 OR m.attnum = d.refobjsubid))
    AND w.ev_class NOT IN (SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = '${MASK_SCHEMA}')
  UNION
  SELECT w.ev_class FROM pg_depend d JOIN pg_rewrite w ON w.oid = d.objid JOIN tainted t ON t.oid = d.refobjid
  WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass AND w.ev_class <> d.refobjid
)
SELECT e.oid::int AS oid, e.relkind, e.nspname AS schema, e.relname AS table, e.attnum::int AS attnum,
       e.attname AS column,
       CASE WHEN split_part(e.hit, ' ', 1) IN ('hash', 'last4', 'redact') THEN split_part(e.hit, ' ', 1) END AS style,
       CASE WHEN e.hit IS NOT NULL THEN split_part(e.hit, ' ', 2)::int END AS "ruleIndex",
       e.oid IN (SELECT oid FROM tainted) AS tainted,
       EXISTS (SELECT 1 FROM aclexplode(c.relacl) x WHERE x.grantee = $7::regrole AND x.privilege_type = 'SELECT') AS "tableSelect",
       EXISTS (SELECT 1 FROM aclexplode(c.relacl) x WHERE x.grantee = $7::regrole AND x.privilege_type = 'REFERENCES') AS "tableReferences",
       has_column_privilege($7::name, e.oid, e.attnum, 'SELECT') AS "columnSelect",
       has_column_privilege($7::name, e.oid, e.attnum, 'REFERENCES') AS "columnReferences",
       has_column_privilege(current_user, e.oid, e.attnum, 'SELECT WITH GRANT OPTION') AS grantable
FROM every_column e JOIN scope s ON s.oid = e.oid JOIN pg_class c ON c.oid = e.oid
ORDER BY e.nspname, e.relname, e.attnum`;

/** What {@link planLevelMasking} decided for one level. */
export interface MaskingPlan {
  /** Statements to run, in order, in one transaction under the ACL lock. */
  statements: string[];
  /** Columns the admin cannot grant SELECT on (`schema.table.column`). */
  notGrantable: string[];
  /** Masked columns in scope (`schema.table.column` → rule), for reports. */
  masked: Map<string, string>;
}

/**
 * Plans a level's column privileges and masking views from its scope's columns: pure, so the
 * decisions are tested without a server. `views` holds the existing masking views (by table
 * name) with their definition fingerprints, so unchanged views are left alone.
 */
export function planLevelMasking(options: {
  levelRole: string;
  level: PgLevelConfig;
  rules: readonly DbColumnRule[];
  columns: readonly ScopeColumn[];
  views: ReadonlyMap<string, ExistingView>;
}): MaskingPlan {
  const { levelRole, level, rules, columns, views } = options;
  const role = escapeIdentifier(levelRole);
  const wantsSelect = level.grants?.includes('select') ?? false;
  const wantsReferences = level.grants?.includes('references') ?? false;
  const statements = [`GRANT USAGE ON SCHEMA ${escapeIdentifier(MASK_SCHEMA)} TO ${role}`];
  const notGrantable: string[] = [];
  const masked = new Map<string, string>();
  const relations = new Map<number, ScopeColumn[]>();
  for (const column of columns) relations.set(column.oid, [...(relations.get(column.oid) ?? []), column]);
  // One view name per table name: `public`'s table first (the proxy rewrites COPY and LOCK of
  // `public` tables to the view), then by schema name; the others are reachable only by their
  // qualified name, where column privileges deny the masked columns.
  const viewOwner = new Map<string, number>();
  const candidates = [...relations].sort(([, a], [, b]) =>
    a[0]!.schema === b[0]!.schema ? 0 : a[0]!.schema === 'public' ? -1 : b[0]!.schema === 'public' ? 1 : 0,
  );
  for (const [oid, cols] of candidates) {
    const first = cols[0]!;
    if (cols.some((c) => c.style) && ['r', 'p', 'f'].includes(first.relkind) && !viewOwner.has(first.table))
      viewOwner.set(first.table, oid);
  }
  for (const [oid, cols] of relations) {
    const first = cols[0]!;
    const qualified = `${escapeIdentifier(first.schema)}.${escapeIdentifier(first.table)}`;
    for (const c of cols)
      if (c.style) masked.set(`${c.schema}.${c.table}.${c.column}`, rules[c.ruleIndex! - 1]?.match ?? '');
    const revoke: string[] = [];
    if (first.tableSelect) revoke.push('SELECT');
    if (first.tableReferences) revoke.push('REFERENCES');
    if (revoke.length) statements.push(`REVOKE ${revoke.join(', ')} ON ${qualified} FROM ${role}`);
    const readable = (c: ScopeColumn) => !c.style && !c.tainted;
    const deny = cols.filter((c) => !readable(c) && (c.columnSelect || c.columnReferences));
    if (deny.length) {
      statements.push(
        `REVOKE SELECT (${deny.map((c) => escapeIdentifier(c.column)).join(', ')}), REFERENCES (${deny.map((c) => escapeIdentifier(c.column)).join(', ')}) ON ${qualified} FROM ${role}`,
      );
    }
    for (const [wanted, privilege, held] of [
      [wantsSelect, 'SELECT', (c: ScopeColumn) => c.columnSelect && !first.tableSelect],
      [wantsReferences, 'REFERENCES', (c: ScopeColumn) => c.columnReferences && !first.tableReferences],
    ] as const) {
      if (!wanted) continue;
      const grant = cols.filter((c) => readable(c) && !held(c));
      for (const c of grant.filter((g) => !g.grantable))
        notGrantable.push(`${c.schema}.${c.table}.${c.column}`);
      const ok = grant.filter((g) => g.grantable);
      if (ok.length)
        statements.push(
          `GRANT ${privilege} (${ok.map((c) => escapeIdentifier(c.column)).join(', ')}) ON ${qualified} TO ${role}`,
        );
    }
    if (wantsSelect && viewOwner.get(first.table) === oid) {
      statements.push(...buildViewStatements(first.schema, first.table, cols, role, views.get(first.table)));
      // Writes by unqualified name land on the view (first on the search_path); PostgreSQL passes
      // them to the table with the view owner's rights, so the view carries the level's own.
      const writes = (level.grants ?? []).filter((g) => ['insert', 'update', 'delete'].includes(g));
      if (writes.length)
        statements.push(
          `GRANT ${writes.map((w) => w.toUpperCase()).join(', ')} ON ${escapeIdentifier(MASK_SCHEMA)}.${escapeIdentifier(first.table)} TO ${role}`,
        );
    }
  }
  return { statements, notGrantable, masked };
}

/** Creates or rebuilds `warden_mask.<table>` when its definition changed, and grants it. */
function buildViewStatements(
  schema: string,
  table: string,
  columns: readonly ScopeColumn[],
  role: string,
  existing: ExistingView | undefined,
): string[] {
  const select = columns
    .map((c) => {
      const ref = `t.${escapeIdentifier(c.column)}`;
      return `${c.style ? buildMaskExpression(c.style, ref) : ref} AS ${escapeIdentifier(c.column)}`;
    })
    .join(', ');
  const from = `${escapeIdentifier(schema)}.${escapeIdentifier(table)} t`;
  const body = `SELECT ${select} FROM ${from}`;
  const fingerprint = `warden ${createHash('sha256').update(body).digest('hex').slice(0, 32)}`;
  const view = `${escapeIdentifier(MASK_SCHEMA)}.${escapeIdentifier(table)}`;
  // The same rows from a function of the view's name, for COPY: pg_dump sets
  // restrict_nonsystem_relation_kind = view, so the proxy rewrites its COPY of the table to
  // `COPY (SELECT ... FROM warden_mask.t())`. It takes no argument (no oracle) and runs as the
  // admin with a fixed search_path.
  const rows = `${view}()`;
  const statements: string[] = [];
  const grantees = existing?.grantees ?? [];
  if (existing?.comment !== fingerprint) {
    // DROP and CREATE rather than CREATE OR REPLACE: a renamed or dropped column cannot be
    // replaced. The other levels' grants on the old view are given back in the same transaction.
    statements.push(`DROP FUNCTION IF EXISTS ${rows}`);
    if (existing) statements.push(`DROP VIEW ${view}`);
    statements.push(
      `CREATE VIEW ${view} WITH (security_barrier = true) AS ${body}`,
      `COMMENT ON VIEW ${view} IS ${escapeLiteral(fingerprint)}`,
      `REVOKE ALL ON ${view} FROM PUBLIC`,
      `CREATE FUNCTION ${rows} RETURNS SETOF ${view} LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS ${escapeLiteral(body)}`,
      `REVOKE ALL ON FUNCTION ${rows} FROM PUBLIC`,
      ...grantees.flatMap((g) => [
        `GRANT SELECT ON ${view} TO ${escapeIdentifier(g)}`,
        `GRANT EXECUTE ON FUNCTION ${rows} TO ${escapeIdentifier(g)}`,
      ]),
    );
  }
  statements.push(`GRANT SELECT ON ${view} TO ${role}`, `GRANT EXECUTE ON FUNCTION ${rows} TO ${role}`);
  return statements;
}

/** A masking view as it stands: its fingerprint comment and who may read it. */
export interface ExistingView {
  name: string;
  comment: string | null;
  grantees: string[];
}

/** The existing masking views ({@link ExistingView}). */
export const MASK_VIEWS_SQL = `
SELECT c.relname AS name, obj_description(c.oid, 'pg_class') AS comment,
       ARRAY(SELECT DISTINCT pg_get_userbyid(x.grantee)::text FROM aclexplode(c.relacl) x
             WHERE x.privilege_type = 'SELECT' AND x.grantee <> c.relowner AND x.grantee <> 0) AS grantees
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = '${MASK_SCHEMA}' AND c.relkind = 'v'`;

/** The level's scope as {@link SCOPE_COLUMNS_SQL} takes it. */
export function describeScope(level: PgLevelConfig): { schemas: string[]; tables: string[] } {
  return {
    schemas: level.schemas ?? [],
    tables: (level.tables ?? []).map((t) => {
      const q = qualifyTable(t);
      return `${q.schema}.${q.table}`;
    }),
  };
}

/** Parameters of {@link SCOPE_COLUMNS_SQL}. */
export function buildScopeParams(
  rules: readonly DbColumnRule[],
  level: PgLevelConfig,
  levelRole: string,
): unknown[] {
  const scope = describeScope(level);
  return [
    rules.map((r) => r.schema),
    rules.map((r) => r.table),
    rules.map((r) => r.column),
    rules.map((r) => r.style),
    scope.schemas,
    scope.tables,
    levelRole,
  ];
}

/** The minted role's `search_path`: the masking views first. */
export const MASKED_SEARCH_PATH_STATEMENT = `ALTER ROLE {{name}} SET search_path = ${escapeIdentifier(MASK_SCHEMA)}, "$user", public`;

/**
 * The key bytes behind `masking.key` (`env:NAME` or `file:/path`), read exactly as the proxy reads
 * them (`proxy/pg/config.ts`: a file's bytes as they are), so the database's tokens equal the
 * proxy's. Undefined when the fragment names no key.
 */
export function resolveMaskingKeyBytes(
  fragment: Record<string, unknown> | undefined,
  path: string,
  env: Record<string, string | undefined>,
  readFile: (path: string) => Buffer = (p) => readFileSync(p),
): Buffer | undefined {
  const ref = fragment?.key;
  if (ref === undefined) return undefined;
  if (typeof ref === 'string' && ref.startsWith('env:')) {
    const value = env[ref.slice(4)];
    if (!value) throw new ConfigError(path, `environment variable ${ref.slice(4)} is not set`);
    return Buffer.from(value, 'utf8');
  }
  if (typeof ref === 'string' && ref.startsWith('file:')) {
    try {
      return readFile(ref.slice(5));
    } catch (error) {
      throw new ConfigError(path, `cannot read key file ${ref.slice(5)}`, { cause: error });
    }
  }
  throw new ConfigError(path, 'reference the key as env:NAME or file:/path, never inline');
}

/** Statement that stores the key's pads (`$1` ipad, `$2` opad), changing the row only when they differ. */
export const STORE_HMAC_KEY_SQL = `INSERT INTO ${escapeIdentifier(MASK_SCHEMA)}.hmac_key (id, ipad, opad) VALUES (1, $1, $2)
ON CONFLICT (id) DO UPDATE SET ipad = EXCLUDED.ipad, opad = EXCLUDED.opad
WHERE hmac_key.ipad IS DISTINCT FROM EXCLUDED.ipad OR hmac_key.opad IS DISTINCT FROM EXCLUDED.opad`;
