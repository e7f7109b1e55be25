/**
 * Where the database cannot enforce a target's column rules for a level (issue 15, item 4). A
 * grant's role reads what its level role is given (Warden manages that: `masking-views.ts`) but
 * also what it inherits and what PUBLIC holds; Warden cannot take those away, so it names them:
 *
 * - a level with custom `creation_statements`: Warden does not manage its privileges;
 * - a role the level `inherit:`s that may SELECT a masked column itself;
 * - PUBLIC holding SELECT on a masked column (every role reads it);
 * - a level granting `trigger` on a table with masked columns: a trigger function the role owns
 *   receives whole rows (masked columns included) of every write, by anyone, to that table;
 * - default privileges (`ALTER DEFAULT PRIVILEGES ... GRANT SELECT ON TABLES`) in a scope schema
 *   giving PUBLIC, the level role or an inherited role SELECT on tables created later: such a
 *   table is readable whole from its creation, before Warden looks at it.
 *
 * `check()` (start-up and `warden doctor`) refuses unless the level sets
 * `allow_unenforced_masking: true`.
 */
import pg from 'pg';
import type { PostgresTargetConfig } from '../../config/schema.ts';
import { type DbColumnRule, describeScope, MASK_SCHEMA } from './masking-views.ts';
import { buildLevelRoleName } from './statements.ts';

/** One rule the database cannot enforce for one level, and why. */
export interface UnenforcedMasking {
  level: string;
  rule: string;
  reason: string;
}

/**
 * Masked columns of the database (first matching rule masks), whether each of `$5` roles (by
 * name; `public` for PUBLIC) may SELECT it, and whether it lies in a scope (`$6` schemas, `$7`
 * tables).
 */
const MASKED_COLUMN_READERS_SQL = `
WITH rules AS (
  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS r(s, t, c, style, ord)
), hits AS (
  SELECT c.oid, n.nspname, c.relname, a.attnum, a.attname, c.relacl, a.attacl,
         (SELECT r.style || ' ' || r.ord FROM rules r
           WHERE lower(n.nspname) ~ r.s AND lower(c.relname) ~ r.t AND lower(a.attname) ~ r.c
           ORDER BY r.ord LIMIT 1) AS hit
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
  WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND n.nspname NOT IN ('pg_catalog', 'information_schema', '${MASK_SCHEMA}')
)
SELECT h.nspname || '.' || h.relname || '.' || h.attname AS column, split_part(h.hit, ' ', 2)::int AS rule_index,
       ARRAY(SELECT role FROM unnest($5::text[]) AS role
             WHERE CASE WHEN role = 'public'
                   THEN EXISTS (SELECT 1 FROM aclexplode(h.relacl) x WHERE x.grantee = 0 AND x.privilege_type = 'SELECT')
                     OR EXISTS (SELECT 1 FROM aclexplode(h.attacl) x WHERE x.grantee = 0 AND x.privilege_type = 'SELECT')
                   ELSE EXISTS (SELECT 1 FROM pg_roles WHERE rolname = role) AND has_column_privilege(role, h.oid, h.attnum, 'SELECT') END) AS readers,
       (h.nspname = ANY($6::text[]) OR (h.nspname || '.' || h.relname) = ANY($7::text[])) AS in_scope
FROM hits h WHERE split_part(h.hit, ' ', 1) IN ('hash', 'last4', 'redact')
ORDER BY 1`;

/**
 * Default privileges giving SELECT on new tables in a scope schema (`$1`; global entries too) to
 * PUBLIC or to a role one of `$2` (the level role, inherited roles) is a member of.
 */
const DEFAULT_TABLE_READERS_SQL = `
SELECT DISTINCT pg_get_userbyid(d.defaclrole) AS creator, n.nspname AS schema,
       CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(x.grantee)) END AS grantee
FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace
CROSS JOIN aclexplode(d.defaclacl) x
WHERE d.defaclobjtype = 'r' AND x.privilege_type = 'SELECT'
  AND (d.defaclnamespace = 0 OR n.nspname = ANY($1::text[]))
  AND (x.grantee = 0 OR EXISTS (SELECT 1 FROM unnest($2::text[]) AS role JOIN pg_roles r ON r.rolname = role
                                WHERE pg_has_role(r.oid, x.grantee, 'USAGE')))
ORDER BY 1, 2, 3`;

/** Lists every (level, rule) of `target` the database cannot enforce (see the module comment). */
export async function findUnenforcedMasking(
  client: pg.ClientBase,
  target: PostgresTargetConfig,
  rules: readonly DbColumnRule[],
): Promise<UnenforcedMasking[]> {
  const found: UnenforcedMasking[] = [];
  const masking = rules.filter((r) => r.style !== 'none');
  if (masking.length === 0) return found;
  const inherited = [...new Set(Object.values(target.levels).flatMap((l) => l.inherit ?? []))];
  for (const [name, level] of Object.entries(target.levels)) {
    if (level.creation_statements?.length) {
      for (const rule of masking)
        found.push({
          level: name,
          rule: rule.match,
          reason: 'custom creation_statements: Warden does not manage what this level reads',
        });
      continue;
    }
    const scope = describeScope(level);
    const { rows } = await client.query<{
      column: string;
      rule_index: number;
      readers: string[];
      in_scope: boolean;
    }>(MASKED_COLUMN_READERS_SQL, [
      rules.map((r) => r.schema),
      rules.map((r) => r.table),
      rules.map((r) => r.column),
      rules.map((r) => r.style),
      ['public', ...inherited],
      scope.schemas,
      scope.tables,
    ]);
    const schemas = [...new Set([...scope.schemas, ...scope.tables.map((t) => t.split('.')[0]!)])];
    const defaults = await client.query<{ creator: string; schema: string | null; grantee: string }>(
      DEFAULT_TABLE_READERS_SQL,
      [schemas, [buildLevelRoleName(target.role_prefix, name), ...(level.inherit ?? [])]],
    );
    for (const row of defaults.rows)
      found.push({
        level: name,
        rule: masking.map((r) => r.match).join(', '),
        reason: `default privileges of ${pg.escapeIdentifier(row.creator)} ${row.schema === null ? 'in every schema' : `in schema ${row.schema}`} give ${row.grantee} SELECT on new tables, readable before Warden looks at them`,
      });
    for (const row of rows) {
      const rule = rules[row.rule_index - 1]?.match ?? '?';
      if (row.readers.includes('public'))
        found.push({ level: name, rule, reason: `PUBLIC may read ${row.column}` });
      for (const role of level.inherit ?? []) {
        if (row.readers.includes(role))
          found.push({
            level: name,
            rule,
            reason: `inherited role ${pg.escapeIdentifier(role)} may read ${row.column}`,
          });
      }
      if (row.in_scope && level.grants?.includes('trigger'))
        found.push({
          level: name,
          rule,
          reason: `the trigger grant lets the role's trigger functions read ${row.column} of every written row`,
        });
    }
  }
  return found;
}
