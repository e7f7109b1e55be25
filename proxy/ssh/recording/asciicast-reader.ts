/**
 * Reads and validates an asciicast v2 recording. Lines are length-checked before they are parsed,
 * so a hostile file cannot make the reader buffer or parse without bound.
 */
import { type Asciicast, type AsciicastEvent, type AsciicastHeader, MAX_TERMINAL_SIZE } from './asciicast.ts';
import { RecordingError } from './errors.ts';

/** Options of {@link parseAsciicast}. */
export interface ParseAsciicastOptions {
  /** Longest accepted line in characters; default 1,048,576. */
  maxLineLength?: number;
  /** Most events accepted; default 10,000,000. */
  maxEvents?: number;
}

const EVENT_TYPES = new Set(['o', 'i', 'r', 'm']);

function isDimension(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= MAX_TERMINAL_SIZE;
}

function parseJson(
  line: string,
  lineNumber: number,
  code: 'ERR_RECORDING_HEADER' | 'ERR_RECORDING_EVENT',
): unknown {
  try {
    return JSON.parse(line);
  } catch {
    throw new RecordingError(code, `line ${lineNumber} is not JSON`, { details: { line: lineNumber } });
  }
}

function readHeader(line: string): AsciicastHeader {
  const value = parseJson(line, 1, 'ERR_RECORDING_HEADER') as Record<string, unknown> | null;
  const fail = (why: string) =>
    new RecordingError('ERR_RECORDING_HEADER', `bad asciicast header: ${why}`, { details: { line: 1 } });
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw fail('not an object');
  if (value.version !== 2) throw fail('version must be 2');
  if (!isDimension(value.width) || !isDimension(value.height))
    throw fail('width and height must be positive integers');
  const header: AsciicastHeader = { version: 2, width: value.width, height: value.height };
  if (value.timestamp !== undefined) {
    if (typeof value.timestamp !== 'number' || !Number.isFinite(value.timestamp))
      throw fail('timestamp must be a number');
    header.timestamp = value.timestamp;
  }
  if (value.idle_time_limit !== undefined) {
    if (typeof value.idle_time_limit !== 'number' || !(value.idle_time_limit > 0)) {
      throw fail('idle_time_limit must be a positive number');
    }
    header.idle_time_limit = value.idle_time_limit;
  }
  if (value.title !== undefined) {
    if (typeof value.title !== 'string') throw fail('title must be a string');
    header.title = value.title;
  }
  if (value.env !== undefined) {
    const env = value.env as Record<string, unknown>;
    if (typeof env !== 'object' || env === null || Array.isArray(env)) throw fail('env must be an object');
    if (!Object.values(env).every((v) => typeof v === 'string')) throw fail('env values must be strings');
    header.env = env as Record<string, string>;
  }
  return header;
}

function readEvent(line: string, lineNumber: number, previous: number): AsciicastEvent {
  const value = parseJson(line, lineNumber, 'ERR_RECORDING_EVENT');
  const fail = (why: string) =>
    new RecordingError('ERR_RECORDING_EVENT', `bad event on line ${lineNumber}: ${why}`, {
      details: {
        line: lineNumber,
      },
    });
  if (!Array.isArray(value) || value.length !== 3) throw fail('expected [time, type, data]');
  const [time, type, data] = value as unknown[];
  if (typeof time !== 'number' || !Number.isFinite(time) || time < 0)
    throw fail('time must be a number >= 0');
  if (typeof type !== 'string' || !EVENT_TYPES.has(type)) throw fail('type must be "o", "i", "r" or "m"');
  if (typeof data !== 'string') throw fail('data must be a string');
  if (type === 'r') {
    const size = /^(\d{1,5})x(\d{1,5})$/.exec(data);
    if (!size || !isDimension(Number(size[1])) || !isDimension(Number(size[2])))
      throw fail('resize data must be "<cols>x<rows>"');
  }
  if (time < previous) {
    throw new RecordingError('ERR_RECORDING_TIME', `event on line ${lineNumber} goes back in time`, {
      details: {
        line: lineNumber,
      },
    });
  }
  return [time, type as AsciicastEvent[1], data];
}

/**
 * Parses a whole recording. Throws `ERR_RECORDING_HEADER`, `ERR_RECORDING_LINE_TOO_LONG`,
 * `ERR_RECORDING_EVENT` (malformed event) or `ERR_RECORDING_TIME` (time going backwards), with the
 * line number in `details.line`. Blank lines are skipped; a missing final newline is accepted.
 */
export function parseAsciicast(text: string, options: ParseAsciicastOptions = {}): Asciicast {
  const maxLineLength = options.maxLineLength ?? 1_048_576;
  const maxEvents = options.maxEvents ?? 10_000_000;
  let header: AsciicastHeader | undefined;
  const events: AsciicastEvent[] = [];
  let previous = 0;
  let start = 0;
  for (let lineNumber = 1; start < text.length || lineNumber === 1; lineNumber++) {
    let end = text.indexOf('\n', start);
    if (end === -1) end = text.length;
    if (end - start > maxLineLength) {
      throw new RecordingError(
        'ERR_RECORDING_LINE_TOO_LONG',
        `line ${lineNumber} is longer than ${maxLineLength}`,
        {
          details: {
            line: lineNumber,
            max: maxLineLength,
          },
        },
      );
    }
    const line = text.slice(start, end).replace(/\r$/, '');
    start = end + 1;
    if (header === undefined) {
      if (line.trim() === '')
        throw new RecordingError('ERR_RECORDING_HEADER', 'the recording is empty', { details: { line: 1 } });
      header = readHeader(line);
      continue;
    }
    if (line.trim() === '') continue;
    if (events.length >= maxEvents) {
      throw new RecordingError('ERR_RECORDING_EVENT', `more than ${maxEvents} events`, {
        details: { line: lineNumber },
      });
    }
    const event = readEvent(line, lineNumber, previous);
    previous = event[0];
    events.push(event);
  }
  return { header: header!, events };
}
