/**
 * The SQL that creates and removes a grant's role, as templates in the style of Vault's
 * `creation_statements`: `{{name}}` (quoted identifier), `{{password}}` (the SCRAM verifier, as a
 * literal), `{{expiration}}` (timestamp literal), `{{connection_limit}}`. Placeholders expand to
 * already-quoted SQL: write `{{name}}`, not `"{{name}}"`.
 *
 * Names Warden gives roles on a target with prefix `p` (default `warden_`):
 * - grant roles `p<person>_<grant id>`: the person id starts with [a-z0-9], never with `_`;
 * - level roles `p_<level>` (`warden__read`): level names start with [a-z0-9] too;
 * - the marker role `p__minted` (`warden___minted`): three underscores, which neither of the
 *   two above can produce. Every grant role is made a member of it in the transaction that
 *   creates the role; that membership is Warden's mark in the database (see `docs/postgres.md`).
 */
import pg from 'pg';
import type { PgLevelConfig } from '../../config/schema.ts';

const { escapeIdentifier, escapeLiteral } = pg;

export interface RoleTemplateValues {
  name: string;
  passwordVerifier: string;
  expiresAt: number;
  connectionLimit: number;
}

/**
 * The NOLOGIN role that holds a level's table privileges (`warden__read`). Grant roles become
 * members of it instead of receiving the privileges themselves: creating and dropping a grant's
 * role then never rewrites table ACLs, which is what makes a thousand revocations cheap.
 */
export function buildLevelRoleName(prefix: string, level: string): string {
  return `${prefix}_${level.replace(/[^a-z0-9_]/g, '_')}`.slice(0, 63);
}

/** The NOLOGIN marker role every grant role Warden mints is a member of (`warden___minted`). */
export function buildMarkerRoleName(prefix: string): string {
  return `${prefix}__minted`;
}

/** Idempotent creation of a NOLOGIN role that Warden owns (level roles, the marker). */
export function buildEnsureRoleStatement(role: string): string {
  return `DO $$ BEGIN CREATE ROLE ${escapeIdentifier(role)} NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$`;
}

/** Table privileges of a level, upper-case (`SELECT`), and the sequence privileges that go with them. */
export function describeLevelPrivileges(level: PgLevelConfig): { tables: string[]; sequences: string[] } {
  const tables = (level.grants ?? []).map((g) => g.toUpperCase());
  const writes = level.grants?.some((g) => g === 'insert' || g === 'update') ?? false;
  return { tables, sequences: writes ? ['USAGE', 'SELECT'] : tables.length ? ['SELECT'] : [] };
}

/** `public.orders` for `orders`; identifiers fold to lower case, as PostgreSQL folds unquoted ones. */
export function qualifyTable(name: string): { schema: string; table: string } {
  const [schema, table] = name.includes('.') ? name.split('.', 2) : ['public', name];
  return { schema: schema!.toLowerCase(), table: table!.toLowerCase() };
}

/**
 * The catalogue query behind a level's privileges: every (object, privilege) of the level's
 * scope that `$4` (the level role) does not hold yet, and whether the admin may grant it.
 * Parameters: `$1` schemas, `$2` table privileges, `$3` tables as `schema.table`, `$4` the level
 * role, `$5` sequence privileges, `$6` true when the target masks columns: SELECT and REFERENCES
 * are then granted column by column (`masking-views.ts`) and never asked for here. Relation kinds
 * are those `ON ALL TABLES IN SCHEMA` covers.
 */
export const MISSING_LEVEL_PRIVILEGES_SQL = `
WITH scope AS (
  SELECT c.oid, c.relkind, n.nspname, c.relname
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
    AND (n.nspname = ANY($1::text[]) OR (n.nspname || '.' || c.relname) = ANY($3::text[]))
), sequences AS (
  SELECT c.oid, n.nspname, c.relname
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind = 'S'
    AND (n.nspname = ANY($1::text[]) OR EXISTS (
      SELECT 1 FROM pg_depend d JOIN scope s ON s.oid = d.refobjid
      WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('a', 'i')))
)
SELECT 'schema' AS kind, format('%I', n.nspname) AS object, 'USAGE' AS privilege,
       has_schema_privilege(current_user, n.oid, 'USAGE WITH GRANT OPTION') AS grantable
FROM pg_namespace n
WHERE n.nspname IN (SELECT nspname FROM scope UNION SELECT unnest($1::text[]))
  AND NOT has_schema_privilege($4::name, n.oid, 'USAGE')
UNION ALL
SELECT 'table', format('%I.%I', s.nspname, s.relname), p.privilege,
       has_table_privilege(current_user, s.oid, p.privilege || ' WITH GRANT OPTION')
FROM scope s CROSS JOIN unnest($2::text[]) AS p(privilege)
WHERE NOT has_table_privilege($4::name, s.oid, p.privilege)
  AND NOT (p.privilege IN ('SELECT', 'REFERENCES') AND $6::boolean)
UNION ALL
SELECT 'sequence', format('%I.%I', q.nspname, q.relname), p.privilege,
       has_sequence_privilege(current_user, q.oid, p.privilege || ' WITH GRANT OPTION')
FROM sequences q CROSS JOIN unnest($5::text[]) AS p(privilege)
WHERE NOT has_sequence_privilege($4::name, q.oid, p.privilege)
ORDER BY 1, 2, 3`;

/** One privilege a level role lacks, from {@link MISSING_LEVEL_PRIVILEGES_SQL}. */
export interface MissingPrivilege {
  kind: 'schema' | 'table' | 'sequence';
  /** Already-quoted name (`public.orders`, `"Odd"."Name"`). */
  object: string;
  privilege: string;
  grantable: boolean;
}

/** GRANT statements for the privileges the admin may grant, one per object. */
export function buildGrantStatements(levelRole: string, missing: readonly MissingPrivilege[]): string[] {
  const byObject = new Map<string, { kind: MissingPrivilege['kind']; privileges: string[] }>();
  for (const m of missing) {
    if (!m.grantable) continue;
    const key = `${m.kind} ${m.object}`;
    const entry = byObject.get(key) ?? { kind: m.kind, privileges: [] };
    entry.privileges.push(m.privilege);
    byObject.set(key, entry);
  }
  const role = escapeIdentifier(levelRole);
  return [...byObject].map(([key, { kind, privileges }]) => {
    const object = key.slice(kind.length + 1);
    const on = kind === 'schema' ? 'SCHEMA' : kind === 'table' ? 'TABLE' : 'SEQUENCE';
    return `GRANT ${privileges.join(', ')} ON ${on} ${object} TO ${role}`;
  });
}

/**
 * Default statements for a grant: a LOGIN role that expires, member of its level's roles.
 * Warden's mark (membership in the marker role) is added by the provider to every level,
 * custom `creation_statements` included.
 */
export function buildDefaultCreationStatements(
  level: PgLevelConfig,
  levelRole: string | undefined,
): string[] {
  const statements = [
    'CREATE ROLE {{name}} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION INHERIT PASSWORD {{password}} VALID UNTIL {{expiration}} CONNECTION LIMIT {{connection_limit}}',
  ];
  for (const role of level.inherit ?? []) statements.push(`GRANT ${escapeIdentifier(role)} TO {{name}}`);
  if (levelRole) statements.push(`GRANT ${escapeIdentifier(levelRole)} TO {{name}}`);
  return statements;
}

/** Fills a template; every value is quoted for its position, so no input can break out of it. */
export function renderStatement(template: string, values: RoleTemplateValues): string {
  return template.replace(/\{\{\s*(\w+)\s*\}\}/g, (whole, key: string) => {
    switch (key) {
      case 'name':
        return escapeIdentifier(values.name);
      case 'password':
        return escapeLiteral(values.passwordVerifier);
      case 'expiration':
        return escapeLiteral(new Date(values.expiresAt).toISOString());
      case 'connection_limit':
        return String(Math.trunc(values.connectionLimit));
      default:
        return whole;
    }
  });
}
