/**
 * The row codec of `COPY ... TO STDOUT` output in text and CSV format: split a byte stream into
 * rows (a row may span CopyData messages and chunks; a CSV quoted value may span lines), decode a
 * row into its values, encode values back the way the server writes them. Pure: bytes in, bytes
 * out. Every special byte (delimiter, quote, escape, backslash, CR, LF) is ASCII, and UTF-8 never
 * uses ASCII bytes inside a multi-byte character, so scanning bytes is exact.
 */
import { PgProxyError } from './errors.ts';

/** Most bytes of one row held while waiting for its end (PostgreSQL caps a field at 1 GB). */
export const DEFAULT_MAX_COPY_ROW = 64 * 1024 * 1024;

const LF = 0x0a;
const CR = 0x0d;
const BACKSLASH = 0x5c;

/** How rows are written (from the COPY statement's options). */
export interface CopyFormat {
  csv: boolean;
  /** The delimiter byte: tab for text, `,` for CSV by default. */
  delimiter: number;
  /** The NULL marker: `\N` for text, empty for CSV by default. */
  nullText: Buffer;
  /** CSV quote byte (`"`). */
  quote: number;
  /** CSV escape byte (the quote by default). */
  escape: number;
}

/** One decoded value; `quoted` tells whether CSV wrote it between quotes. */
export interface CopyField {
  value: Buffer | null;
  quoted: boolean;
}

/** The default format of text (`csv` false) or CSV COPY output. */
export function defaultCopyFormat(csv: boolean): CopyFormat {
  return csv
    ? { csv, delimiter: 0x2c, nullText: Buffer.alloc(0), quote: 0x22, escape: 0x22 }
    : { csv, delimiter: 0x09, nullText: Buffer.from('\\N'), quote: 0x22, escape: 0x22 };
}

/**
 * Splits COPY output into rows. Feed chunks in order; each call returns the rows completed by
 * that chunk, each with its line terminator. Bounded: a row longer than `maxRow` bytes throws
 * `ERR_PGPROXY_UNMASKABLE`.
 */
export class CopyRowSplitter {
  private held: Buffer[] = [];
  private heldBytes = 0;
  private inQuote = false;
  /** CSV: the previous byte was the escape inside quotes (escape differs from quote). */
  private escaped = false;

  constructor(
    private readonly format: CopyFormat,
    private readonly maxRow = DEFAULT_MAX_COPY_ROW,
  ) {}

  /** True when bytes of an unfinished row are held. */
  get pending(): boolean {
    return this.heldBytes > 0;
  }

  /** Returns the rows `chunk` completes. */
  push(chunk: Buffer): Buffer[] {
    const rows: Buffer[] = [];
    const { csv, quote, escape: esc } = this.format;
    let start = 0;
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i]!;
      if (csv) {
        if (this.escaped) {
          this.escaped = false;
          if (c === quote || c === esc) continue;
        }
        if (this.inQuote && c === esc && esc !== quote) {
          this.escaped = true;
          continue;
        }
        // With escape = quote, a doubled quote toggles twice: in, out, in.
        if (c === quote) {
          this.inQuote = !this.inQuote;
          continue;
        }
        if (this.inQuote) continue;
      }
      if (c !== LF) continue;
      const end = i + 1;
      rows.push(this.take(chunk.subarray(start, end)));
      start = end;
    }
    if (start < chunk.length) this.hold(chunk.subarray(start));
    return rows;
  }

  /** The bytes of a last row without a line terminator, if any (at CopyDone). */
  finish(): Buffer | undefined {
    if (this.heldBytes === 0) return undefined;
    return this.take(Buffer.alloc(0));
  }

  private hold(part: Buffer): void {
    if (this.heldBytes + part.length > this.maxRow) {
      throw new PgProxyError(
        'ERR_PGPROXY_UNMASKABLE',
        `a COPY row is longer than ${this.maxRow} bytes and cannot be masked`,
      );
    }
    // Copied: the chunk's buffer is reused by the socket layer.
    this.held.push(Buffer.from(part));
    this.heldBytes += part.length;
  }

  private take(tail: Buffer): Buffer {
    if (this.heldBytes === 0) return tail;
    if (this.heldBytes + tail.length > this.maxRow) this.hold(tail);
    const row = Buffer.concat([...this.held, tail]);
    this.held = [];
    this.heldBytes = 0;
    return row;
  }
}

/** The length of `row` without its line terminator (`\n` or `\r\n`). */
export function rowContentLength(row: Buffer): number {
  let end = row.length;
  if (end > 0 && row[end - 1] === LF) end--;
  if (end > 0 && row[end - 1] === CR) end--;
  return end;
}

/** Decodes one row (without its line terminator) into values. */
export function decodeCopyRow(row: Buffer, format: CopyFormat): CopyField[] {
  return format.csv ? decodeCsvRow(row, format) : decodeTextRow(row, format);
}

function decodeTextRow(row: Buffer, format: CopyFormat): CopyField[] {
  const fields: CopyField[] = [];
  let start = 0;
  for (let i = 0; i <= row.length; i++) {
    if (i < row.length && row[i] === BACKSLASH) {
      i++;
      continue;
    }
    if (i < row.length && row[i] !== format.delimiter) continue;
    const raw = row.subarray(start, Math.min(i, row.length));
    fields.push({ value: raw.equals(format.nullText) ? null : unescapeText(raw), quoted: false });
    start = i + 1;
  }
  return fields;
}

const TEXT_ESCAPES: Record<number, number> = {
  98: 0x08, // \b
  102: 0x0c, // \f
  110: LF, // \n
  114: CR, // \r
  116: 0x09, // \t
  118: 0x0b, // \v
};

function isOctal(c: number | undefined): boolean {
  return c !== undefined && c >= 0x30 && c <= 0x37;
}

function hexValue(c: number | undefined): number {
  if (c === undefined) return -1;
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const lower = c | 0x20;
  return lower >= 0x61 && lower <= 0x66 ? lower - 0x61 + 10 : -1;
}

/** Text-format backslash escapes, as COPY FROM reads them. */
function unescapeText(raw: Buffer): Buffer {
  if (!raw.includes(BACKSLASH)) return raw;
  const out = Buffer.allocUnsafe(raw.length);
  let n = 0;
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    if (c !== BACKSLASH || i + 1 >= raw.length) {
      out[n++] = c;
      continue;
    }
    const next = raw[++i]!;
    if (isOctal(next)) {
      let value = next - 0x30;
      for (let k = 0; k < 2 && isOctal(raw[i + 1]); k++) value = value * 8 + (raw[++i]! - 0x30);
      out[n++] = value & 0xff;
    } else if (next === 0x78 && hexValue(raw[i + 1]) >= 0) {
      let value = hexValue(raw[++i]);
      if (hexValue(raw[i + 1]) >= 0) value = value * 16 + hexValue(raw[++i]);
      out[n++] = value;
    } else {
      out[n++] = TEXT_ESCAPES[next] ?? next;
    }
  }
  return out.subarray(0, n);
}

function decodeCsvRow(row: Buffer, format: CopyFormat): CopyField[] {
  const { delimiter, quote, escape: esc } = format;
  const fields: CopyField[] = [];
  let i = 0;
  for (;;) {
    const parts: Buffer[] = [];
    let quoted = false;
    let segment = i;
    let unquotedOnly = true;
    while (i < row.length && row[i] !== delimiter) {
      if (row[i] !== quote) {
        i++;
        continue;
      }
      // A quoted section: up to the closing quote, escapes taken literally.
      quoted = true;
      unquotedOnly = false;
      parts.push(row.subarray(segment, i));
      i++;
      segment = i;
      for (;;) {
        if (i >= row.length) throw unterminated();
        const c = row[i]!;
        if (
          c === esc &&
          (row[i + 1] === quote || row[i + 1] === esc) &&
          (esc !== quote || c === row[i + 1])
        ) {
          parts.push(row.subarray(segment, i));
          segment = i + 1;
          i += 2;
          continue;
        }
        if (c === quote) break;
        i++;
      }
      parts.push(row.subarray(segment, i));
      i++;
      segment = i;
    }
    parts.push(row.subarray(segment, i));
    const value = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    fields.push({ value: unquotedOnly && value.equals(format.nullText) ? null : value, quoted });
    if (i >= row.length) return fields;
    i++;
  }
}

function unterminated(): PgProxyError {
  return new PgProxyError('ERR_PGPROXY_UNMASKABLE', 'a COPY CSV row ends inside a quoted value');
}

/** Encodes values into one row (without its line terminator), escaped as the server does. */
export function encodeCopyRow(fields: readonly CopyField[], format: CopyFormat): Buffer {
  const parts: Buffer[] = [];
  const separator = Buffer.from([format.delimiter]);
  for (let i = 0; i < fields.length; i++) {
    if (i > 0) parts.push(separator);
    const field = fields[i]!;
    if (field.value === null) parts.push(format.nullText);
    else if (format.csv) parts.push(encodeCsvValue(field.value, field.quoted, fields.length === 1, format));
    else parts.push(escapeText(field.value, format.delimiter));
  }
  return Buffer.concat(parts);
}

const TEXT_ESCAPE_OUT: Record<number, number> = {
  8: 0x62,
  12: 0x66,
  [LF]: 0x6e,
  [CR]: 0x72,
  9: 0x74,
  11: 0x76,
};

function escapeText(value: Buffer, delimiter: number): Buffer {
  let extra = 0;
  for (const c of value) if (c === BACKSLASH || c === delimiter || c < 0x20) extra++;
  if (extra === 0) return value;
  const out = Buffer.allocUnsafe(value.length + extra);
  let n = 0;
  for (const c of value) {
    const named = c < 0x20 ? TEXT_ESCAPE_OUT[c] : undefined;
    if (named !== undefined) {
      out[n++] = BACKSLASH;
      out[n++] = named;
    } else if (c === BACKSLASH || c === delimiter) {
      out[n++] = BACKSLASH;
      out[n++] = c;
    } else {
      out[n++] = c;
    }
  }
  return out.subarray(0, n);
}

const END_MARKER = Buffer.from('\\.');

function encodeCsvValue(value: Buffer, wasQuoted: boolean, single: boolean, format: CopyFormat): Buffer {
  const { delimiter, quote, escape: esc } = format;
  let quoted = wasQuoted || value.equals(format.nullText) || (single && value.equals(END_MARKER));
  let extra = 0;
  for (const c of value) {
    if (c === delimiter || c === quote || c === LF || c === CR) quoted = true;
    if (c === quote || c === esc) extra++;
  }
  if (!quoted) return value;
  const out = Buffer.allocUnsafe(value.length + extra + 2);
  let n = 0;
  out[n++] = quote;
  for (const c of value) {
    if (c === quote || c === esc) out[n++] = esc;
    out[n++] = c;
  }
  out[n++] = quote;
  return out.subarray(0, n);
}
