/** Errors of `warden psql`; the command prints them and exits 2 (usage) or 1 (connection). */
import { WardenError } from '../../lib/errors.ts';

/** Every code a `warden psql` failure can carry. */
export const PSQL_ERROR_CODES = [
  'ERR_PSQL_CONNINFO_INVALID',
  'ERR_PSQL_NO_PASSWORD',
  'ERR_PSQL_CONNECT_FAILED',
  'ERR_PSQL_STATEMENT_TOO_LONG',
] as const;

export type PsqlErrorCode = (typeof PSQL_ERROR_CODES)[number];

/** A `warden psql` failure; messages never hold the password. */
export class PsqlError extends WardenError<PsqlErrorCode> {}
