/**
 * Reads an SSH session's recording from the store as asciicast v2 text, whichever way it was
 * stored: frames (see `frames.ts`), or text written by versions before them.
 */
import type { SshSessionRecord } from '../../../broker/model.ts';
import type { Store } from '../../../broker/store/store.ts';
import { renderAsciicast } from './frames.ts';

/**
 * The asciicast v2 text of `session`'s recording; `null` when it has none (a file transfer). Throws
 * a `RecordingError` (`ERR_RECORDING_FRAME`) when the stored pieces are damaged.
 */
export async function readStoredRecording(
  store: Pick<Store, 'readSshRecording'>,
  session: SshSessionRecord,
): Promise<string | null> {
  if (session.recording !== null) return session.recording;
  const pieces = await store.readSshRecording(session.id);
  return pieces.length > 0 ? renderAsciicast(pieces) : null;
}
