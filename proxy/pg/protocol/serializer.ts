import type { DataRowLocator, FieldDescription } from './backend-parser.ts';
import { MalformedMessageError, MessageTooLongError } from './errors.ts';
import {
  AuthenticationCode,
  BackendCode,
  FrontendCode,
  StartupCode,
  TransactionStatus,
} from './message-codes.ts';

/**
 * A reusable byte writer for outgoing messages. Its buffer grows geometrically and is kept
 * between messages; {@link MessageWriter.finish} hands out an exact-size copy, so a buffer given
 * to a socket is never overwritten. Several messages may be written before one `finish` (batch a
 * run of DataRows into one write).
 */
export class MessageWriter {
  private buffer: Buffer;
  private offset = 0;
  private messageStart = -1;

  /**
   * @param initialSize - starting capacity in bytes (default 4 KiB).
   * @param maxSize - the writer refuses to grow past this many bytes (default 1 GiB, PostgreSQL's
   *   largest message).
   */
  constructor(
    initialSize = 4096,
    private readonly maxSize = 0x3fffffff,
  ) {
    this.buffer = Buffer.allocUnsafe(initialSize);
  }

  /** Bytes written since the last `finish`. */
  get length(): number {
    return this.offset;
  }

  /** Starts a tagged message: writes the tag and room for the length. */
  startMessage(code: number): this {
    if (this.messageStart >= 0) throw new Error('MessageWriter: previous message not ended');
    this.ensure(5);
    this.buffer[this.offset] = code;
    this.messageStart = this.offset + 1;
    this.offset += 5;
    return this;
  }

  /** Starts an untagged startup-phase packet: writes room for the length. */
  startPacket(): this {
    if (this.messageStart >= 0) throw new Error('MessageWriter: previous message not ended');
    this.ensure(4);
    this.messageStart = this.offset;
    this.offset += 4;
    return this;
  }

  /** Ends the current message by writing its length (which counts itself, not the tag). */
  endMessage(): this {
    if (this.messageStart < 0) throw new Error('MessageWriter: no message started');
    this.buffer.writeInt32BE(this.offset - this.messageStart, this.messageStart);
    this.messageStart = -1;
    return this;
  }

  writeByte(value: number): this {
    this.ensure(1);
    this.buffer[this.offset++] = value;
    return this;
  }

  writeInt16(value: number): this {
    this.ensure(2);
    this.offset = this.buffer.writeInt16BE(value, this.offset);
    return this;
  }

  /** Writes an unsigned 16-bit count, refusing counts the wire cannot carry. */
  writeCount(value: number): this {
    if (value > 0xffff) throw new MalformedMessageError(`count ${value} exceeds 65535`);
    this.ensure(2);
    this.offset = this.buffer.writeUInt16BE(value, this.offset);
    return this;
  }

  writeInt32(value: number): this {
    this.ensure(4);
    this.offset = this.buffer.writeInt32BE(value, this.offset);
    return this;
  }

  writeUInt32(value: number): this {
    this.ensure(4);
    this.offset = this.buffer.writeUInt32BE(value, this.offset);
    return this;
  }

  /** Writes a string as UTF-8 followed by a NUL; a string holding a NUL cannot be sent and throws. */
  writeCString(text: string): this {
    if (text.includes('\0'))
      throw new MalformedMessageError('a protocol string cannot contain a NUL character');
    this.ensure(text.length * 3 + 1);
    this.offset += this.buffer.write(text, this.offset, 'utf8');
    this.buffer[this.offset++] = 0;
    return this;
  }

  /** Writes bytes (or a string as UTF-8) without a length or terminator. */
  writeBytes(data: Uint8Array | string): this {
    if (typeof data === 'string') {
      this.ensure(data.length * 3);
      this.offset += this.buffer.write(data, this.offset, 'utf8');
    } else {
      const length = data.length;
      this.ensure(length);
      if (length < 32) {
        // A byte loop beats the native copy's call overhead for the short values typical of rows.
        const buffer = this.buffer;
        let at = this.offset;
        for (let i = 0; i < length; i++) buffer[at++] = data[i]!;
      } else {
        this.buffer.set(data, this.offset);
      }
      this.offset += length;
    }
    return this;
  }

  /** Writes bytes `start` to `end` of `source` as they are. */
  writeSlice(source: Buffer, start: number, end: number): this {
    this.ensure(end - start);
    this.offset += source.copy(this.buffer, this.offset, start, end);
    return this;
  }

  /** Writes an Int32 length and the bytes, or -1 for null. */
  writeNullableBytes(data: Uint8Array | string | null): this {
    if (data === null) return this.writeInt32(-1);
    const at = this.offset;
    this.writeInt32(0).writeBytes(data);
    this.buffer.writeInt32BE(this.offset - at - 4, at);
    return this;
  }

  /** Returns a copy of everything written since the last call and starts afresh, keeping the buffer. */
  finish(): Buffer {
    if (this.messageStart >= 0) throw new Error('MessageWriter: message not ended');
    const out = Buffer.allocUnsafe(this.offset);
    this.buffer.copy(out, 0, 0, this.offset);
    this.offset = 0;
    return out;
  }

  /** Drops anything written since the last `finish` (after a builder threw midway). */
  reset(): void {
    this.offset = 0;
    this.messageStart = -1;
  }

  private ensure(extra: number): void {
    const needed = this.offset + extra;
    if (needed <= this.buffer.length) return;
    if (needed > this.maxSize) throw new MessageTooLongError('outgoing message', needed, this.maxSize);
    const grown = Buffer.allocUnsafe(Math.min(this.maxSize, Math.max(needed, this.buffer.length * 2)));
    this.buffer.copy(grown, 0, 0, this.offset);
    this.buffer = grown;
  }
}

const shared = new MessageWriter();

/**
 * Runs builders on a shared writer and returns the bytes they wrote:
 * `encodeMessages((w) => writeQuery(w, 'select 1'))`. If a builder throws, nothing is kept.
 */
export function encodeMessages(write: (writer: MessageWriter) => void): Buffer {
  try {
    write(shared);
    return shared.finish();
  } catch (error) {
    shared.reset();
    throw error;
  }
}

/* ---------------------------------------------------------------- server → client */

/** Writes the one-byte answer to an SSLRequest or GSSENCRequest: 'S' (go ahead) or 'N' (refused). */
export function writeEncryptionResponse(w: MessageWriter, accept: boolean): void {
  w.writeByte(accept ? 0x53 : 0x4e);
}

function writeAuthentication(w: MessageWriter, method: AuthenticationCode, data?: Uint8Array | string): void {
  w.startMessage(BackendCode.Authentication).writeInt32(method);
  if (data !== undefined) w.writeBytes(data);
  w.endMessage();
}

/** Writes AuthenticationOk. */
export function writeAuthenticationOk(w: MessageWriter): void {
  writeAuthentication(w, AuthenticationCode.Ok);
}

/** Writes AuthenticationCleartextPassword. */
export function writeAuthenticationCleartextPassword(w: MessageWriter): void {
  writeAuthentication(w, AuthenticationCode.CleartextPassword);
}

/** Writes AuthenticationSASL offering `mechanisms` (e.g. `['SCRAM-SHA-256']`). */
export function writeAuthenticationSasl(w: MessageWriter, mechanisms: readonly string[]): void {
  w.startMessage(BackendCode.Authentication).writeInt32(AuthenticationCode.SASL);
  for (const mechanism of mechanisms) w.writeCString(mechanism);
  w.writeByte(0).endMessage();
}

/** Writes AuthenticationSASLContinue carrying the server-first message. */
export function writeAuthenticationSaslContinue(w: MessageWriter, data: Uint8Array | string): void {
  writeAuthentication(w, AuthenticationCode.SASLContinue, data);
}

/** Writes AuthenticationSASLFinal carrying the server-final message. */
export function writeAuthenticationSaslFinal(w: MessageWriter, data: Uint8Array | string): void {
  writeAuthentication(w, AuthenticationCode.SASLFinal, data);
}

/** Writes ParameterStatus. */
export function writeParameterStatus(w: MessageWriter, name: string, value: string): void {
  w.startMessage(BackendCode.ParameterStatus).writeCString(name).writeCString(value).endMessage();
}

/** Writes BackendKeyData. */
export function writeBackendKeyData(w: MessageWriter, processId: number, secretKey: number): void {
  w.startMessage(BackendCode.BackendKeyData).writeInt32(processId).writeInt32(secretKey).endMessage();
}

/** Writes ReadyForQuery with a transaction status ('I', 'T' or 'E'). */
export function writeReadyForQuery(
  w: MessageWriter,
  status: TransactionStatus = TransactionStatus.Idle,
): void {
  w.startMessage(BackendCode.ReadyForQuery).writeByte(status).endMessage();
}

/** The fields of an ErrorResponse or NoticeResponse the proxy writes itself. */
export interface NoticeInput {
  /** Non-localized severity: ERROR, FATAL, PANIC, WARNING, NOTICE, DEBUG, INFO, LOG. */
  severity: string;
  /** SQLSTATE, five characters (`42501`, `08P01`, `28P01`). */
  code: string;
  message: string;
  detail?: string;
  hint?: string;
  /** 1-based character position in the query. */
  position?: number;
  /** Any further fields, by one-character code (`W`, `s`, `t`, `c`, ...). */
  extra?: Iterable<readonly [string, string]>;
}

function writeFieldList(
  w: MessageWriter,
  code: BackendCode,
  fields: NoticeInput | ReadonlyMap<string, string>,
): void {
  w.startMessage(code);
  const entries: Iterable<readonly [string, string]> = isFieldMap(fields) ? fields : noticeEntries(fields);
  for (const [key, value] of entries) {
    const code = key.charCodeAt(0);
    if (key.length !== 1 || code === 0 || code > 0x7f) {
      throw new MalformedMessageError('a field code is one non-NUL ASCII character');
    }
    w.writeByte(code).writeCString(value);
  }
  w.writeByte(0).endMessage();
}

function isFieldMap(
  fields: NoticeInput | ReadonlyMap<string, string>,
): fields is ReadonlyMap<string, string> {
  return fields instanceof Map;
}

function* noticeEntries(input: NoticeInput): Iterable<readonly [string, string]> {
  yield ['S', input.severity];
  yield ['V', input.severity];
  yield ['C', input.code];
  yield ['M', input.message];
  if (input.detail !== undefined) yield ['D', input.detail];
  if (input.hint !== undefined) yield ['H', input.hint];
  if (input.position !== undefined) yield ['P', String(input.position)];
  if (input.extra) yield* input.extra;
}

/**
 * Writes an ErrorResponse, from named fields or from a field map (a decoded response, re-emitted
 * after masking; keys are one-character codes, written in map order).
 */
export function writeErrorResponse(
  w: MessageWriter,
  fields: NoticeInput | ReadonlyMap<string, string>,
): void {
  writeFieldList(w, BackendCode.ErrorResponse, fields);
}

/** Writes a NoticeResponse; see {@link writeErrorResponse}. */
export function writeNoticeResponse(
  w: MessageWriter,
  fields: NoticeInput | ReadonlyMap<string, string>,
): void {
  writeFieldList(w, BackendCode.NoticeResponse, fields);
}

/** Writes a RowDescription. */
export function writeRowDescription(w: MessageWriter, fields: readonly FieldDescription[]): void {
  w.startMessage(BackendCode.RowDescription).writeCount(fields.length);
  for (const f of fields) {
    w.writeCString(f.name)
      .writeUInt32(f.tableOid)
      .writeInt16(f.columnAttribute)
      .writeUInt32(f.typeOid)
      .writeInt16(f.typeSize)
      .writeInt32(f.typeModifier)
      .writeInt16(f.format);
  }
  w.endMessage();
}

/** Writes a DataRow; strings are encoded as UTF-8, null is SQL NULL. */
export function writeDataRow(w: MessageWriter, values: readonly (Uint8Array | string | null)[]): void {
  w.startMessage(BackendCode.DataRow).writeCount(values.length);
  for (const value of values) w.writeNullableBytes(value);
  w.endMessage();
}

/**
 * Re-writes the DataRow last located by `locator`, replacing the values of the columns in
 * `replacements` (by column index; strings as UTF-8, null for SQL NULL) and copying the others
 * byte for byte: the masking fast path.
 */
export function writeDataRowFrom(
  w: MessageWriter,
  locator: DataRowLocator,
  replacements: ReadonlyMap<number, Uint8Array | string | null>,
): void {
  const raw = locator.raw;
  const count = locator.count;
  w.startMessage(BackendCode.DataRow).writeCount(count);
  for (let i = 0; i < count; i++) {
    const replacement = replacements.get(i);
    if (replacement !== undefined) w.writeNullableBytes(replacement);
    else if (locator.isNull(i)) w.writeInt32(-1);
    else w.writeSlice(raw, locator.start(i) - 4, locator.end(i));
  }
  w.endMessage();
}

/** Writes CommandComplete with a command tag (`SELECT 3`). */
export function writeCommandComplete(w: MessageWriter, tag: string): void {
  w.startMessage(BackendCode.CommandComplete).writeCString(tag).endMessage();
}

/** Writes a ParameterDescription listing parameter type OIDs. */
export function writeParameterDescription(w: MessageWriter, typeOids: readonly number[]): void {
  w.startMessage(BackendCode.ParameterDescription).writeCount(typeOids.length);
  for (const oid of typeOids) w.writeUInt32(oid);
  w.endMessage();
}

/** Writes ParseComplete. */
export function writeParseComplete(w: MessageWriter): void {
  w.startMessage(BackendCode.ParseComplete).endMessage();
}

/** Writes BindComplete. */
export function writeBindComplete(w: MessageWriter): void {
  w.startMessage(BackendCode.BindComplete).endMessage();
}

/** Writes NoData (a Describe of a statement that returns no rows). */
export function writeNoData(w: MessageWriter): void {
  w.startMessage(BackendCode.NoData).endMessage();
}

/** Writes EmptyQueryResponse. */
export function writeEmptyQueryResponse(w: MessageWriter): void {
  w.startMessage(BackendCode.EmptyQueryResponse).endMessage();
}

/** Writes CopyData ('d', the same in both directions). */
export function writeCopyData(w: MessageWriter, data: Uint8Array | string): void {
  w.startMessage(BackendCode.CopyData).writeBytes(data).endMessage();
}

/** Writes CopyDone ('c', the same in both directions). */
export function writeCopyDone(w: MessageWriter): void {
  w.startMessage(BackendCode.CopyDone).endMessage();
}

/* ---------------------------------------------------------------- client → server */

/** Writes a protocol 3.0 StartupMessage; `user` is required by every server. */
export function writeStartupMessage(
  w: MessageWriter,
  parameters: Iterable<readonly [string, string]> | Readonly<Record<string, string>>,
): void {
  w.startPacket().writeInt32(StartupCode.ProtocolVersion3);
  const entries = Symbol.iterator in parameters ? parameters : Object.entries(parameters);
  for (const [name, value] of entries as Iterable<readonly [string, string]>) {
    if (name === '') throw new MalformedMessageError('a startup parameter needs a name');
    w.writeCString(name).writeCString(value);
  }
  w.writeByte(0).endMessage();
}

/** Writes an SSLRequest (to ask the server for TLS). */
export function writeSslRequest(w: MessageWriter): void {
  w.startPacket().writeInt32(StartupCode.SSLRequest).endMessage();
}

/** Writes a CancelRequest quoting a BackendKeyData. */
export function writeCancelRequest(w: MessageWriter, processId: number, secretKey: number): void {
  w.startPacket()
    .writeInt32(StartupCode.CancelRequest)
    .writeInt32(processId)
    .writeInt32(secretKey)
    .endMessage();
}

/** Writes a PasswordMessage (cleartext or `md5...` answer). */
export function writePasswordMessage(w: MessageWriter, password: string): void {
  w.startMessage(FrontendCode.AuthResponse).writeCString(password).endMessage();
}

/** Writes a SASLInitialResponse: mechanism and client-first message (null for none). */
export function writeSaslInitialResponse(
  w: MessageWriter,
  mechanism: string,
  data: Uint8Array | string | null,
): void {
  w.startMessage(FrontendCode.AuthResponse).writeCString(mechanism).writeNullableBytes(data).endMessage();
}

/** Writes a SASLResponse carrying the client-final message. */
export function writeSaslResponse(w: MessageWriter, data: Uint8Array | string): void {
  w.startMessage(FrontendCode.AuthResponse).writeBytes(data).endMessage();
}

/** Writes a simple-protocol Query. */
export function writeQuery(w: MessageWriter, sql: string): void {
  w.startMessage(FrontendCode.Query).writeCString(sql).endMessage();
}

/** Writes a Parse. */
export function writeParse(
  w: MessageWriter,
  message: { name?: string; sql: string; parameterTypes?: readonly number[] },
): void {
  const types = message.parameterTypes ?? [];
  w.startMessage(FrontendCode.Parse)
    .writeCString(message.name ?? '')
    .writeCString(message.sql)
    .writeCount(types.length);
  for (const oid of types) w.writeUInt32(oid);
  w.endMessage();
}

/** Writes a Bind. */
export function writeBind(
  w: MessageWriter,
  message: {
    portal?: string;
    statement?: string;
    parameterFormats?: readonly number[];
    parameters?: readonly (Uint8Array | string | null)[];
    resultFormats?: readonly number[];
  },
): void {
  const formats = message.parameterFormats ?? [];
  const values = message.parameters ?? [];
  const results = message.resultFormats ?? [];
  w.startMessage(FrontendCode.Bind)
    .writeCString(message.portal ?? '')
    .writeCString(message.statement ?? '');
  w.writeCount(formats.length);
  for (const format of formats) w.writeInt16(format);
  w.writeCount(values.length);
  for (const value of values) w.writeNullableBytes(value);
  w.writeCount(results.length);
  for (const format of results) w.writeInt16(format);
  w.endMessage();
}

function writeTarget(w: MessageWriter, code: FrontendCode, kind: 'statement' | 'portal', name: string): void {
  w.startMessage(code)
    .writeByte(kind === 'statement' ? 0x53 : 0x50)
    .writeCString(name)
    .endMessage();
}

/** Writes a Describe of a prepared statement or a portal. */
export function writeDescribe(w: MessageWriter, kind: 'statement' | 'portal', name = ''): void {
  writeTarget(w, FrontendCode.Describe, kind, name);
}

/** Writes a Close of a prepared statement or a portal. */
export function writeClose(w: MessageWriter, kind: 'statement' | 'portal', name = ''): void {
  writeTarget(w, FrontendCode.Close, kind, name);
}

/** Writes an Execute; `maxRows` 0 means no limit. */
export function writeExecute(w: MessageWriter, portal = '', maxRows = 0): void {
  w.startMessage(FrontendCode.Execute).writeCString(portal).writeInt32(maxRows).endMessage();
}

/** Writes a Sync. */
export function writeSync(w: MessageWriter): void {
  w.startMessage(FrontendCode.Sync).endMessage();
}

/** Writes a Flush. */
export function writeFlush(w: MessageWriter): void {
  w.startMessage(FrontendCode.Flush).endMessage();
}

/** Writes a Terminate. */
export function writeTerminate(w: MessageWriter): void {
  w.startMessage(FrontendCode.Terminate).endMessage();
}

/** Writes a CopyFail with the reason the server should report. */
export function writeCopyFail(w: MessageWriter, message: string): void {
  w.startMessage(FrontendCode.CopyFail).writeCString(message).endMessage();
}
