/**
 * Errors raised by the masking core. Every error carries a stable `code` that callers branch on;
 * the message is for people and never holds a value that was being masked.
 */
import { formatConfigMessage, WardenError } from '../../lib/errors.ts';

/** Every code a masking error may carry. */
export const MASKING_ERROR_CODES = [
  'ERR_MASKING_CONFIG',
  'ERR_MASKING_PATTERN',
  'ERR_MASKING_KEY',
  'ERR_MASKING_INPUT',
] as const;

export type MaskingErrorCode = (typeof MASKING_ERROR_CODES)[number];

/** Base class of every masking error. */
export class MaskingError extends WardenError<MaskingErrorCode> {}

/**
 * The masking configuration is invalid. `path` names the offending key
 * (`masking.patterns[2].regex`), so the message is actionable at start-up.
 */
export class MaskingConfigError extends MaskingError {
  readonly path: string;

  constructor(
    path: string,
    message: string,
    code: 'ERR_MASKING_CONFIG' | 'ERR_MASKING_PATTERN' | 'ERR_MASKING_KEY' = 'ERR_MASKING_CONFIG',
  ) {
    super(code, formatConfigMessage(path, message), { configPath: path });
    this.path = path;
  }
}

/** A caller passed something the masking API cannot take (not a string, not a Buffer). */
export class MaskingInputError extends MaskingError {
  constructor(message: string) {
    super('ERR_MASKING_INPUT', message);
  }
}

/** Narrows an unknown error to a {@link MaskingError}. */
export function isMaskingError(error: unknown): error is MaskingError {
  return error instanceof MaskingError;
}
