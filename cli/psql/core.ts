/**
 * The pure core of `warden psql`, a minimal SQL client for machines without psql: connection
 * strings in, connection settings out; lines in, statements out; results and server errors in,
 * aligned text out. The shell (`cli/commands/psql.ts`) does the socket and terminal work.
 */
import { PsqlError } from './errors.ts';

/** TLS use, as libpq names it: `prefer` tries TLS and falls back to plaintext. */
export type SslMode = 'disable' | 'prefer' | 'require' | 'verify-full';

const SSL_MODES: readonly SslMode[] = ['disable', 'prefer', 'require', 'verify-full'];

/** Where and as whom to connect. */
export interface ConnectionSettings {
  host: string;
  port: number;
  database: string;
  user: string;
  /** From the URI or `PGPASSWORD`; undefined means ask. */
  password: string | undefined;
  sslmode: SslMode;
}

/** Longest connection string accepted, in characters. */
const MAX_CONNINFO = 2048;

function invalid(message: string): PsqlError {
  return new PsqlError('ERR_PSQL_CONNINFO_INVALID', message);
}

/** Splits libpq `key=value` pairs (values may be single-quoted with `\'` and `\\` escapes). */
function parseKeywords(text: string): Map<string, string> {
  const out = new Map<string, string>();
  let i = 0;
  while (i < text.length) {
    while (i < text.length && /\s/.test(text[i]!)) i++;
    if (i >= text.length) break;
    const eq = text.indexOf('=', i);
    if (eq < 0) throw invalid(`"${text.slice(i, i + 40)}" is not key=value`);
    const key = text.slice(i, eq).trim();
    i = eq + 1;
    while (i < text.length && text[i] === ' ') i++;
    let value = '';
    if (text[i] === "'") {
      i++;
      for (;;) {
        if (i >= text.length) throw invalid(`unterminated quoted value for ${key.slice(0, 40)}`);
        const c = text[i]!;
        if (c === '\\' && i + 1 < text.length) {
          value += text[i + 1];
          i += 2;
        } else if (c === "'") {
          i++;
          break;
        } else {
          value += c;
          i++;
        }
      }
    } else {
      while (i < text.length && !/\s/.test(text[i]!)) value += text[i++];
    }
    out.set(key, value);
  }
  return out;
}

function parseUri(text: string): Map<string, string> {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw invalid('the connection URI does not parse (postgres://user@host:port/database)');
  }
  const out = new Map<string, string>();
  if (url.hostname) out.set('host', url.hostname.replace(/^\[|\]$/g, ''));
  if (url.port) out.set('port', url.port);
  if (url.username) out.set('user', decodeURIComponent(url.username));
  if (url.password) out.set('password', decodeURIComponent(url.password));
  const database = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (database) out.set('dbname', database);
  for (const [key, value] of url.searchParams) out.set(key, value);
  return out;
}

/**
 * Reads a connection string: a URI (`postgres://user@127.0.0.1:6432/demo`) or libpq keywords
 * (`host=127.0.0.1 port=6432 dbname=demo user=u`, as Warden's DM prints them). Missing parts
 * come from `PGHOST`, `PGPORT`, `PGDATABASE`, `PGUSER`, `PGPASSWORD`, `PGSSLMODE`.
 * @throws PsqlError `ERR_PSQL_CONNINFO_INVALID` naming what is wrong.
 */
export function parseConnectionString(
  text: string | undefined,
  env: Record<string, string | undefined> = {},
): ConnectionSettings {
  const raw = (text ?? '').trim();
  if (raw.length > MAX_CONNINFO)
    throw invalid(`the connection string is longer than ${MAX_CONNINFO} characters`);
  const given = /^postgres(?:ql)?:\/\//i.test(raw) ? parseUri(raw) : parseKeywords(raw);
  const known = new Set([
    'host',
    'hostaddr',
    'port',
    'dbname',
    'user',
    'password',
    'sslmode',
    'application_name',
  ]);
  for (const key of given.keys()) {
    if (!known.has(key)) throw invalid(`unknown connection keyword "${key.slice(0, 40)}"`);
  }
  const pick = (key: string, envName: string) => given.get(key) ?? env[envName];
  const host = given.get('hostaddr') ?? pick('host', 'PGHOST') ?? '127.0.0.1';
  const portText = pick('port', 'PGPORT') ?? '5432';
  const port = Number(portText);
  if (!/^\d{1,5}$/.test(portText) || port < 1 || port > 65535) {
    throw invalid(`port "${portText.slice(0, 20)}" is not a port number`);
  }
  const user = pick('user', 'PGUSER');
  if (!user) throw invalid('no user: give user=… (the user in your DM) or set PGUSER');
  const sslmode = (pick('sslmode', 'PGSSLMODE') ?? 'prefer') as SslMode;
  if (!SSL_MODES.includes(sslmode)) {
    throw invalid(`sslmode "${String(sslmode).slice(0, 20)}" is not one of ${SSL_MODES.join(', ')}`);
  }
  return {
    host,
    port,
    database: pick('dbname', 'PGDATABASE') ?? user,
    user,
    password: pick('password', 'PGPASSWORD'),
    sslmode,
  };
}

/** What one input line amounts to. */
export type LineOutcome =
  | { kind: 'quit' }
  | { kind: 'sql'; text: string }
  | { kind: 'more' }
  | { kind: 'help' }
  | { kind: 'unknown-meta'; command: string };

/** Longest statement kept while lines accumulate, in characters. */
export const MAX_STATEMENT = 1_000_000;

/**
 * Gathers lines into statements: a statement is sent when a line ends with `;` outside quotes.
 * `\q` quits, `\?` helps; other backslash commands are unknown (this is not psql).
 */
export class StatementBuffer {
  #text = '';
  #quote: string | undefined;

  /** True while part of a statement waits for more lines. */
  get pending(): boolean {
    return this.#text.trim() !== '';
  }

  push(line: string): LineOutcome {
    if (!this.pending) {
      const trimmed = line.trim();
      if (trimmed === '\\q' || trimmed === 'quit' || trimmed === 'exit') return { kind: 'quit' };
      if (trimmed === '\\?' || trimmed === 'help') return { kind: 'help' };
      if (trimmed.startsWith('\\'))
        return { kind: 'unknown-meta', command: trimmed.split(/\s/)[0]!.slice(0, 20) };
    }
    this.#text += `${line}\n`;
    if (this.#text.length > MAX_STATEMENT) {
      this.#text = '';
      this.#quote = undefined;
      throw new PsqlError(
        'ERR_PSQL_STATEMENT_TOO_LONG',
        `statement longer than ${MAX_STATEMENT} characters; dropped`,
      );
    }
    let endsStatement = false;
    for (const c of line) {
      if (this.#quote) {
        if (c === this.#quote) this.#quote = undefined;
      } else if (c === "'" || c === '"') {
        this.#quote = c;
        endsStatement = false;
      } else if (c === ';') {
        endsStatement = true;
      } else if (!/\s/.test(c)) {
        endsStatement = false;
      }
    }
    if (!endsStatement || this.#quote) return { kind: 'more' };
    const text = this.#text.trim();
    this.#text = '';
    return { kind: 'sql', text };
  }
}

/** A result column: its name and whether it holds numbers (aligned right, as psql does). */
export interface ResultField {
  name: string;
  numeric: boolean;
}

/** Type OIDs of int2, int4, int8, oid, float4, float8, numeric. */
const NUMERIC_TYPES = new Set([21, 23, 20, 26, 700, 701, 1700]);

export function isNumericType(dataTypeId: number): boolean {
  return NUMERIC_TYPES.has(dataTypeId);
}

/** Formats rows as psql's aligned table, with the `(N rows)` footer. Values are text or null. */
export function formatTable(
  fields: readonly ResultField[],
  rows: readonly (readonly (string | null)[])[],
): string[] {
  const widths = fields.map((f, i) =>
    rows.reduce((w, row) => Math.max(w, (row[i] ?? '').length), f.name.length),
  );
  const cell = (text: string, i: number, numeric: boolean) =>
    numeric ? text.padStart(widths[i]!) : text.padEnd(widths[i]!);
  const line = (cells: string[]) => ` ${cells.join(' | ')}`.trimEnd();
  const out = [
    line(fields.map((f, i) => cell(f.name, i, false))),
    widths.map((w) => '-'.repeat(w + 2)).join('+'),
    ...rows.map((row) => line(fields.map((f, i) => cell(row[i] ?? '', i, f.numeric)))),
    `(${rows.length} ${rows.length === 1 ? 'row' : 'rows'})`,
  ];
  return out;
}

/** The fields of a server ErrorResponse that the client shows. */
export interface ServerError {
  severity?: string | undefined;
  code?: string | undefined;
  message: string;
  detail?: string | undefined;
  hint?: string | undefined;
}

/** Formats an ErrorResponse as psql does, with the SQLSTATE. */
export function formatServerError(error: ServerError): string[] {
  const lines = [
    `${error.severity ?? 'ERROR'}:  ${error.message}${error.code ? ` (SQLSTATE ${error.code})` : ''}`,
  ];
  if (error.detail) lines.push(`DETAIL:  ${error.detail}`);
  if (error.hint) lines.push(`HINT:  ${error.hint}`);
  return lines;
}
