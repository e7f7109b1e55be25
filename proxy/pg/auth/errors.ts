/**
 * Errors raised by Warden's PostgreSQL authentication core (SCRAM-SHA-256). Every error carries a
 * stable `code`. Proof failures get a fixed, generic message; the socket layer answers them with
 * SQLSTATE 28P01 and the rest (malformed exchanges) with 08P01.
 */
import { WardenError } from '../../../lib/errors.ts';

/** Every code an authentication-core error can carry. */
export const PG_AUTH_ERROR_CODES = [
  'ERR_PG_AUTH_MALFORMED',
  'ERR_PG_AUTH_CHANNEL_BINDING',
  'ERR_PG_AUTH_NONCE',
  'ERR_PG_AUTH_ITERATIONS',
  'ERR_PG_AUTH_FAILED',
  'ERR_PG_AUTH_SERVER_SIGNATURE',
  'ERR_PG_AUTH_STATE',
  'ERR_PG_AUTH_VERIFIER_INVALID',
] as const;

export type PgAuthErrorCode = (typeof PG_AUTH_ERROR_CODES)[number];

/**
 * Base class of every authentication-core error. `details` holds non-secret facts (attribute
 * names, limits); never a password, key, proof or nonce.
 */
export class PgAuthError extends WardenError<PgAuthErrorCode> {}

/** A SCRAM message does not follow RFC 5802's grammar or PostgreSQL's restrictions on it. */
export class ScramMalformedError extends PgAuthError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('ERR_PG_AUTH_MALFORMED', message, { details });
  }
}

/** The client asked for channel binding (`p=`), or for something else this side does not support. */
export class ScramChannelBindingError extends PgAuthError {
  constructor(message: string) {
    super('ERR_PG_AUTH_CHANNEL_BINDING', message);
  }
}

/** The client proof does not match: wrong password. The message is fixed on purpose. */
export class ScramAuthenticationFailedError extends PgAuthError {
  constructor() {
    super('ERR_PG_AUTH_FAILED', 'password authentication failed');
  }
}

/** Tells whether a value is a {@link PgAuthError}. */
export function isPgAuthError(error: unknown): error is PgAuthError {
  return error instanceof PgAuthError;
}
