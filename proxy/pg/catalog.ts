/**
 * Table and column names by OID, so masking rules written as `customers.email` find their
 * columns from RowDescription's table OID and attribute number (an alias cannot hide a column).
 * Loaded over a session's own upstream connection before the client gets it, and shared per
 * target and database for {@link CATALOG_TTL_MS}. Tables created after loading are unknown until
 * the next load: their columns then match only rules on bare column names (`*.email`).
 */
import type { TableName } from '../masking/index.ts';

/** How long a loaded catalog serves new sessions, in ms. */
export const CATALOG_TTL_MS = 30_000;

/** Columns of user relations, one row per column: oid, schema, table, attnum, attname. */
export const CATALOG_SQL =
  "SELECT c.oid, n.nspname, c.relname, a.attnum, a.attname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND a.attnum > 0 AND NOT a.attisdropped AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'";

/** Names of relations and their columns. */
export interface Catalog {
  tables: Map<number, TableName>;
  attributes: Map<number, Map<number, string>>;
  loadedAt: number;
}

/** Builds a catalog from the rows of {@link CATALOG_SQL}; malformed rows are skipped. */
export function buildCatalog(rows: readonly (readonly (string | null)[])[], loadedAt: number): Catalog {
  const tables = new Map<number, TableName>();
  const attributes = new Map<number, Map<number, string>>();
  for (const [oidText, schema, table, attnumText, attname] of rows) {
    const oid = Number(oidText);
    const attnum = Number(attnumText);
    if (!Number.isInteger(oid) || !Number.isInteger(attnum) || !schema || !table || !attname) continue;
    if (!tables.has(oid)) tables.set(oid, { schema, table });
    let columns = attributes.get(oid);
    if (!columns) {
      columns = new Map();
      attributes.set(oid, columns);
    }
    columns.set(attnum, attname);
  }
  return { tables, attributes, loadedAt };
}

/** Shared catalogs by `target/database`. */
export class CatalogCache {
  private readonly entries = new Map<string, Catalog>();

  constructor(private readonly clock: () => number = Date.now) {}

  /** The fresh catalog of `key`, or undefined when it must be (re)loaded. */
  get(key: string): Catalog | undefined {
    const entry = this.entries.get(key);
    if (!entry || this.clock() - entry.loadedAt > CATALOG_TTL_MS) return undefined;
    return entry;
  }

  set(key: string, catalog: Catalog): void {
    this.entries.set(key, catalog);
  }

  /** Forces the next session on `key` to reload (a table OID was not found). */
  invalidate(key: string): void {
    this.entries.delete(key);
  }
}
