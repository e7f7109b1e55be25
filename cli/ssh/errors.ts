/** Errors of the `warden ssh` verbs on the user's side; the CLI prints the code and exits 1. */

/** Every code a `warden ssh` failure on the user's side can carry. */
export type SshCliErrorCode =
  | 'ERR_SSH_CLI_GRANT_ID'
  | 'ERR_SSH_CLI_KEY_FILE'
  | 'ERR_SSH_CLI_ANSWER_INVALID'
  | 'ERR_SSH_CLI_WRITE_FAILED'
  | 'ERR_SSH_CLI_SESSION_NOT_FOUND'
  | 'ERR_SSH_CLI_SESSION_NOT_SSH'
  | 'ERR_SSH_CLI_NO_RECORDING';

/** A `warden ssh` failure. Messages never hold key material. */
export class SshCliError extends Error {
  readonly code: SshCliErrorCode;

  constructor(code: SshCliErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}
