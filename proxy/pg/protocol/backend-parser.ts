import { BodyReader } from './body-reader.ts';
import { describeTag, MalformedMessageError, UnknownMessageError } from './errors.ts';
import { type FrameHandler, FrameSplitter, type RunHandler } from './frame-splitter.ts';
import { AuthenticationCode, BackendCode, TransactionStatus } from './message-codes.ts';

/** Limits of the backend parser. */
export interface BackendParserOptions {
  /**
   * Largest message from the server, in bytes, counting the length field. Default 256 MiB: the
   * server is trusted more than clients (a wide DataRow may be large) but not without bound.
   */
  maxMessageLength?: number;
}

/** Defaults of {@link BackendParserOptions}. */
export const BACKEND_PARSER_DEFAULTS = {
  maxMessageLength: 256 * 1024 * 1024,
} as const satisfies Required<BackendParserOptions>;

const HEADER = 5;

/**
 * Incremental splitter of server→client bytes. It only finds message boundaries and checks tags
 * and lengths, calling `onFrame(code, raw)` per message with `raw` the whole message (tag, length,
 * body), a view of the chunk fed when the message lies inside it: forward `raw` untouched, or
 * decode it on demand with the `decode*` functions. Throws a ProtocolError on an unknown tag or a
 * bad or oversized length; after an error every call throws it again.
 */
export class BackendParser {
  private readonly splitter: FrameSplitter;

  constructor(options: BackendParserOptions = {}) {
    const { maxMessageLength } = { ...BACKEND_PARSER_DEFAULTS, ...options };
    this.splitter = new FrameSplitter({ checkTag: checkBackendTag, limitFor: () => maxMessageLength });
  }

  /** Bytes held back waiting for the rest of a message. */
  get bufferedBytes(): number {
    return this.splitter.bufferedBytes;
  }

  /**
   * Feeds a chunk; calls `onFrame` for every message it completes, in order. With `onDataRows`,
   * DataRows lying whole and back to back in the chunk go to it as one run
   * `(chunk, start, end)` instead, so a result's rows cost no per-message view or call; their
   * headers are checked, their bodies are for the receiver to check (see `RowRewriter`).
   */
  feed(chunk: Buffer, onFrame: FrameHandler, onDataRows?: RunHandler): void {
    this.splitter.feed(chunk, onFrame, BackendCode.DataRow, onDataRows);
  }
}

function checkBackendTag(code: number): void {
  switch (code) {
    case BackendCode.ParseComplete:
    case BackendCode.BindComplete:
    case BackendCode.CloseComplete:
    case BackendCode.NotificationResponse:
    case BackendCode.CommandComplete:
    case BackendCode.DataRow:
    case BackendCode.ErrorResponse:
    case BackendCode.CopyInResponse:
    case BackendCode.CopyOutResponse:
    case BackendCode.EmptyQueryResponse:
    case BackendCode.BackendKeyData:
    case BackendCode.NoticeResponse:
    case BackendCode.Authentication:
    case BackendCode.ParameterStatus:
    case BackendCode.RowDescription:
    case BackendCode.FunctionCallResponse:
    case BackendCode.CopyBothResponse:
    case BackendCode.ReadyForQuery:
    case BackendCode.CopyDone:
    case BackendCode.CopyData:
    case BackendCode.NoData:
    case BackendCode.PortalSuspended:
    case BackendCode.ParameterDescription:
    case BackendCode.NegotiateProtocolVersion:
      return;
    default:
      throw new UnknownMessageError(`unknown backend message ${describeTag(code)}`, { tag: code });
  }
}

/** Opens a reader on the body of `raw` after checking its tag and that its length field matches. */
function openBody(raw: Buffer, code: BackendCode, what: string): BodyReader {
  if (raw.length < HEADER || raw[0] !== code) {
    throw new MalformedMessageError(`${what}: not a ${describeTag(code)} message`);
  }
  if (raw.readInt32BE(1) !== raw.length - 1) {
    throw new MalformedMessageError(`${what}: length does not match its bytes`);
  }
  return new BodyReader(raw, HEADER, raw.length, what);
}

/** What an Authentication ('R') message asks for. */
export type AuthenticationRequest =
  | { type: 'ok' }
  | { type: 'cleartextPassword' }
  | { type: 'md5Password'; salt: Buffer }
  | { type: 'sasl'; mechanisms: string[] }
  | { type: 'saslContinue'; data: Buffer }
  | { type: 'saslFinal'; data: Buffer }
  /** Kerberos, GSS, SSPI: methods the proxy does not speak. */
  | { type: 'unsupported'; method: number; data: Buffer };

/** Decodes an Authentication ('R') message. */
export function decodeAuthentication(raw: Buffer): AuthenticationRequest {
  const r = openBody(raw, BackendCode.Authentication, 'Authentication');
  const method = r.readInt32();
  let result: AuthenticationRequest;
  switch (method) {
    case AuthenticationCode.Ok:
      result = { type: 'ok' };
      break;
    case AuthenticationCode.CleartextPassword:
      result = { type: 'cleartextPassword' };
      break;
    case AuthenticationCode.MD5Password:
      result = { type: 'md5Password', salt: r.readBytes(4) };
      break;
    case AuthenticationCode.SASL: {
      const mechanisms: string[] = [];
      for (;;) {
        const name = r.readCString();
        if (name === '') break;
        mechanisms.push(name);
      }
      result = { type: 'sasl', mechanisms };
      break;
    }
    case AuthenticationCode.SASLContinue:
      result = { type: 'saslContinue', data: r.readRest() };
      break;
    case AuthenticationCode.SASLFinal:
      result = { type: 'saslFinal', data: r.readRest() };
      break;
    default:
      result = { type: 'unsupported', method, data: r.readRest() };
  }
  r.expectEnd();
  return result;
}

/** Decodes a ParameterStatus ('S') message. */
export function decodeParameterStatus(raw: Buffer): { name: string; value: string } {
  const r = openBody(raw, BackendCode.ParameterStatus, 'ParameterStatus');
  const name = r.readCString();
  return { name, value: r.readFinalCString() };
}

/** Decodes a BackendKeyData ('K') message: what a CancelRequest must quote. */
export function decodeBackendKeyData(raw: Buffer): { processId: number; secretKey: number } {
  const r = openBody(raw, BackendCode.BackendKeyData, 'BackendKeyData');
  const processId = r.readInt32();
  const secretKey = r.readInt32();
  r.expectEnd();
  return { processId, secretKey };
}

/** Decodes a ReadyForQuery ('Z') message into its transaction status byte. */
export function decodeReadyForQuery(raw: Buffer): TransactionStatus {
  const r = openBody(raw, BackendCode.ReadyForQuery, 'ReadyForQuery');
  const status = r.readByte();
  r.expectEnd();
  if (
    status !== TransactionStatus.Idle &&
    status !== TransactionStatus.InTransaction &&
    status !== TransactionStatus.Failed
  ) {
    throw new MalformedMessageError(`ReadyForQuery: unknown transaction status ${describeTag(status)}`);
  }
  return status;
}

/** One column of a RowDescription. */
export interface FieldDescription {
  name: string;
  /** OID of the source table, 0 when the column is not a table column. */
  tableOid: number;
  /** Attribute number of the column in that table, 0 otherwise. */
  columnAttribute: number;
  typeOid: number;
  /** pg_type.typlen: negative for variable-length types. */
  typeSize: number;
  typeModifier: number;
  /** 0 text, 1 binary. */
  format: number;
}

/** Decodes a RowDescription ('T') message. */
export function decodeRowDescription(raw: Buffer): FieldDescription[] {
  const r = openBody(raw, BackendCode.RowDescription, 'RowDescription');
  const count = r.readUInt16();
  r.expectItems(count, 19);
  const fields = new Array<FieldDescription>(count);
  for (let i = 0; i < count; i++) {
    fields[i] = {
      name: r.readCString(),
      tableOid: r.readUInt32(),
      columnAttribute: r.readInt16(),
      typeOid: r.readUInt32(),
      typeSize: r.readInt16(),
      typeModifier: r.readInt32(),
      format: r.readInt16(),
    };
  }
  r.expectEnd();
  return fields;
}

/** Decodes a DataRow ('D') message: column values as views of `raw`, null for SQL NULL. */
export function decodeDataRow(raw: Buffer): (Buffer | null)[] {
  const locator = sharedLocator;
  const count = locator.locate(raw);
  const values = new Array<Buffer | null>(count);
  for (let i = 0; i < count; i++) values[i] = locator.value(i);
  return values;
}

/**
 * Finds the values of DataRow messages without allocating per row: keep one locator per session,
 * call `locate(raw)` per row, then read `isNull`/`start`/`end` (offsets into `raw`) or `value(i)`
 * only for the columns you need. Pair with `writeDataRowFrom` to re-emit a row with a few values
 * replaced, copying the others as bytes.
 */
export class DataRowLocator {
  private bounds = new Int32Array(128);
  private row: Buffer = Buffer.alloc(0);
  private columns = 0;

  /** Columns in the row last located. */
  get count(): number {
    return this.columns;
  }

  /** The message last located. */
  get raw(): Buffer {
    return this.row;
  }

  /** Validates a DataRow and records where each value lies; returns the column count. */
  locate(raw: Buffer): number {
    const size = raw.length;
    if (size < 7 || raw[0] !== BackendCode.DataRow || raw.readInt32BE(1) !== size - 1) {
      throw new MalformedMessageError('DataRow: not a complete DataRow message');
    }
    const count = raw.readUInt16BE(5);
    if (count * 4 > size - 7)
      throw new MalformedMessageError(`DataRow: count ${count} overruns the message`, { count });
    if (this.bounds.length < count * 2) this.bounds = new Int32Array(count * 2);
    const bounds = this.bounds;
    let at = 7;
    for (let i = 0; i < count; i++) {
      if (at + 4 > size) throw new MalformedMessageError('DataRow: message ends before its fields do');
      const length = raw.readInt32BE(at);
      at += 4;
      if (length === -1) {
        bounds[2 * i] = -1;
        bounds[2 * i + 1] = -1;
        continue;
      }
      if (length < 0) throw new MalformedMessageError(`DataRow: negative value length ${length}`, { length });
      if (length > size - at) throw new MalformedMessageError('DataRow: message ends before its fields do');
      bounds[2 * i] = at;
      at += length;
      bounds[2 * i + 1] = at;
    }
    if (at !== size) throw new MalformedMessageError(`DataRow: ${size - at} unexpected trailing bytes`);
    this.row = raw;
    this.columns = count;
    return count;
  }

  /** True when column `i` is SQL NULL. */
  isNull(i: number): boolean {
    return this.bounds[2 * i]! < 0;
  }

  /** Offset in `raw` where column `i` starts (-1 for NULL). */
  start(i: number): number {
    return this.bounds[2 * i]!;
  }

  /** Offset in `raw` one past the end of column `i` (-1 for NULL). */
  end(i: number): number {
    return this.bounds[2 * i + 1]!;
  }

  /** Column `i` as a view of `raw`, or null. */
  value(i: number): Buffer | null {
    const start = this.bounds[2 * i]!;
    return start < 0 ? null : this.row.subarray(start, this.bounds[2 * i + 1]);
  }
}

const sharedLocator = new DataRowLocator();

/** Decodes a CommandComplete ('C') message into its command tag (`SELECT 3`, `INSERT 0 1`). */
export function decodeCommandComplete(raw: Buffer): string {
  return openBody(raw, BackendCode.CommandComplete, 'CommandComplete').readFinalCString();
}

/** The fields of an ErrorResponse or NoticeResponse, keyed by their one-character code. */
export interface NoticeFields {
  /** Every field in wire order: `S`, `V`, `C`, `M`, `D`, `H`, `P`, `W`, ... */
  fields: Map<string, string>;
  /** `V` (non-localized) when present, else `S`; '' when absent. */
  severity: string;
  /** `C`, the SQLSTATE; '' when absent. */
  code: string;
  /** `M`; '' when absent. */
  message: string;
}

function decodeFieldList(raw: Buffer, code: BackendCode, what: string): NoticeFields {
  const r = openBody(raw, code, what);
  const fields = new Map<string, string>();
  for (;;) {
    const type = r.readByte();
    if (type === 0) break;
    fields.set(String.fromCharCode(type), r.readCString());
  }
  r.expectEnd();
  return {
    fields,
    severity: fields.get('V') ?? fields.get('S') ?? '',
    code: fields.get('C') ?? '',
    message: fields.get('M') ?? '',
  };
}

/** Decodes an ErrorResponse ('E') message. */
export function decodeErrorResponse(raw: Buffer): NoticeFields {
  return decodeFieldList(raw, BackendCode.ErrorResponse, 'ErrorResponse');
}

/** Decodes a NoticeResponse ('N') message. */
export function decodeNoticeResponse(raw: Buffer): NoticeFields {
  return decodeFieldList(raw, BackendCode.NoticeResponse, 'NoticeResponse');
}

/** A CopyInResponse, CopyOutResponse or CopyBothResponse. */
export interface CopyResponse {
  direction: 'in' | 'out' | 'both';
  /** Overall format: 0 text, 1 binary. */
  format: number;
  columnFormats: number[];
}

/** Decodes a CopyInResponse ('G'), CopyOutResponse ('H') or CopyBothResponse ('W') message. */
export function decodeCopyResponse(raw: Buffer): CopyResponse {
  const code = raw[0];
  const direction =
    code === BackendCode.CopyInResponse
      ? 'in'
      : code === BackendCode.CopyOutResponse
        ? 'out'
        : code === BackendCode.CopyBothResponse
          ? 'both'
          : undefined;
  if (!direction) throw new MalformedMessageError('CopyResponse: not a copy response message');
  const r = openBody(raw, code as BackendCode, 'CopyResponse');
  const format = r.readByte();
  const count = r.readUInt16();
  r.expectItems(count, 2);
  const columnFormats = new Array<number>(count);
  for (let i = 0; i < count; i++) columnFormats[i] = r.readInt16();
  r.expectEnd();
  return { direction, format, columnFormats };
}

/** Decodes a CopyData ('d') message into its payload, a view of `raw`. */
export function decodeCopyData(raw: Buffer): Buffer {
  return openBody(raw, BackendCode.CopyData, 'CopyData').readRest();
}

/** Decodes a NotificationResponse ('A') message (LISTEN/NOTIFY). */
export function decodeNotificationResponse(raw: Buffer): {
  processId: number;
  channel: string;
  payload: string;
} {
  const r = openBody(raw, BackendCode.NotificationResponse, 'NotificationResponse');
  const processId = r.readInt32();
  const channel = r.readCString();
  return { processId, channel, payload: r.readFinalCString() };
}

/** Decodes a ParameterDescription ('t') message into parameter type OIDs. */
export function decodeParameterDescription(raw: Buffer): number[] {
  const r = openBody(raw, BackendCode.ParameterDescription, 'ParameterDescription');
  const count = r.readUInt16();
  r.expectItems(count, 4);
  const types = new Array<number>(count);
  for (let i = 0; i < count; i++) types[i] = r.readUInt32();
  r.expectEnd();
  return types;
}

/** Decodes a FunctionCallResponse ('V') message into its result value. */
export function decodeFunctionCallResponse(raw: Buffer): Buffer | null {
  const r = openBody(raw, BackendCode.FunctionCallResponse, 'FunctionCallResponse');
  const value = r.readNullableBytes();
  r.expectEnd();
  return value;
}

/** Decodes a NegotiateProtocolVersion ('v') message. */
export function decodeNegotiateProtocolVersion(raw: Buffer): { newestMinor: number; unrecognized: string[] } {
  const r = openBody(raw, BackendCode.NegotiateProtocolVersion, 'NegotiateProtocolVersion');
  const newestMinor = r.readInt32();
  const count = r.readInt32();
  if (count < 0) throw new MalformedMessageError('NegotiateProtocolVersion: negative option count');
  r.expectItems(count, 1);
  const unrecognized: string[] = [];
  for (let i = 0; i < count; i++) unrecognized.push(r.readCString());
  r.expectEnd();
  return { newestMinor, unrecognized };
}

/** Names of the backend messages whose body is empty. */
export type EmptyBackendMessageType =
  | 'parseComplete'
  | 'bindComplete'
  | 'closeComplete'
  | 'noData'
  | 'portalSuspended'
  | 'emptyQueryResponse'
  | 'copyDone';

/** Every backend message decoded, discriminated by `type`; for tests, logs and recordings. */
export type BackendMessage =
  | { type: 'authentication'; request: AuthenticationRequest }
  | { type: 'parameterStatus'; name: string; value: string }
  | { type: 'backendKeyData'; processId: number; secretKey: number }
  | { type: 'readyForQuery'; status: TransactionStatus }
  | { type: 'rowDescription'; fields: FieldDescription[] }
  | { type: 'dataRow'; values: (Buffer | null)[] }
  | { type: 'commandComplete'; tag: string }
  | ({ type: 'errorResponse' | 'noticeResponse' } & NoticeFields)
  | ({ type: 'copyResponse' } & CopyResponse)
  | { type: 'copyData'; data: Buffer }
  | { type: 'notificationResponse'; processId: number; channel: string; payload: string }
  | { type: 'parameterDescription'; typeOids: number[] }
  | { type: 'functionCallResponse'; value: Buffer | null }
  | { type: 'negotiateProtocolVersion'; newestMinor: number; unrecognized: string[] }
  | { type: EmptyBackendMessageType };

const EMPTY_TYPES: Partial<Record<number, EmptyBackendMessageType>> = {
  [BackendCode.ParseComplete]: 'parseComplete',
  [BackendCode.BindComplete]: 'bindComplete',
  [BackendCode.CloseComplete]: 'closeComplete',
  [BackendCode.NoData]: 'noData',
  [BackendCode.PortalSuspended]: 'portalSuspended',
  [BackendCode.EmptyQueryResponse]: 'emptyQueryResponse',
  [BackendCode.CopyDone]: 'copyDone',
};

/** Decodes any complete backend message. The proxy's hot path should call the specific decoder instead. */
export function decodeBackendMessage(raw: Buffer): BackendMessage {
  const code = raw[0] ?? 0;
  checkBackendTag(code);
  switch (code) {
    case BackendCode.Authentication:
      return { type: 'authentication', request: decodeAuthentication(raw) };
    case BackendCode.ParameterStatus:
      return { type: 'parameterStatus', ...decodeParameterStatus(raw) };
    case BackendCode.BackendKeyData:
      return { type: 'backendKeyData', ...decodeBackendKeyData(raw) };
    case BackendCode.ReadyForQuery:
      return { type: 'readyForQuery', status: decodeReadyForQuery(raw) };
    case BackendCode.RowDescription:
      return { type: 'rowDescription', fields: decodeRowDescription(raw) };
    case BackendCode.DataRow:
      return { type: 'dataRow', values: decodeDataRow(raw) };
    case BackendCode.CommandComplete:
      return { type: 'commandComplete', tag: decodeCommandComplete(raw) };
    case BackendCode.ErrorResponse:
      return { type: 'errorResponse', ...decodeErrorResponse(raw) };
    case BackendCode.NoticeResponse:
      return { type: 'noticeResponse', ...decodeNoticeResponse(raw) };
    case BackendCode.CopyInResponse:
    case BackendCode.CopyOutResponse:
    case BackendCode.CopyBothResponse:
      return { type: 'copyResponse', ...decodeCopyResponse(raw) };
    case BackendCode.CopyData:
      return { type: 'copyData', data: decodeCopyData(raw) };
    case BackendCode.NotificationResponse:
      return { type: 'notificationResponse', ...decodeNotificationResponse(raw) };
    case BackendCode.ParameterDescription:
      return { type: 'parameterDescription', typeOids: decodeParameterDescription(raw) };
    case BackendCode.FunctionCallResponse:
      return { type: 'functionCallResponse', value: decodeFunctionCallResponse(raw) };
    case BackendCode.NegotiateProtocolVersion:
      return { type: 'negotiateProtocolVersion', ...decodeNegotiateProtocolVersion(raw) };
  }
  const type = EMPTY_TYPES[code]!;
  openBody(raw, code, type).expectEnd();
  return { type };
}
