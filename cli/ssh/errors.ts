/** Errors of the `warden ssh` verbs on the user's side; the CLI prints the code and exits 1. */
import { WardenError } from '../../lib/errors.ts';

/** Every code a `warden ssh` failure on the user's side can carry. */
export const SSH_CLI_ERROR_CODES = [
  'ERR_SSH_CLI_GRANT_ID',
  'ERR_SSH_CLI_KEY_FILE',
  'ERR_SSH_CLI_ANSWER_INVALID',
  'ERR_SSH_CLI_WRITE_FAILED',
  'ERR_SSH_CLI_SESSION_NOT_FOUND',
  'ERR_SSH_CLI_SESSION_NOT_SSH',
  'ERR_SSH_CLI_NO_RECORDING',
] as const;

export type SshCliErrorCode = (typeof SSH_CLI_ERROR_CODES)[number];

/** A `warden ssh` failure. Messages never hold key material. */
export class SshCliError extends WardenError<SshCliErrorCode> {}
