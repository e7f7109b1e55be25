/**
 * Errors raised by the SQL guardrails. Untrusted SQL never raises: it yields a blocking verdict.
 * Only misconfiguration (at start-up) and misuse by the caller raise, each with a stable `code`.
 */
import { formatConfigMessage, WardenError } from '../../../lib/errors.ts';

/** Every code a SQL guardrails error can carry. */
export const SQL_GUARD_ERROR_CODES = ['ERR_SQLGUARD_CONFIG_INVALID', 'ERR_SQLGUARD_UNPARSEABLE'] as const;

export type SqlGuardErrorCode = (typeof SQL_GUARD_ERROR_CODES)[number];

/** Base class of every SQL guardrails error. */
export class SqlGuardError extends WardenError<SqlGuardErrorCode> {}

/** The guardrails configuration is invalid; `path` names the offending key (`guardrails.rules.0.action`). */
export class SqlGuardConfigError extends SqlGuardError {
  readonly path: string;
  constructor(path: string, message: string) {
    super('ERR_SQLGUARD_CONFIG_INVALID', formatConfigMessage(path, message), { configPath: path });
    this.path = path;
  }
}

/**
 * The PostgreSQL parser could not read a statement (syntax error, NUL byte, nesting too deep,
 * a procedural body it cannot analyse). `check` turns this into a verdict with rule `unparseable`.
 */
export class SqlUnparseableError extends SqlGuardError {
  constructor(message: string, options?: ErrorOptions) {
    super('ERR_SQLGUARD_UNPARSEABLE', message, options);
  }
}
