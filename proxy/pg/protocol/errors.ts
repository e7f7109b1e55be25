/**
 * Errors raised by the PostgreSQL wire-protocol core. Every error carries a stable `code`; the
 * socket layer translates them at the edge (an ErrorResponse with SQLSTATE 08P01, then close).
 * Messages never quote message contents, only lengths, tags and offsets.
 */
import { WardenError } from '../../../lib/errors.ts';

/** Every code a wire-protocol error can carry. */
export const PROTOCOL_ERROR_CODES = [
  'ERR_PG_PROTOCOL_TOO_LONG',
  'ERR_PG_PROTOCOL_MALFORMED',
  'ERR_PG_PROTOCOL_UNKNOWN_MESSAGE',
  'ERR_PG_PROTOCOL_UNSUPPORTED_VERSION',
  'ERR_PG_PROTOCOL_UNEXPECTED_DATA',
] as const;

export type ProtocolErrorCode = (typeof PROTOCOL_ERROR_CODES)[number];

/** Base class of every wire-protocol error. `details` holds non-secret facts (tag, length, limit, offset). */
export class ProtocolError extends WardenError<ProtocolErrorCode> {}

/** A length field exceeds the configured limit; raised before any of the body is buffered. */
export class MessageTooLongError extends ProtocolError {
  constructor(what: string, length: number, limit: number) {
    super('ERR_PG_PROTOCOL_TOO_LONG', `${what} of ${length} bytes exceeds the limit of ${limit} bytes`, {
      details: { length, limit },
    });
  }
}

/** The bytes do not form a valid message: bad length, overrun, missing terminator, bad count. */
export class MalformedMessageError extends ProtocolError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('ERR_PG_PROTOCOL_MALFORMED', message, { details });
  }
}

/** The message tag (or startup request code) is not one this side of the protocol may send. */
export class UnknownMessageError extends ProtocolError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('ERR_PG_PROTOCOL_UNKNOWN_MESSAGE', message, { details });
  }
}

/** A StartupMessage asks for a protocol major version other than 3. */
export class UnsupportedVersionError extends ProtocolError {
  constructor(major: number, minor: number) {
    super('ERR_PG_PROTOCOL_UNSUPPORTED_VERSION', `unsupported frontend protocol ${major}.${minor}`, {
      details: { major, minor },
    });
  }
}

/**
 * Bytes arrived where none may: after an SSLRequest/GSSENCRequest before the answer (the
 * CVE-2021-23214 injection), or after a CancelRequest.
 */
export class UnexpectedDataError extends ProtocolError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('ERR_PG_PROTOCOL_UNEXPECTED_DATA', message, { details });
  }
}

/** Tells whether a value is a {@link ProtocolError}. */
export function isProtocolError(error: unknown): error is ProtocolError {
  return error instanceof ProtocolError;
}

/** Printable form of a message tag for error messages: `'Q'` or `0x00`. */
export function describeTag(code: number): string {
  return code >= 0x21 && code <= 0x7e
    ? `'${String.fromCharCode(code)}'`
    : `0x${code.toString(16).padStart(2, '0')}`;
}
