import { BodyReader } from './body-reader.ts';
import {
  describeTag,
  MalformedMessageError,
  MessageTooLongError,
  UnexpectedDataError,
  UnknownMessageError,
  UnsupportedVersionError,
} from './errors.ts';
import { FrameSplitter } from './frame-splitter.ts';
import { FrontendCode, StartupCode } from './message-codes.ts';

/** Limits of the frontend parser. Every length is in bytes and counts the length field itself. */
export interface FrontendParserOptions {
  /**
   * `'startup'` (default) for a fresh client connection: untagged StartupMessage, SSLRequest,
   * GSSENCRequest or CancelRequest first. `'normal'` to parse tagged messages from the start.
   */
  phase?: 'startup' | 'normal';
  /** Largest startup packet. Default 10,000, PostgreSQL's MAX_STARTUP_PACKET_LENGTH. */
  maxStartupLength?: number;
  /** Largest ordinary tagged message (Query, Parse, Bind, ...). Default 1 MiB. */
  maxMessageLength?: number;
  /**
   * Largest CopyData message. Default 16 MiB: COPY clients send a row or a block of at most
   * 64 KiB per message, so this leaves room for very wide rows while bounding memory per session.
   */
  maxCopyDataLength?: number;
  /**
   * Largest PasswordMessage/SASL message. Default 65,535, PostgreSQL's PG_MAX_AUTH_TOKEN_LENGTH:
   * these arrive before authentication, from anyone who can connect.
   */
  maxAuthMessageLength?: number;
}

/** Defaults of {@link FrontendParserOptions}, in one place. */
export const FRONTEND_PARSER_DEFAULTS = {
  phase: 'startup',
  maxStartupLength: 10_000,
  maxMessageLength: 1024 * 1024,
  maxCopyDataLength: 16 * 1024 * 1024,
  maxAuthMessageLength: 65_535,
} as const satisfies Required<FrontendParserOptions>;

interface Raw {
  /** The whole message as received (tag, length, body): forward it as is. */
  readonly raw: Buffer;
}

export interface StartupMessage extends Raw {
  readonly type: 'startup';
  readonly majorVersion: number;
  readonly minorVersion: number;
  /** Parameters in wire order (`user`, `database`, `options`, `_pq_.*`, GUCs). Names are unique. */
  readonly parameters: Map<string, string>;
}
export interface SSLRequestMessage extends Raw {
  readonly type: 'sslRequest';
}
export interface GSSEncRequestMessage extends Raw {
  readonly type: 'gssEncRequest';
}
export interface CancelRequestMessage extends Raw {
  readonly type: 'cancelRequest';
  readonly processId: number;
  readonly secretKey: number;
}
export interface QueryMessage extends Raw {
  readonly type: 'query';
  readonly sql: string;
}
export interface ParseMessage extends Raw {
  readonly type: 'parse';
  readonly name: string;
  readonly sql: string;
  /** Parameter type OIDs; 0 leaves a type unspecified. */
  readonly parameterTypes: number[];
}
export interface BindMessage extends Raw {
  readonly type: 'bind';
  readonly portal: string;
  readonly statement: string;
  /** 0 (text) or 1 (binary): none (all text), one (for all) or one per parameter. */
  readonly parameterFormats: number[];
  /** Parameter values as views of `raw`; null is SQL NULL. */
  readonly parameters: (Buffer | null)[];
  readonly resultFormats: number[];
}
export interface DescribeMessage extends Raw {
  readonly type: 'describe';
  readonly kind: 'statement' | 'portal';
  readonly name: string;
}
export interface CloseMessage extends Raw {
  readonly type: 'close';
  readonly kind: 'statement' | 'portal';
  readonly name: string;
}
export interface ExecuteMessage extends Raw {
  readonly type: 'execute';
  readonly portal: string;
  /** Row limit; 0 means no limit. */
  readonly maxRows: number;
}
export interface EmptyMessage extends Raw {
  readonly type: 'sync' | 'flush' | 'terminate' | 'copyDone';
}
export interface CopyDataMessage extends Raw {
  readonly type: 'copyData';
  /** The payload, a view of `raw`. */
  readonly data: Buffer;
}
export interface CopyFailMessage extends Raw {
  readonly type: 'copyFail';
  readonly message: string;
}
/**
 * A 'p' message. Its meaning depends on what the server asked for: decode `body` with
 * {@link decodePasswordMessage}, {@link decodeSaslInitialResponse} or {@link decodeSaslResponse}.
 */
export interface AuthResponseMessage extends Raw {
  readonly type: 'authResponse';
  readonly body: Buffer;
}
export interface FunctionCallMessage extends Raw {
  readonly type: 'functionCall';
  readonly functionOid: number;
  readonly argumentFormats: number[];
  readonly arguments: (Buffer | null)[];
  readonly resultFormat: number;
}

/** Every message a client may send, discriminated by `type`. */
export type FrontendMessage =
  | StartupMessage
  | SSLRequestMessage
  | GSSEncRequestMessage
  | CancelRequestMessage
  | QueryMessage
  | ParseMessage
  | BindMessage
  | DescribeMessage
  | CloseMessage
  | ExecuteMessage
  | EmptyMessage
  | CopyDataMessage
  | CopyFailMessage
  | AuthResponseMessage
  | FunctionCallMessage;

/** Where the parser is in the connection: before startup, after it, or after a final message. */
export type FrontendPhase = 'startup' | 'normal' | 'ended';

const HEADER = 5;

/**
 * Incremental parser of client→server bytes. Feed it chunks as they arrive; it calls back once
 * per complete message, in order, and throws a {@link ProtocolError} on anything invalid. Every
 * length is checked against its limit before the body is buffered. Messages wholly inside a chunk
 * reference that chunk (`raw`, byte values): do not reuse a chunk's memory after feeding it.
 *
 * After SSLRequest or GSSENCRequest the parser stays in the startup phase: answer, run the
 * handshake and feed the decrypted stream to the same parser. After CancelRequest or Terminate
 * it ends; later bytes are an error.
 */
export class FrontendParser {
  private readonly limits: Required<FrontendParserOptions>;
  private currentPhase: FrontendPhase;
  private readonly splitter: FrameSplitter;
  private readonly startupLengthBytes = Buffer.alloc(4);
  private startupLengthFill = 0;
  private startupPacket: Buffer | null = null;
  private startupFill = 0;
  private failure: unknown = null;
  private onMessage: (message: FrontendMessage) => void = () => {};
  private readonly handleFrame = (code: number, raw: Buffer): void => {
    if (this.currentPhase === 'ended') {
      throw new UnexpectedDataError(`message ${describeTag(code)} after Terminate`);
    }
    const message = decodeFrontendMessage(raw);
    if (message.type === 'terminate') this.currentPhase = 'ended';
    this.onMessage(message);
  };

  constructor(options: FrontendParserOptions = {}) {
    this.limits = { ...FRONTEND_PARSER_DEFAULTS, ...options };
    this.currentPhase = this.limits.phase;
    const limits = this.limits;
    this.splitter = new FrameSplitter({
      checkTag: checkFrontendTag,
      limitFor: (code) =>
        code === FrontendCode.CopyData
          ? limits.maxCopyDataLength
          : code === FrontendCode.AuthResponse
            ? limits.maxAuthMessageLength
            : limits.maxMessageLength,
    });
  }

  /** The current phase. */
  get phase(): FrontendPhase {
    return this.currentPhase;
  }

  /** Bytes held back waiting for the rest of a message (never more than the limit in force). */
  get bufferedBytes(): number {
    return this.startupPacket ? this.startupFill : this.startupLengthFill + this.splitter.bufferedBytes;
  }

  /**
   * Parses a chunk, calling `onMessage` for every message it completes. Throws a ProtocolError on
   * invalid input; after any error (including one thrown by `onMessage`) every call throws it again.
   */
  feed(chunk: Buffer, onMessage: (message: FrontendMessage) => void): void {
    if (this.failure) throw this.failure;
    this.onMessage = onMessage;
    try {
      let pos = 0;
      while (pos < chunk.length && this.currentPhase === 'startup') {
        pos = this.feedStartup(chunk, pos);
      }
      if (pos < chunk.length) {
        if (this.currentPhase === 'ended') throw new UnexpectedDataError('data after the end of the session');
        this.splitter.feed(pos === 0 ? chunk : chunk.subarray(pos), this.handleFrame);
      }
    } catch (error) {
      this.failure = error;
      throw error;
    }
  }

  /** Consumes startup-phase bytes from `pos`; returns the position after them. */
  private feedStartup(chunk: Buffer, pos: number): number {
    if (!this.startupPacket) {
      const take = Math.min(4 - this.startupLengthFill, chunk.length - pos);
      chunk.copy(this.startupLengthBytes, this.startupLengthFill, pos, pos + take);
      this.startupLengthFill += take;
      pos += take;
      if (this.startupLengthFill < 4) return pos;
      const length = this.startupLengthBytes.readInt32BE(0);
      if (length < 8)
        throw new MalformedMessageError(`startup packet has invalid length ${length}`, { length });
      if (length > this.limits.maxStartupLength) {
        throw new MessageTooLongError('startup packet', length, this.limits.maxStartupLength);
      }
      this.startupPacket = Buffer.allocUnsafe(length);
      this.startupLengthBytes.copy(this.startupPacket, 0);
      this.startupFill = 4;
      this.startupLengthFill = 0;
    }
    const packet = this.startupPacket;
    const take = Math.min(packet.length - this.startupFill, chunk.length - pos);
    chunk.copy(packet, this.startupFill, pos, pos + take);
    this.startupFill += take;
    pos += take;
    if (this.startupFill < packet.length) return pos;
    this.startupPacket = null;
    this.startupFill = 0;
    const message = decodeStartupPacket(packet);
    if (message.type === 'startup') this.currentPhase = 'normal';
    else if (message.type === 'cancelRequest') this.currentPhase = 'ended';
    if (pos < chunk.length && message.type !== 'startup') {
      // A client must wait for the answer; bytes sent before it would bypass TLS (CVE-2021-23214).
      throw new UnexpectedDataError(`data after ${message.type} before the server answered`);
    }
    this.onMessage(message);
    return pos;
  }
}

/** Decodes a complete startup-phase packet (Int32 length, Int32 request code, body). */
export function decodeStartupPacket(
  raw: Buffer,
): StartupMessage | SSLRequestMessage | GSSEncRequestMessage | CancelRequestMessage {
  if (raw.length < 8 || raw.readInt32BE(0) !== raw.length) {
    throw new MalformedMessageError('startup packet length does not match its bytes');
  }
  const code = raw.readInt32BE(4);
  switch (code) {
    case StartupCode.SSLRequest:
    case StartupCode.GSSENCRequest:
      if (raw.length !== 8) throw new MalformedMessageError('encryption request must be 8 bytes long');
      return { type: code === StartupCode.SSLRequest ? 'sslRequest' : 'gssEncRequest', raw };
    case StartupCode.CancelRequest:
      if (raw.length !== 16) throw new MalformedMessageError('CancelRequest must be 16 bytes long');
      return { type: 'cancelRequest', raw, processId: raw.readInt32BE(8), secretKey: raw.readInt32BE(12) };
  }
  const major = code >>> 16;
  const minor = code & 0xffff;
  if (major === 1234) throw new UnknownMessageError(`unknown startup request code ${code}`, { code });
  if (major !== 3) throw new UnsupportedVersionError(major, minor);
  const reader = new BodyReader(raw, 8, raw.length, 'StartupMessage');
  const parameters = new Map<string, string>();
  for (;;) {
    const name = reader.readCString();
    if (name === '') break;
    const value = reader.readCString();
    if (parameters.has(name)) {
      // The proxy and the server must not read different values for the same name.
      throw new MalformedMessageError('StartupMessage repeats a parameter', { parameter: name.slice(0, 64) });
    }
    parameters.set(name, value);
  }
  reader.expectEnd();
  return { type: 'startup', raw, majorVersion: major, minorVersion: minor, parameters };
}

function checkFrontendTag(code: number): void {
  switch (code) {
    case FrontendCode.Bind:
    case FrontendCode.Close:
    case FrontendCode.Describe:
    case FrontendCode.Execute:
    case FrontendCode.FunctionCall:
    case FrontendCode.Flush:
    case FrontendCode.Parse:
    case FrontendCode.Query:
    case FrontendCode.Sync:
    case FrontendCode.Terminate:
    case FrontendCode.CopyDone:
    case FrontendCode.CopyData:
    case FrontendCode.CopyFail:
    case FrontendCode.AuthResponse:
      return;
    default:
      throw new UnknownMessageError(`unknown frontend message ${describeTag(code)}`, { tag: code });
  }
}

/** Decodes one complete tagged frontend message (tag, Int32 length, body) whose length is already checked. */
export function decodeFrontendMessage(raw: Buffer): FrontendMessage {
  const code = raw[0]!;
  checkFrontendTag(code);
  if (raw.length < HEADER || raw.readInt32BE(1) !== raw.length - 1) {
    throw new MalformedMessageError(`message ${describeTag(code)} length does not match its bytes`);
  }
  switch (code) {
    case FrontendCode.Query:
      return { type: 'query', raw, sql: new BodyReader(raw, HEADER, raw.length, 'Query').readFinalCString() };
    case FrontendCode.Parse:
      return decodeParse(raw);
    case FrontendCode.Bind:
      return decodeBind(raw);
    case FrontendCode.Describe:
    case FrontendCode.Close: {
      const what = code === FrontendCode.Describe ? 'Describe' : 'Close';
      const r = new BodyReader(raw, HEADER, raw.length, what);
      const kind = readTargetKind(r, what);
      const name = r.readCString();
      r.expectEnd();
      return { type: code === FrontendCode.Describe ? 'describe' : 'close', raw, kind, name };
    }
    case FrontendCode.Execute: {
      const r = new BodyReader(raw, HEADER, raw.length, 'Execute');
      const portal = r.readCString();
      const maxRows = r.readInt32();
      r.expectEnd();
      return { type: 'execute', raw, portal, maxRows };
    }
    case FrontendCode.Sync:
      return decodeEmpty(raw, 'sync');
    case FrontendCode.Flush:
      return decodeEmpty(raw, 'flush');
    case FrontendCode.Terminate:
      return decodeEmpty(raw, 'terminate');
    case FrontendCode.CopyDone:
      return decodeEmpty(raw, 'copyDone');
    case FrontendCode.CopyData:
      return { type: 'copyData', raw, data: raw.subarray(HEADER) };
    case FrontendCode.CopyFail:
      return {
        type: 'copyFail',
        raw,
        message: new BodyReader(raw, HEADER, raw.length, 'CopyFail').readFinalCString(),
      };
    case FrontendCode.AuthResponse:
      return { type: 'authResponse', raw, body: raw.subarray(HEADER) };
    default:
      return decodeFunctionCall(raw);
  }
}

function decodeEmpty(raw: Buffer, type: EmptyMessage['type']): EmptyMessage {
  if (raw.length !== HEADER) throw new MalformedMessageError(`${type} must have an empty body`);
  return { type, raw };
}

function readTargetKind(r: BodyReader, what: string): 'statement' | 'portal' {
  const kind = r.readByte();
  if (kind === 0x53) return 'statement'; // 'S'
  if (kind === 0x50) return 'portal'; // 'P'
  throw new MalformedMessageError(`${what}: target must be 'S' or 'P', got ${describeTag(kind)}`);
}

function decodeParse(raw: Buffer): ParseMessage {
  const r = new BodyReader(raw, HEADER, raw.length, 'Parse');
  const name = r.readCString();
  const sql = r.readCString();
  const count = r.readUInt16();
  r.expectItems(count, 4);
  const parameterTypes = new Array<number>(count);
  for (let i = 0; i < count; i++) parameterTypes[i] = r.readUInt32();
  r.expectEnd();
  return { type: 'parse', raw, name, sql, parameterTypes };
}

function decodeBind(raw: Buffer): BindMessage {
  const r = new BodyReader(raw, HEADER, raw.length, 'Bind');
  const portal = r.readCString();
  const statement = r.readCString();
  const parameterFormats = readFormats(r, 'Bind');
  const count = r.readUInt16();
  checkFormatCount(parameterFormats.length, count, 'Bind');
  const parameters = readValues(r, count);
  const resultFormats = readFormats(r, 'Bind');
  r.expectEnd();
  return { type: 'bind', raw, portal, statement, parameterFormats, parameters, resultFormats };
}

function decodeFunctionCall(raw: Buffer): FunctionCallMessage {
  const r = new BodyReader(raw, HEADER, raw.length, 'FunctionCall');
  const functionOid = r.readUInt32();
  const argumentFormats = readFormats(r, 'FunctionCall');
  const count = r.readUInt16();
  checkFormatCount(argumentFormats.length, count, 'FunctionCall');
  const args = readValues(r, count);
  const resultFormat = readFormat(r, 'FunctionCall');
  r.expectEnd();
  return { type: 'functionCall', raw, functionOid, argumentFormats, arguments: args, resultFormat };
}

function readFormat(r: BodyReader, what: string): number {
  const format = r.readInt16();
  if (format !== 0 && format !== 1)
    throw new MalformedMessageError(`${what}: unsupported format code ${format}`);
  return format;
}

function readFormats(r: BodyReader, what: string): number[] {
  const count = r.readUInt16();
  r.expectItems(count, 2);
  const formats = new Array<number>(count);
  for (let i = 0; i < count; i++) formats[i] = readFormat(r, what);
  return formats;
}

function checkFormatCount(formats: number, values: number, what: string): void {
  if (formats > 1 && formats !== values) {
    throw new MalformedMessageError(`${what}: ${formats} format codes for ${values} values`);
  }
}

function readValues(r: BodyReader, count: number): (Buffer | null)[] {
  r.expectItems(count, 4);
  const values = new Array<Buffer | null>(count);
  for (let i = 0; i < count; i++) values[i] = r.readNullableBytes();
  return values;
}

/** Reads the body of a 'p' message sent in answer to AuthenticationCleartextPassword or MD5Password. */
export function decodePasswordMessage(body: Buffer): string {
  return new BodyReader(body, 0, body.length, 'PasswordMessage').readFinalCString();
}

/** The first SASL message: the chosen mechanism and its initial data (null when the client sent none). */
export interface SaslInitialResponse {
  mechanism: string;
  data: Buffer | null;
}

/** Reads the body of a 'p' message sent in answer to AuthenticationSASL. */
export function decodeSaslInitialResponse(body: Buffer): SaslInitialResponse {
  const r = new BodyReader(body, 0, body.length, 'SASLInitialResponse');
  const mechanism = r.readCString();
  const data = r.readNullableBytes();
  r.expectEnd();
  return { mechanism, data };
}

/** Reads the body of a 'p' message sent in answer to AuthenticationSASLContinue: all of it is SASL data. */
export function decodeSaslResponse(body: Buffer): Buffer {
  return body;
}
