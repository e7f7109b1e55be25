/**
 * Errors of the Postgres recording proxy. Each has a stable `code`; the session translates them
 * at the edge into an ErrorResponse with a SQLSTATE (see {@link PgProxyError.sqlState}). Messages
 * shown to clients never carry upstream credentials or unmasked data.
 */
import { formatConfigMessage, WardenError } from '../../lib/errors.ts';

/** Every code a Postgres proxy error can carry. */
export const PG_PROXY_ERROR_CODES = [
  'ERR_PGPROXY_CONFIG',
  'ERR_PGPROXY_TLS_REQUIRED',
  'ERR_PGPROXY_AUTH_FAILED',
  'ERR_PGPROXY_HANDSHAKE_TIMEOUT',
  'ERR_PGPROXY_DATABASE',
  'ERR_PGPROXY_UPSTREAM',
  'ERR_PGPROXY_UPSTREAM_TLS_REFUSED',
  'ERR_PGPROXY_UPSTREAM_TLS_UNTRUSTED',
  'ERR_PGPROXY_UPSTREAM_TLS_HOSTNAME',
  'ERR_PGPROXY_UPSTREAM_TLS',
  'ERR_PGPROXY_PROTOCOL',
  'ERR_PGPROXY_UNSUPPORTED',
  'ERR_PGPROXY_GRANT_ENDED',
  'ERR_PGPROXY_TOO_MANY_CONNECTIONS',
  'ERR_PGPROXY_UNMASKABLE',
  'ERR_PGPROXY_STARTUP_PARAMETER',
  'ERR_PGPROXY_HELD_INPUT',
] as const;

export type PgProxyErrorCode = (typeof PG_PROXY_ERROR_CODES)[number];

const SQLSTATE: Record<PgProxyErrorCode, string> = {
  ERR_PGPROXY_CONFIG: '58000',
  ERR_PGPROXY_TLS_REQUIRED: '28000',
  ERR_PGPROXY_AUTH_FAILED: '28P01',
  ERR_PGPROXY_HANDSHAKE_TIMEOUT: '08006',
  ERR_PGPROXY_DATABASE: '3D000',
  ERR_PGPROXY_UPSTREAM: '08006',
  ERR_PGPROXY_UPSTREAM_TLS_REFUSED: '08001',
  ERR_PGPROXY_UPSTREAM_TLS_UNTRUSTED: '08001',
  ERR_PGPROXY_UPSTREAM_TLS_HOSTNAME: '08001',
  ERR_PGPROXY_UPSTREAM_TLS: '08001',
  ERR_PGPROXY_PROTOCOL: '08P01',
  ERR_PGPROXY_UNSUPPORTED: '0A000',
  ERR_PGPROXY_GRANT_ENDED: '57P01',
  ERR_PGPROXY_TOO_MANY_CONNECTIONS: '53300',
  ERR_PGPROXY_UNMASKABLE: '42501',
  ERR_PGPROXY_STARTUP_PARAMETER: '42501',
  ERR_PGPROXY_HELD_INPUT: '54000',
};

/** Base class of every proxy error. */
export class PgProxyError extends WardenError<PgProxyErrorCode> {
  /** The SQLSTATE a client sees for this error. */
  get sqlState(): string {
    return SQLSTATE[this.code];
  }
}

/** The proxy configuration of a target is invalid; the message names the config path. */
export class PgProxyConfigError extends PgProxyError {
  constructor(path: string, message: string, options: ErrorOptions = {}) {
    super('ERR_PGPROXY_CONFIG', formatConfigMessage(path, message), { ...options, configPath: path });
  }
}

/** Authentication failed: unknown user, wrong password or ended grant (one generic message). */
export class PgProxyAuthError extends PgProxyError {
  constructor(user: string) {
    super('ERR_PGPROXY_AUTH_FAILED', `password authentication failed for user "${user.slice(0, 63)}"`);
  }
}

/** Tells whether a value is a {@link PgProxyError}. */
export function isPgProxyError(error: unknown): error is PgProxyError {
  return error instanceof PgProxyError;
}

/** A startup parameter a guardrail refuses, or an `options` value the proxy cannot read. */
export class PgStartupParameterError extends PgProxyError {
  constructor(message: string) {
    super('ERR_PGPROXY_STARTUP_PARAMETER', message);
  }
}
