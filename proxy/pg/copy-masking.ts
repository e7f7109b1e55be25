/**
 * Column rules for `COPY table [(col, ...)] TO STDOUT`: COPY output carries no RowDescription,
 * but the statement names the relation and the columns, so the proxy plans the masking before
 * forwarding it ({@link planCopyOut}) and masks each row by column position as it streams back
 * ({@link CopyOutMasker}). What cannot be masked exactly (binary format, `COPY (query)`, unknown
 * options or relations) is refused. Pure: no sockets.
 */
import type { CopyDescription, CopyOptionValue } from '../guardrails/sql/classify.ts';
import type { ColumnRule, MaskCounts, Masker } from '../masking/index.ts';
import type { Catalog } from './catalog.ts';
import {
  type CopyFormat,
  CopyRowSplitter,
  decodeCopyRow,
  defaultCopyFormat,
  encodeCopyRow,
  rowContentLength,
} from './copy-codec.ts';
import { PgProxyError } from './errors.ts';

/** How to mask the rows of one `COPY ... TO STDOUT`. */
export interface CopyOutPlan {
  format: CopyFormat;
  /** The first row holds column names (CSV `HEADER`): passed as it is. */
  header: boolean;
  /** Per column in output order: its rule, or null (content detectors). */
  rules: (ColumnRule | null)[];
}

/** Why a COPY TO of a masked table is refused; the message is shown to the client. */
export interface CopyRefusal {
  refusal: string;
  /** The relation is not in the catalog (it may be newer than the catalog). */
  unknownTable?: boolean;
}

const TRUE_WORDS = new Set(['true', 'on', 'yes', '1']);
const FALSE_WORDS = new Set(['false', 'off', 'no', '0']);
const UTF8_NAMES = new Set(['utf8', 'unicode']);

function readBoolean(value: CopyOptionValue): boolean | undefined {
  if (value === undefined) return true;
  if (typeof value === 'boolean') return value;
  if (typeof value !== 'string') return undefined;
  const word = value.toLowerCase();
  return TRUE_WORDS.has(word) ? true : FALSE_WORDS.has(word) ? false : undefined;
}

function readByte(value: CopyOptionValue): number | undefined {
  return typeof value === 'string' && Buffer.byteLength(value) === 1 ? value.charCodeAt(0) : undefined;
}

/** The output format of a COPY's options, or the reason it cannot be masked. */
export function readCopyFormat(
  options: CopyDescription['options'],
): { format: CopyFormat; header: boolean } | CopyRefusal {
  const formatOption = options.findLast(([name]) => name === 'format')?.[1];
  const kind = formatOption === undefined ? 'text' : String(formatOption).toLowerCase();
  if (kind === 'binary')
    return {
      refusal: 'binary COPY output of a table with masked columns cannot be masked: use FORMAT text or csv',
    };
  if (kind !== 'text' && kind !== 'csv')
    return { refusal: `COPY format ${String(formatOption)} is not known to Warden` };
  const format = defaultCopyFormat(kind === 'csv');
  let header = false;
  for (const [name, value] of options) {
    const bad = (): CopyRefusal => ({ refusal: `COPY option ${name} cannot be masked as written` });
    switch (name) {
      case 'format':
        break;
      case 'delimiter': {
        const byte = readByte(value);
        if (byte === undefined) return bad();
        format.delimiter = byte;
        break;
      }
      case 'null':
        if (typeof value !== 'string') return bad();
        format.nullText = Buffer.from(value, 'utf8');
        break;
      case 'header': {
        const on = readBoolean(value);
        if (on === undefined) return bad();
        header = on;
        break;
      }
      case 'quote':
      case 'escape': {
        const byte = readByte(value);
        if (byte === undefined || !format.csv) return bad();
        if (name === 'quote') format.quote = byte;
        else format.escape = byte;
        break;
      }
      case 'force_quote':
        // Forced quotes show in the output; re-encoding keeps a quoted value quoted.
        if (!format.csv) return bad();
        break;
      case 'encoding':
        if (typeof value !== 'string' || !UTF8_NAMES.has(value.toLowerCase().replace(/[-_]/g, '')))
          return bad();
        break;
      default:
        return { refusal: `COPY option ${name} is not known to Warden's masking` };
    }
  }
  // ESCAPE defaults to QUOTE when only QUOTE is given.
  if (format.csv && !options.some(([name]) => name === 'escape')) format.escape = format.quote;
  return { format, header };
}

/**
 * Plans the masking of `COPY table [(columns)] TO STDOUT` reading a table with masked columns:
 * the columns come from the statement's list or, without one, the table's columns in attnum
 * order (dropped columns are not in the catalog). Returns a refusal for what cannot be masked
 * exactly.
 */
export function planCopyOut(
  copy: CopyDescription,
  catalog: Catalog | undefined,
  masker: Masker,
): CopyOutPlan | CopyRefusal {
  if (!copy.relation) {
    return {
      refusal:
        'COPY (query) TO reads tables with masked columns, which COPY output cannot mask by column; use COPY table TO or SELECT',
    };
  }
  const read = readCopyFormat(copy.options);
  if ('refusal' in read) return read;
  const { schema, table } = copy.relation;
  const matches = [...(catalog?.tables ?? [])].filter(
    ([, name]) => name.table === table && (schema === undefined || name.schema === schema),
  );
  if (matches.length === 0) {
    return {
      refusal: `table ${table} is not known to Warden's catalog yet; try again in a new session`,
      unknownTable: true,
    };
  }
  if (matches.length > 1) {
    return { refusal: `table ${table} exists in several schemas: name its schema in COPY` };
  }
  const [oid, name] = matches[0]!;
  const attributes = catalog!.attributes.get(oid) ?? new Map<number, string>();
  let columns: { attnum: number; name: string }[];
  if (copy.columns) {
    const byName = new Map([...attributes].map(([attnum, column]) => [column, attnum]));
    columns = [];
    for (const column of copy.columns) {
      const attnum = byName.get(column);
      if (attnum === undefined)
        return { refusal: `column ${column} of ${table} is not known to Warden's catalog` };
      columns.push({ attnum, name: column });
    }
  } else {
    columns = [...attributes]
      .sort((a, b) => a[0] - b[0])
      .map(([attnum, column]) => ({ attnum, name: column }));
  }
  const rules = masker.resolveColumns(
    new Map([[oid, name]]),
    columns.map((c) => ({ tableOid: oid, attnum: c.attnum, name: c.name })),
    catalog!.attributes,
  );
  return { ...read, rules };
}

/**
 * Masks the CopyData payloads of one COPY TO: values of ruled columns in the rule's style, the
 * others through the content detectors (when `scan`). Rows are re-encoded only when a value
 * changed. Throws `ERR_PGPROXY_UNMASKABLE` when a row does not have the planned column count.
 */
export class CopyOutMasker {
  private readonly splitter: CopyRowSplitter;
  private headerPending: boolean;

  constructor(
    private readonly plan: CopyOutPlan,
    private readonly masker: Masker,
    private readonly scan: boolean,
    private readonly count: (counts: MaskCounts) => void,
    maxRow?: number,
  ) {
    this.splitter = new CopyRowSplitter(plan.format, maxRow);
    this.headerPending = plan.header;
  }

  /**
   * The masked rows completed by `payload` (empty when it ends inside a row); a view of `payload`
   * itself when it starts a row and nothing in it was masked.
   */
  feed(payload: Buffer): Buffer {
    const continues = this.splitter.pending;
    const rows = this.splitter.push(payload);
    let changed = continues;
    let length = 0;
    const masked = rows.map((row) => {
      const out = this.maskRow(row);
      if (out !== row) changed = true;
      length += out.length;
      return out;
    });
    if (!changed) return payload.subarray(0, length);
    return masked.length === 1 ? masked[0]! : Buffer.concat(masked, length);
  }

  /** The masked last row when the output did not end with a line terminator. */
  finish(): Buffer | undefined {
    const rest = this.splitter.finish();
    return rest === undefined ? undefined : this.maskRow(rest);
  }

  private maskRow(row: Buffer): Buffer {
    if (this.headerPending) {
      this.headerPending = false;
      return row;
    }
    const end = rowContentLength(row);
    const fields = decodeCopyRow(row.subarray(0, end), this.plan.format);
    const rules = this.plan.rules;
    if (fields.length !== rules.length) {
      throw new PgProxyError(
        'ERR_PGPROXY_UNMASKABLE',
        `a COPY row has ${fields.length} values where ${rules.length} columns were planned`,
      );
    }
    let changed = false;
    for (let i = 0; i < fields.length; i++) {
      const field = fields[i]!;
      const rule = rules[i] ?? null;
      if (field.value === null || rule?.style === 'none' || (rule === null && !this.scan)) continue;
      const result = this.masker.maskBuffer(field.value, rule);
      if (!result.changed) continue;
      field.value = result.buffer;
      changed = true;
      this.count(result.counts);
    }
    if (!changed) return row;
    return Buffer.concat([encodeCopyRow(fields, this.plan.format), row.subarray(end)]);
  }
}
