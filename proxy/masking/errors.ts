/**
 * Errors raised by the masking core. Every error carries a stable `code` that callers branch on;
 * the message is for people and never holds a value that was being masked.
 */

/** Every code a masking error may carry. */
export type MaskingErrorCode =
  | 'ERR_MASKING_CONFIG'
  | 'ERR_MASKING_PATTERN'
  | 'ERR_MASKING_KEY'
  | 'ERR_MASKING_INPUT';

/** Base class of every masking error. */
export class MaskingError extends Error {
  readonly code: MaskingErrorCode;

  constructor(code: MaskingErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

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
    super(code, `${path}: ${message}`);
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
