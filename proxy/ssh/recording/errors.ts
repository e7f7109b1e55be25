/**
 * Errors of session recordings (asciicast v2). Each has a stable `code`; `details.line` names the
 * 1-based line of a recording that could not be read.
 */
import { WardenError } from '../../../lib/errors.ts';

/** Every code a recording error can carry. */
export const RECORDING_ERROR_CODES = [
  'ERR_RECORDING_HEADER',
  'ERR_RECORDING_LINE_TOO_LONG',
  'ERR_RECORDING_EVENT',
  'ERR_RECORDING_TIME',
  'ERR_RECORDING_INPUT',
  'ERR_RECORDING_PLAYBACK',
  'ERR_RECORDING_FRAME',
] as const;

export type RecordingErrorCode = (typeof RECORDING_ERROR_CODES)[number];

/** Base class of every recording error. */
export class RecordingError extends WardenError<RecordingErrorCode> {}

/** Returns whether `error` is a {@link RecordingError}, optionally with the given code. */
export function isRecordingError(error: unknown, code?: RecordingErrorCode): error is RecordingError {
  return error instanceof RecordingError && (code === undefined || error.code === code);
}
