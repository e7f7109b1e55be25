/** Errors of `warden ci exchange` on the job side; the CLI maps them to exit codes. */
import { WardenError } from '../../lib/errors.ts';

/** Every code a CLI-side CI failure can carry. */
export const CI_CLI_ERROR_CODES = [
  'ERR_CI_TOKEN_SOURCE_MISSING',
  'ERR_CI_TOKEN_SOURCE_FAILED',
  'ERR_CI_FORMAT_INVALID',
] as const;

export type CiCliErrorCode = (typeof CI_CLI_ERROR_CODES)[number];

/** A failure reading the job's token or rendering the credential. Messages never hold a secret. */
export class CiCliError extends WardenError<CiCliErrorCode> {}
