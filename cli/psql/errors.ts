/** Errors of `warden psql`; the command prints them and exits 2 (usage) or 1 (connection). */

/** Every code a `warden psql` failure can carry. */
export type PsqlErrorCode =
  | 'ERR_PSQL_CONNINFO_INVALID'
  | 'ERR_PSQL_NO_PASSWORD'
  | 'ERR_PSQL_CONNECT_FAILED'
  | 'ERR_PSQL_STATEMENT_TOO_LONG';

/** A `warden psql` failure; messages never hold the password. */
export class PsqlError extends Error {
  readonly code: PsqlErrorCode;

  constructor(code: PsqlErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}
