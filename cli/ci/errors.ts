/** Errors of `warden ci exchange` on the job side; the CLI maps them to exit codes. */

/** Every code a CLI-side CI failure can carry. */
export type CiCliErrorCode =
  | 'ERR_CI_TOKEN_SOURCE_MISSING'
  | 'ERR_CI_TOKEN_SOURCE_FAILED'
  | 'ERR_CI_FORMAT_INVALID';

/** A failure reading the job's token or rendering the credential. Messages never hold a secret. */
export class CiCliError extends Error {
  readonly code: CiCliErrorCode;

  constructor(code: CiCliErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}
