/** Errors of the demo behind `npm start` (`warden serve --demo`); the CLI prints them and exits 1. */
import { WardenError } from '../../lib/errors.ts';

/** Every code a demo failure can carry. */
export const DEMO_ERROR_CODES = [
  'ERR_DEMO_OPTION_INVALID',
  'ERR_DEMO_NO_DATABASE',
  'ERR_DEMO_DATABASE_FAILED',
] as const;

export type DemoErrorCode = (typeof DEMO_ERROR_CODES)[number];

/** A demo that cannot start; the message says what to do about it. */
export class DemoError extends WardenError<DemoErrorCode> {}
