/**
 * Statements that name a table where PostgreSQL would refuse them under Warden's column
 * privileges, rewritten so the database answers them (issue 15). The broker gives a grant's role
 * SELECT column by column on every relation in its level's scope (never on a whole table), and
 * a masking view `warden_mask.<table>` per table with masked columns
 * (`broker/providers/postgres/masking-views.ts`). Statements pg_dump and psql's `\copy` send then
 * fail although the columns they read are granted:
 *
 * - `COPY [public.]t [(cols)] TO STDOUT ...` of a masked table needs SELECT on every copied
 *   column, and `COPY` of a view is refused: it becomes `COPY (SELECT cols FROM
 *   warden_mask.t()) TO STDOUT ...`, the function the broker builds next to each view (pg_dump's
 *   session refuses views themselves). Only tables of `public` (or unqualified names) have a view
 *   (a view's name is its table's name, `public`'s first); others are left to the database.
 * - `LOCK TABLE a, b IN ACCESS SHARE MODE [NOWAIT]` needs table-wide SELECT. A masked table's
 *   lock takes its view instead (which locks the table beneath it with the view owner's rights);
 *   any other table is locked by reading no rows from it (`PERFORM FROM t WHERE false` in a
 *   `DO` block: the same ACCESS SHARE lock until the transaction ends, for a role that may
 *   SELECT one of its columns; NOWAIT becomes a 1 ms `lock_timeout` for that read only).
 * - the key table `warden_mask.hmac_key` nobody but the admin may read: a whole-database pg_dump
 *   locks and copies it like any table. Its lock is skipped and its COPY copies no rows, so the
 *   dump holds the table empty.
 *
 * Only databases where the broker enforces masking (the key table exists) are rewritten. What
 * this cannot rewrite exactly is sent as it is, so the database refuses it: denied, never
 * unmasked. Pure.
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

const IDENT = '(?:"(?:[^"]|"")+"|[a-z_][a-z0-9_$]*)';
const LOCK = /^\s*lock\s+(?:table\s+)?(.+?)\s+in\s+access\s+share\s+mode(\s+nowait)?\s*;?\s*$/is;
/** One item of LOCK's list: `[ONLY] [schema.]name [*]`, then a comma or the end. */
const LOCK_ITEM = new RegExp(
  String.raw`\s*(only\s+)?(?:(${IDENT})\s*\.\s*)?(${IDENT})\s*(\*)?\s*(?:,|$)`,
  'iy',
);

/** The broker's key table (`masking-views.ts`). */
const KEY_TABLE = 'hmac_key';
/** The dollar quote of the `DO` blocks written here. */
const BLOCK_TAG = '$warden$';

/** True when the broker enforces masking in this database (its key table exists). */
function enforcesMasking(catalog: Catalog): boolean {
  for (const t of catalog.tables.values())
    if (t.schema === DATABASE_MASK_SCHEMA && t.table === KEY_TABLE) return true;
  return false;
}

function unquote(written: string): string {
  return written.startsWith('"') ? written.slice(1, -1).replaceAll('""', '"') : written.toLowerCase();
}

/** The tables of a `LOCK ... IN ACCESS SHARE MODE`, or undefined when it is not one. */
function parseLock(
  sql: string,
): { items: { only: boolean; schema: string | undefined; table: string }[]; nowait: boolean } | undefined {
  const lock = LOCK.exec(sql);
  if (!lock) return undefined;
  const list = lock[1]!;
  if (list.trimEnd().endsWith(',')) return undefined;
  const items: { only: boolean; schema: string | undefined; table: string }[] = [];
  LOCK_ITEM.lastIndex = 0;
  while (LOCK_ITEM.lastIndex < list.length) {
    const item = LOCK_ITEM.exec(list);
    if (!item) return undefined;
    items.push({
      only: item[1] !== undefined,
      schema: item[2] === undefined ? undefined : unquote(item[2]),
      table: unquote(item[3]!),
    });
  }
  return items.length ? { items, nowait: lock[2] !== undefined } : undefined;
}

/** The LOCK of `sql` as statements that need only the column privileges the broker grants. */
function rewriteLock(sql: string, catalog: Catalog): string | undefined {
  const lock = parseLock(sql);
  if (!lock || !enforcesMasking(catalog)) return undefined;
  const views: string[] = [];
  const reads: string[] = [];
  for (const { only, schema, table } of lock.items) {
    if (schema === DATABASE_MASK_SCHEMA) {
      if (table !== KEY_TABLE) views.push(`${quoteIdent(schema)}.${quoteIdent(table)}`);
      continue;
    }
    const view = findView(catalog, schema, table);
    if (view) views.push(view);
    else
      reads.push(
        `${only ? 'ONLY ' : ''}${schema === undefined ? '' : `${quoteIdent(schema)}.`}${quoteIdent(table)}`,
      );
  }
  const mode = `IN ACCESS SHARE MODE${lock.nowait ? ' NOWAIT' : ''}`;
  if (reads.length === 0) return views.length ? `LOCK TABLE ${views.join(', ')} ${mode}` : 'DO $$BEGIN END$$';
  const body = [
    ...(views.length ? [`LOCK TABLE ${views.join(', ')} ${mode};`] : []),
    ...(lock.nowait ? ["PERFORM set_config('lock_timeout', '1ms', true);"] : []),
    ...reads.map((r) => `PERFORM FROM ${r} WHERE false;`),
    ...(lock.nowait ? ["PERFORM set_config('lock_timeout', previous, true);"] : []),
  ];
  const declare = lock.nowait ? "DECLARE previous text := current_setting('lock_timeout'); " : '';
  const text = `${declare}BEGIN ${body.join(' ')} END`;
  // A quoted name holding the quote's tag would end the block: such a LOCK goes as it is (refused).
  if (text.includes(BLOCK_TAG)) return undefined;
  return `DO ${BLOCK_TAG}${text}${BLOCK_TAG}`;
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
  return rewriteLock(sql, catalog);
}
