/**
 * Errors of session recordings (asciicast v2). Each has a stable `code`; `details.line` names the
 * 1-based line of a recording that could not be read.
 */

export type RecordingErrorCode =
  | 'ERR_RECORDING_HEADER'
  | 'ERR_RECORDING_LINE_TOO_LONG'
  | 'ERR_RECORDING_EVENT'
  | 'ERR_RECORDING_TIME'
  | 'ERR_RECORDING_INPUT'
  | 'ERR_RECORDING_PLAYBACK'
  | 'ERR_RECORDING_FRAME';

/** Base class of every recording error. */
export class RecordingError extends Error {
  readonly code: RecordingErrorCode;
  readonly details: Record<string, unknown>;

  constructor(code: RecordingErrorCode, message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.details = details;
  }
}

/** Returns whether `error` is a {@link RecordingError}, optionally with the given code. */
export function isRecordingError(error: unknown, code?: RecordingErrorCode): error is RecordingError {
  return error instanceof RecordingError && (code === undefined || error.code === code);
}
