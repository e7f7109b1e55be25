/**
 * Reads an SSH session's recording from the store as asciicast v2 text, whichever way it was
 * stored: frames (see `frames.ts`), or text written by versions before them.
 */
import { renderAsciicast } from './frames.ts';

/** Where recordings are read from: the broker's store has both. */
export interface RecordingSource {
  /** The session's recording pieces in order (none for a file transfer). */
  readSessionFrames(sessionId: string): Promise<Uint8Array[]>;
  /** Asciicast text of a session recorded before frames; `null` for any later one. */
  readLegacyRecording(sessionId: string): Promise<string | null>;
}

/**
 * The asciicast v2 text of session `sessionId`'s recording; `null` when it has none (a file
 * transfer). Throws a `RecordingError` (`ERR_RECORDING_FRAME`) when the stored pieces are damaged.
 */
export async function readStoredRecording(
  source: RecordingSource,
  sessionId: string,
): Promise<string | null> {
  const legacy = await source.readLegacyRecording(sessionId);
  if (legacy !== null) return legacy;
  const pieces = await source.readSessionFrames(sessionId);
  return pieces.length > 0 ? renderAsciicast(pieces) : null;
}
