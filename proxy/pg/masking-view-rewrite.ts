/**
 * Statements that name a masked table where PostgreSQL cannot use its masking view, rewritten to
 * the view (issue 15). The broker gives a grant's role SELECT on the unmasked columns of a masked
 * table only, and a masking view `warden_mask.<table>` (`broker/providers/postgres/masking-views.ts`);
 * two statements pg_dump and psql's `\copy` send then fail although the view would answer them:
 *
 * - `COPY [public.]t [(cols)] TO STDOUT ...` needs SELECT on every copied column, and `COPY` of a
 *   view is refused: it becomes `COPY (SELECT cols FROM warden_mask.t()) TO STDOUT ...`, the
 *   function the broker builds next to each view (pg_dump's session refuses views themselves);
 * - `LOCK TABLE [public.]t IN ACCESS SHARE MODE` needs SELECT on the whole table: it locks the
 *   view instead, which locks the table beneath it with the view owner's rights.
 *
 * - the key table `warden_mask.hmac_key` nobody but the admin may read: a whole-database pg_dump
 *   locks and copies it like any table. Its LOCK locks a masking view of the same schema
 *   instead and its COPY copies no rows, so the dump holds the table empty.
 *
 * - the key table `warden_mask.hmac_key` nobody but the admin may read: a whole-database pg_dump
 *   locks and copies it like any table. Its LOCK locks a masking view of the same schema
 *   instead and its COPY copies no rows, so the dump holds the table empty.
 *
 * Only tables of `public` (or unqualified names) are rewritten, since a view's name is its table's
 * name and the broker builds the view for `public`'s table first. Anything else is left to the
 * database, which refuses it: a statement this cannot rewrite is denied, never unmasked. Pure.
 */
import type { CopyDescription, StatementReport } from '../guardrails/sql/report.ts';
import { DATABASE_MASK_SCHEMA } from '../masking/columns.ts';
import type { Catalog } from './catalog.ts';

function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

function quoteLiteral(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

/** The masking view standing for `schema.table`, if the catalog has one. */
function findView(catalog: Catalog, schema: string | undefined, table: string): string | undefined {
  if (schema !== undefined && schema !== 'public') return undefined;
  for (const t of catalog.tables.values()) {
    if (t.schema === DATABASE_MASK_SCHEMA && t.table === table)
      return `${quoteIdent(DATABASE_MASK_SCHEMA)}.${quoteIdent(table)}`;
  }
  return undefined;
}

/** `COPY ... TO STDOUT` options as SQL, or undefined when one cannot be written back exactly. */
function renderCopyOptions(copy: CopyDescription): string | undefined {
  const parts: string[] = [];
  for (const [name, value] of copy.options) {
    if (!/^[a-z_]+$/.test(name) || value === null) return undefined;
    if (value === undefined) parts.push(name);
    else if (typeof value === 'boolean') parts.push(`${name} ${value}`);
    else if (typeof value === 'string')
      parts.push(value === '*' ? `${name} *` : `${name} ${quoteLiteral(value)}`);
    else parts.push(`${name} (${value.map(quoteIdent).join(', ')})`);
  }
  return parts.length ? ` (${parts.join(', ')})` : '';
}

const LOCK =
  /^\s*lock\s+(?:table\s+)?(?:only\s+)?(?:(public|"public"|warden_mask|"warden_mask")\s*\.\s*)?("(?:[^"]|"")+"|[a-z_][a-z0-9_$]*)\s+in\s+access\s+share\s+mode\s*;?\s*$/i;

/** The broker's key table (`masking-views.ts`). */
const KEY_TABLE = 'hmac_key';

/** Any masking view, to lock in place of the key table. */
function findAnyView(catalog: Catalog): string | undefined {
  for (const t of catalog.tables.values()) {
    if (t.schema === DATABASE_MASK_SCHEMA && t.table !== KEY_TABLE)
      return `${quoteIdent(DATABASE_MASK_SCHEMA)}.${quoteIdent(t.table)}`;
  }
  return undefined;
}

/**
 * The statement to send instead of `sql` (one statement, described by `report`), or undefined
 * to send it as it is.
 */
export function rewriteForMaskingViews(
  report: StatementReport,
  sql: string,
  catalog: Catalog | undefined,
): string | undefined {
  if (!catalog) return undefined;
  const copy = report.copy;
  if (copy?.relation && !copy.from && copy.client) {
    if (copy.relation.schema === DATABASE_MASK_SCHEMA && copy.relation.table === KEY_TABLE) {
      return 'COPY (SELECT NULL::int AS id, NULL::bytea AS ipad, NULL::bytea AS opad WHERE false) TO STDOUT';
    }
    // Binary output cannot pass the content detectors: left to the proxy's refusal.
    if (copy.options.some(([name, value]) => name === 'format' && value === 'binary')) return undefined;
    const view = findView(catalog, copy.relation.schema, copy.relation.table);
    const options = renderCopyOptions(copy);
    if (!view || options === undefined) return undefined;
    const columns = copy.columns?.length ? copy.columns.map(quoteIdent).join(', ') : '*';
    // The view's function (same rows): pg_dump's session refuses views
    // (restrict_nonsystem_relation_kind), not functions.
    return `COPY (SELECT ${columns} FROM ${view}()) TO STDOUT${options}`;
  }
  const lock = LOCK.exec(sql);
  if (lock) {
    const schema = lock[1]?.replaceAll('"', '').toLowerCase();
    const written = lock[2]!;
    const table = written.startsWith('"')
      ? written.slice(1, -1).replaceAll('""', '"')
      : written.toLowerCase();
    if (schema === DATABASE_MASK_SCHEMA) {
      const view = table === KEY_TABLE ? findAnyView(catalog) : undefined;
      return view ? `LOCK TABLE ${view} IN ACCESS SHARE MODE` : undefined;
    }
    const view = findView(catalog, 'public', table);
    return view ? `LOCK TABLE ${view} IN ACCESS SHARE MODE` : undefined;
  }
  return undefined;
}
