/**
 * Writes asciicast v2 lines. Pure: the caller passes bytes and the time they were seen, and writes
 * the returned lines wherever the recording goes. A UTF-8 character split across two chunks is
 * held back until it is complete, so every line is valid JSON of valid text.
 */

import { TextDecoder } from 'node:util';
import { AsciicastEventType, type AsciicastHeader, MAX_TERMINAL_SIZE } from './asciicast.ts';
import { RecordingError } from './errors.ts';

/** A character that is not printable ASCII, or is `"` or `\\` (JSON escapes those). */
const NOT_PLAIN = /[^\x20\x21\x23-\x5b\x5d-\x7e]/;

/**
 * Whether `data` ends with the first bytes of a UTF-8 character that a decoder in streaming mode
 * holds back (a lead byte not yet followed by all its continuation bytes).
 */
function endsInsideCharacter(data: Uint8Array): boolean {
  for (let back = 1; back <= 3 && back <= data.length; back++) {
    const byte = data[data.length - back]!;
    if (byte < 0x80) return false;
    if (byte >= 0xc0) {
      const needs = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : 2;
      return back < needs;
    }
  }
  return false;
}

/** Options of {@link AsciicastWriter}. */
export interface AsciicastWriterOptions {
  /** Terminal columns and rows at the start. */
  width: number;
  height: number;
  /** When the session started, in epoch milliseconds; event times are relative to it. */
  startedAt: number;
  title?: string;
  /** A few environment facts (`TERM`, `SHELL`); never secrets. */
  env?: Record<string, string>;
}

function checkSize(width: number, height: number): void {
  for (const value of [width, height]) {
    if (!Number.isInteger(value) || value < 1 || value > MAX_TERMINAL_SIZE) {
      throw new RecordingError('ERR_RECORDING_INPUT', `terminal size must be 1 to ${MAX_TERMINAL_SIZE}`, {
        details: {
          width,
          height,
        },
      });
    }
  }
}

/** Builds the lines of one recording. */
export class AsciicastWriter {
  readonly #startedAt: number;
  readonly #header: AsciicastHeader;
  readonly #decoders = new Map<AsciicastEventType, TextDecoder>();
  /** Streams whose decoder may hold the first bytes of a character. */
  readonly #pending = new Set<AsciicastEventType>();
  #lastTime = 0;

  constructor(options: AsciicastWriterOptions) {
    checkSize(options.width, options.height);
    if (!Number.isFinite(options.startedAt)) {
      throw new RecordingError('ERR_RECORDING_INPUT', 'startedAt must be epoch milliseconds');
    }
    this.#startedAt = options.startedAt;
    this.#header = {
      version: 2,
      width: options.width,
      height: options.height,
      timestamp: Math.floor(options.startedAt / 1000),
      ...(options.env ? { env: { ...options.env } } : {}),
      ...(options.title !== undefined ? { title: options.title } : {}),
    };
  }

  /** The header line (first line of the file). */
  header(): string {
    return JSON.stringify(this.#header) + '\n';
  }

  /** Output bytes seen at `at` (epoch ms). Returns the line to append, or `''` if only a partial character came. */
  output(data: Uint8Array | string, at: number): string {
    return this.#text(AsciicastEventType.Output, data, at);
  }

  /** Input bytes seen at `at` (epoch ms). Keep it off for sessions where people type secrets. */
  input(data: Uint8Array | string, at: number): string {
    return this.#text(AsciicastEventType.Input, data, at);
  }

  /** A terminal resize at `at`. */
  resize(width: number, height: number, at: number): string {
    checkSize(width, height);
    return this.#line(AsciicastEventType.Resize, `${width}x${height}`, at);
  }

  /** A marker (a blocked command, a grant event) at `at`. */
  marker(label: string, at: number): string {
    return this.#line(AsciicastEventType.Marker, label, at);
  }

  /** Flushes bytes of an incomplete character at the end of the session (written as U+FFFD). */
  end(at: number): string {
    let out = '';
    for (const [type, decoder] of this.#decoders) {
      const rest = decoder.decode();
      if (rest) out += this.#line(type, rest, at);
    }
    this.#decoders.clear();
    return out;
  }

  #text(type: AsciicastEventType, data: Uint8Array | string, at: number): string {
    if (typeof data === 'string') return data ? this.#line(type, data, at) : '';
    if (data.length === 0) return '';
    // Bulk output (a file, a log) is mostly printable ASCII: such bytes are their own JSON string
    // text, so the line is written without decoding or escaping. Only when no character is
    // pending in the decoder, so the order of bytes is kept.
    if (!this.#pending.has(type)) {
      // One byte per character, so the check is a regular expression over the bytes (far faster
      // than a loop over them).
      const latin1 = Buffer.from(data.buffer, data.byteOffset, data.length).toString('latin1');
      if (!NOT_PLAIN.test(latin1)) return `[${this.#seconds(at)},"${type}","${latin1}"]\n`;
    }
    let decoder = this.#decoders.get(type);
    if (!decoder) {
      decoder = new TextDecoder('utf-8', { fatal: false });
      this.#decoders.set(type, decoder);
    }
    const text = decoder.decode(data, { stream: true });
    if (endsInsideCharacter(data)) this.#pending.add(type);
    else this.#pending.delete(type);
    return text ? this.#line(type, text, at) : '';
  }

  #seconds(at: number): number {
    // Times never go backwards, even if the caller's clock does; microsecond precision as asciinema writes.
    const seconds = Math.max(this.#lastTime, Math.round(((at - this.#startedAt) / 1000) * 1e6) / 1e6);
    this.#lastTime = seconds;
    return seconds;
  }

  #line(type: AsciicastEventType, data: string, at: number): string {
    return JSON.stringify([this.#seconds(at), type, data]) + '\n';
  }
}
