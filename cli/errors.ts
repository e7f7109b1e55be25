/** Errors of the `warden` command line itself; `main` prints them and exits 2 (usage). */
import { WardenError, type WardenErrorOptions } from '../lib/errors.ts';

/** Every code the command line itself can raise. */
export const CLI_ERROR_CODES = ['ERR_CLI_USAGE'] as const;

export type CliErrorCode = (typeof CLI_ERROR_CODES)[number];

/** A usage error: unknown command, missing argument, bad flag value. The message says what to type instead. */
export class UsageError extends WardenError<CliErrorCode> {
  constructor(message: string, options?: WardenErrorOptions) {
    super('ERR_CLI_USAGE', message, options);
  }
}
