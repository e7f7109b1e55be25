/**
 * Column rules: mask whole values by where they come from (`customers.email`, `*.card_number`,
 * `public.customers.*`). The proxy learns each result column's table OID and attribute number
 * from RowDescription, looks the names up once, and asks {@link resolveColumnRules} which columns
 * to mask before the rows arrive.
 */
import { MaskingConfigError } from './errors.ts';
import type { MaskStyle } from './styles.ts';

/** What a column rule does: a mask style, or `none` to exempt the column from content detectors. */
export type ColumnStyle = MaskStyle | 'none';

/** A compiled column rule. */
export interface ColumnRule {
  /** The rule's pattern as configured, used as the count label `column:<match>`. */
  readonly match: string;
  readonly style: ColumnStyle;
  /** Tests lower-cased `schema`, `table` and `column` names. */
  readonly test: (schema: string, table: string, column: string) => boolean;
}

/** Schema and table of a relation, by OID (from `pg_class`/`pg_namespace`). */
export interface TableName {
  schema: string;
  table: string;
}

/** One RowDescription field: table OID (0 for computed values), attribute number, output name. */
export interface ResultColumn {
  tableOid: number;
  attnum: number;
  name: string;
}

/**
 * The schema of the masking views the broker builds in each target database
 * (`broker/providers/postgres/masking-views.ts`): their columns are masked by the database
 * already, so column rules do not apply to them again (a token hashed twice would no longer
 * match the same value read directly). Content detectors still run over them.
 */
export const DATABASE_MASK_SCHEMA = 'warden_mask';

const SEGMENT = /^[A-Za-z0-9_$*-]{1,63}$/;
const ANY = (): boolean => true;
/** Stands for the schema and table of a computed column: only a bare `*` segment matches it. */
const NO_NAME = '\u0000';

function compileSegment(segment: string): (name: string) => boolean {
  if (segment === '*') return ANY;
  const lower = segment.toLowerCase();
  if (!lower.includes('*')) return (name) => name === lower;
  const source = lower
    .split('*')
    .map((part) => part.replace(/[$-]/g, '\\$&'))
    .join('.*');
  const re = new RegExp(`^${source}$`);
  return (name) => re.test(name);
}

/**
 * Compiles a rule pattern of one to three dot-separated segments: `column`, `table.column` or
 * `schema.table.column`; missing leading segments match anything. `*` inside a segment matches
 * any run of characters (`*_email`). Names compare case-insensitively. `path` names the config
 * key for errors (`ERR_MASKING_CONFIG`).
 */
export function compileColumnRule(match: string, style: ColumnStyle, path: string): ColumnRule {
  const segments = match.split('.');
  if (segments.length > 3 || !segments.every((s) => SEGMENT.test(s))) {
    throw new MaskingConfigError(
      path,
      `"${match.slice(0, 64)}" is not a column pattern: use column, table.column or schema.table.column, with * as a wildcard`,
    );
  }
  while (segments.length < 3) segments.unshift('*');
  const [schema, table, column] = segments.map(compileSegment) as [
    (n: string) => boolean,
    (n: string) => boolean,
    (n: string) => boolean,
  ];
  return { match, style, test: (s, t, c) => schema(s) && table(t) && column(c) };
}

/**
 * Decides which result columns a rule covers. For each column, in order, returns the first rule
 * (in configuration order) that matches, or `null`.
 *
 * A column from a known table matches by schema, table and its real name (from `attributeNames`:
 * table OID → attribute number → name), and also by its output name, so an alias can neither
 * hide a masked column nor is it needed to find one. A computed column (table OID 0) or one from
 * a table missing in `tables` has no schema or table: only rules whose schema and table parts are
 * `*` can match it, by output name. Matching more rather than fewer is deliberate.
 */
export function resolveColumnRules(
  rules: readonly ColumnRule[],
  tables: ReadonlyMap<number, TableName>,
  columns: readonly ResultColumn[],
  attributeNames: ReadonlyMap<number, ReadonlyMap<number, string>>,
): (ColumnRule | null)[] {
  return columns.map((column) => {
    const table = column.tableOid === 0 ? undefined : tables.get(column.tableOid);
    const outputName = column.name.toLowerCase();
    if (!table) return rules.find((rule) => rule.test(NO_NAME, NO_NAME, outputName)) ?? null;
    const schemaName = table.schema.toLowerCase();
    const tableName = table.table.toLowerCase();
    if (schemaName === DATABASE_MASK_SCHEMA) {
      // Masked already; only an exemption from the detectors (`none`) still applies, read as
      // the rule of the table the view stands for (`public`'s, see the broker).
      const name = attributeNames.get(column.tableOid)?.get(column.attnum)?.toLowerCase() ?? outputName;
      return (
        rules.find(
          (rule) =>
            rule.style === 'none' &&
            (rule.test('public', tableName, name) || rule.test(schemaName, tableName, name)),
        ) ?? null
      );
    }
    const realName = attributeNames.get(column.tableOid)?.get(column.attnum)?.toLowerCase();
    const found = rules.find(
      (rule) =>
        (realName !== undefined && rule.test(schemaName, tableName, realName)) ||
        rule.test(schemaName, tableName, outputName),
    );
    return found ?? null;
  });
}
