/** Errors of the demo behind `npm start` (`warden serve --demo`); the CLI prints them and exits 1. */

/** Every code a demo failure can carry. */
export type DemoErrorCode = 'ERR_DEMO_OPTION_INVALID' | 'ERR_DEMO_NO_DATABASE' | 'ERR_DEMO_DATABASE_FAILED';

/** A demo that cannot start; the message says what to do about it. */
export class DemoError extends Error {
  readonly code: DemoErrorCode;

  constructor(code: DemoErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}
