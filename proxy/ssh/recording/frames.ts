/**
 * How a recording is stored: a log of binary frames, rendered as asciicast v2 when it is read.
 *
 * A session's output is stored as it came, so recording a bulk transfer costs the proxy one copy
 * of the bytes: no decoding, no JSON escaping and no conversion to a JavaScript string on the data
 * path. Encoding 32 MiB of output as asciicast text took about 150 ms of the event loop here, as
 * long as the transfer itself. Readers (`warden replay`, the export) call {@link renderAsciicast},
 * which runs the same {@link AsciicastWriter} the text would have come from.
 *
 * Each frame: type (1 byte, the character below), time (float64 LE, epoch milliseconds), payload
 * length (uint32 LE), payload. Stored pieces hold whole frames; the first frame of the first piece
 * is the header. Pure.
 */
import { AsciicastWriter } from './asciicast-writer.ts';
import { RecordingError } from './errors.ts';

/** Frame types; the byte is the character in the comment. */
export enum FrameType {
  /** `h`: the header, JSON `{ width, height, title?, env? }`; its time is the session start. */
  Header = 0x68,
  /** `o`: output bytes. */
  Output = 0x6f,
  /** `i`: input bytes. */
  Input = 0x69,
  /** `r`: a resize, columns and rows as two uint16 LE. */
  Resize = 0x72,
  /** `m`: a marker, its label in UTF-8. */
  Marker = 0x6d,
  /** `e`: the end of the recording, no payload. */
  End = 0x65,
}

/** Bytes before a frame's payload. */
export const FRAME_HEADER_BYTES = 13;

/** The recording facts kept in the header frame. */
export interface FramesHeader {
  width: number;
  height: number;
  title?: string;
  env?: Record<string, string>;
}

/** Writes the 13 bytes that start a frame at `offset` of `target`; returns the payload's offset. */
export function writeFrameHeader(
  target: Buffer,
  offset: number,
  type: FrameType,
  at: number,
  length: number,
): number {
  target[offset] = type;
  target.writeDoubleLE(at, offset + 1);
  target.writeUInt32LE(length, offset + 9);
  return offset + FRAME_HEADER_BYTES;
}

/** One whole frame (header and payload) as a new buffer. */
export function encodeFrame(type: FrameType, at: number, payload: Uint8Array = new Uint8Array(0)): Buffer {
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length);
  frame.set(payload, writeFrameHeader(frame, 0, type, at, payload.length));
  return frame;
}

/** The header frame of a recording that started at `startedAt`. */
export function encodeHeaderFrame(header: FramesHeader, startedAt: number): Buffer {
  return encodeFrame(FrameType.Header, startedAt, Buffer.from(JSON.stringify(header)));
}

/** The resize frame for a terminal of `width` columns and `height` rows. */
export function encodeResizeFrame(width: number, height: number, at: number): Buffer {
  const payload = Buffer.allocUnsafe(4);
  payload.writeUInt16LE(width, 0);
  payload.writeUInt16LE(height, 2);
  return encodeFrame(FrameType.Resize, at, payload);
}

function frameError(message: string, piece: number, offset: number): RecordingError {
  return new RecordingError('ERR_RECORDING_FRAME', `stored recording is damaged: ${message}`, {
    details: {
      piece,
      offset,
    },
  });
}

const isStringRecord = (value: unknown): value is Record<string, string> =>
  typeof value === 'object' &&
  value !== null &&
  !Array.isArray(value) &&
  Object.values(value).every((v) => typeof v === 'string');

function readHeader(payload: Buffer, at: number, piece: number): AsciicastWriter {
  let header: unknown;
  try {
    header = JSON.parse(payload.toString('utf8'));
  } catch {
    throw frameError('header is not JSON', piece, 0);
  }
  const { width, height, title, env } = (header ?? {}) as Record<string, unknown>;
  if (typeof width !== 'number' || typeof height !== 'number' || !Number.isFinite(at))
    throw frameError('header lacks the terminal size or start time', piece, 0);
  if ((title !== undefined && typeof title !== 'string') || (env !== undefined && !isStringRecord(env)))
    throw frameError('header has a bad title or env', piece, 0);
  try {
    return new AsciicastWriter({
      width,
      height,
      startedAt: at,
      ...(title !== undefined ? { title } : {}),
      ...(env !== undefined ? { env } : {}),
    });
  } catch {
    throw frameError('header has a bad terminal size', piece, 0);
  }
}

/**
 * The asciicast v2 text of a recording stored as `pieces` (in order). A recording without its end
 * frame (the proxy stopped mid-session) ends at its last frame. Throws a {@link RecordingError}
 * `ERR_RECORDING_FRAME` for damaged pieces, never reading past a piece's end.
 */
export function renderAsciicast(pieces: readonly Uint8Array[]): string {
  let writer: AsciicastWriter | undefined;
  const lines: string[] = [];
  let lastAt = 0;
  let ended = false;
  pieces.forEach((bytes, piece) => {
    const data = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
    let offset = 0;
    while (offset < data.length) {
      if (ended) throw frameError('frames after the end', piece, offset);
      if (data.length - offset < FRAME_HEADER_BYTES) throw frameError('cut frame header', piece, offset);
      const type = data[offset]!;
      const at = data.readDoubleLE(offset + 1);
      const length = data.readUInt32LE(offset + 9);
      const start = offset + FRAME_HEADER_BYTES;
      if (length > data.length - start) throw frameError('frame passes the end of its piece', piece, offset);
      const payload = data.subarray(start, start + length);
      if (!writer) {
        if (type !== FrameType.Header) throw frameError('no header frame first', piece, offset);
        writer = readHeader(payload, at, piece);
        lines.push(writer.header());
        offset = start + length;
        continue;
      }
      if (!Number.isFinite(at)) throw frameError('bad frame time', piece, offset);
      lastAt = at;
      switch (type) {
        case FrameType.Output:
          lines.push(writer.output(payload, at));
          break;
        case FrameType.Input:
          lines.push(writer.input(payload, at));
          break;
        case FrameType.Resize:
          if (length !== 4) throw frameError('bad resize frame', piece, offset);
          try {
            lines.push(writer.resize(payload.readUInt16LE(0), payload.readUInt16LE(2), at));
          } catch {
            throw frameError('bad terminal size', piece, offset);
          }
          break;
        case FrameType.Marker:
          lines.push(writer.marker(payload.toString('utf8'), at));
          break;
        case FrameType.End:
          lines.push(writer.end(at));
          ended = true;
          break;
        default:
          throw frameError(`unknown frame type ${type}`, piece, offset);
      }
      offset = start + length;
    }
  });
  if (!writer) throw frameError('no frames', 0, 0);
  if (!ended) lines.push(writer.end(lastAt));
  return lines.join('');
}
