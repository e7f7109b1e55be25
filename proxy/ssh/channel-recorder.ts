/**
 * The recording of one proxied channel. On the data path it only copies bytes: output chunks that
 * follow each other within {@link COALESCE_MS} are gathered into one batch, and nothing is
 * JSON-encoded there. The session encodes held events in bounded pieces with
 * {@link ChannelRecorder.take} off the data path (and writes each piece to the store), then ends
 * with {@link ChannelRecorder.finish}. Raw bytes kept are bounded by `maxBytes`, and so is the
 * encoded text. Input is left out while the terminal likely has echo off (the last output looks like
 * a password prompt) until the next Enter. Pure apart from the times the caller passes.
 */
import { AsciicastEventType, MAX_TERMINAL_SIZE } from './recording/asciicast.ts';
import { AsciicastWriter } from './recording/asciicast-writer.ts';

/** Output ending like this is taken as a prompt typed without echo. */
const SECRET_PROMPT = /(pass(word|phrase)|PIN|token|secret)[^\n]{0,40}:\s*$/i;
const PROMPT_TAIL = 200;
const COLON = 0x3a;

/** Whether `byte` is whitespace to `\s` once decoded as latin1 (tab to CR, space, no-break space). */
function isSpace(byte: number): boolean {
  return (byte >= 0x09 && byte <= 0x0d) || byte === 0x20 || byte === 0xa0;
}
/** Output chunks closer than this (ms) to the first of their batch share its event. */
export const COALESCE_MS = 5;
/** Largest output batch (bytes) before a new event starts; also bounds one event's encoded text. */
const BATCH_BYTES = 64 * 1024;
/** Default size (characters) {@link ChannelRecorder.take} stops at. */
export const TAKE_CHARS = 256 * 1024;
/** Bytes charged per event for its JSON framing, so many tiny events also meet the limit. */
const EVENT_OVERHEAD = 24;
/** Size of the blocks small chunks are copied into. */
const ARENA_BLOCK = 1024 * 1024;
const TRUNCATED = 'warden: recording truncated (size limit)';

function isTerminalSize(n: number): boolean {
  return Number.isInteger(n) && n >= 1 && n <= MAX_TERMINAL_SIZE;
}

/** Options of {@link ChannelRecorder}. */
export interface ChannelRecorderOptions {
  width: number;
  height: number;
  startedAt: number;
  title: string;
  env?: Record<string, string>;
  recordInput: boolean;
  /** Most bytes of recording kept; later events are dropped and a marker says so. */
  maxBytes: number;
}

type RawEvent =
  | {
      type: AsciicastEventType.Output | AsciicastEventType.Input;
      at: number;
      chunks: Buffer[];
      bytes: number;
    }
  | { type: AsciicastEventType.Resize; at: number; width: number; height: number }
  | { type: AsciicastEventType.Marker; at: number; label: string };

export class ChannelRecorder {
  readonly #options: ChannelRecorderOptions;
  readonly #writer: AsciicastWriter;
  /** Events not encoded yet, oldest first. */
  #events: RawEvent[] = [];
  #bytes = 0;
  #held = 0;
  /** Characters of text encoded so far (header included). */
  #encoded = 0;
  #headerTaken = false;
  #cut = false;
  #truncated = false;
  /** The last output bytes, up to {@link PROMPT_TAIL}. */
  readonly #tail = Buffer.alloc(PROMPT_TAIL);
  #tailLength = 0;
  #echoOff = false;
  #arena = Buffer.alloc(0);
  #arenaUsed = 0;

  constructor(options: ChannelRecorderOptions) {
    this.#options = options;
    // Built now so a bad terminal size fails at the start, not when the recording is stored.
    const { startedAt, title, env } = options;
    // A client may claim any size: out-of-range sizes fall back to 80x24 rather than fail the channel.
    const width = isTerminalSize(options.width) ? options.width : 80;
    const height = isTerminalSize(options.height) ? options.height : 24;
    this.#writer = new AsciicastWriter({ width, height, startedAt, title, ...(env ? { env } : {}) });
  }

  /** Raw bytes held that {@link take} has not encoded yet. */
  get heldBytes(): number {
    return this.#held;
  }

  /** Whether events wait for {@link take}. */
  get hasHeld(): boolean {
    return this.#events.length > 0 || !this.#headerTaken;
  }

  /** Whether the recording hit its size limit. */
  get truncated(): boolean {
    return this.#truncated;
  }

  /** Output bytes seen at `at` (epoch ms). The bytes are copied: the caller may reuse `data`. */
  output(data: Buffer, at: number): void {
    this.#keepTail(data);
    this.#echoOff = this.#endsLikePrompt();
    this.#bytesEvent(AsciicastEventType.Output, data, at);
  }

  /** Input bytes seen at `at`; dropped while echo looks off or input recording is off. */
  input(data: Buffer, at: number): void {
    const hidden = this.#echoOff || !this.#options.recordInput;
    if (data.includes(0x0d) || data.includes(0x0a)) this.#echoOff = false;
    if (!hidden) this.#bytesEvent(AsciicastEventType.Input, data, at);
  }

  /** A terminal resize; sizes outside 1 to {@link MAX_TERMINAL_SIZE} are not recorded. */
  resize(width: number, height: number, at: number): void {
    if (!isTerminalSize(width) || !isTerminalSize(height)) return;
    if (this.#charge(EVENT_OVERHEAD, at))
      this.#events.push({ type: AsciicastEventType.Resize, at, width, height });
  }

  /** A marker; always kept, even past the limit (markers are few: blocked commands, the end). */
  marker(label: string, at: number): void {
    this.#events.push({ type: AsciicastEventType.Marker, at, label });
  }

  /**
   * Encodes held events, oldest first, as the next piece of asciicast v2 text (the header first,
   * once): whole lines, stopping once the piece reaches `maxChars` (one event can pass it by at most
   * one event's text). `''` when nothing is held. The pieces of every call, then {@link finish},
   * joined in order, are the recording, at most about `maxBytes` long.
   */
  take(maxChars: number = TAKE_CHARS): string {
    const writer = this.#writer;
    const lines: string[] = [];
    let size = 0;
    if (!this.#headerTaken) {
      this.#headerTaken = true;
      lines.push(writer.header());
      size = lines[0]!.length;
    }
    let n = 0;
    for (; n < this.#events.length && size < maxChars; n++) {
      const event = this.#events[n]!;
      if (event.type === AsciicastEventType.Output || event.type === AsciicastEventType.Input)
        this.#held -= event.bytes;
      let line: string;
      if (event.type === AsciicastEventType.Marker) line = writer.marker(event.label, event.at);
      else if (this.#cut) line = '';
      else if (event.type === AsciicastEventType.Resize)
        line = writer.resize(event.width, event.height, event.at);
      else {
        const data = event.chunks.length === 1 ? event.chunks[0]! : Buffer.concat(event.chunks, event.bytes);
        line =
          event.type === AsciicastEventType.Output
            ? writer.output(data, event.at)
            : writer.input(data, event.at);
      }
      // Escapes can make text longer than its bytes: the limit holds for the encoded text too.
      if (
        !this.#cut &&
        event.type !== AsciicastEventType.Marker &&
        this.#encoded + size + line.length > this.#options.maxBytes
      ) {
        this.#cut = true;
        line = writer.marker(TRUNCATED, event.at);
      }
      size += line.length;
      if (line) lines.push(line);
    }
    // Drop encoded events (and with them their views of the arena).
    this.#events = n === this.#events.length ? [] : this.#events.slice(n);
    this.#encoded += size;
    return lines.join('');
  }

  /** Encodes everything still held and ends the recording at `at`; the last piece. Call once. */
  finish(at: number): string {
    const rest = this.take(Number.POSITIVE_INFINITY);
    return this.#cut ? rest : rest + this.#writer.end(at);
  }

  /** Slides `data` into the tail window; no string per chunk (this runs per echoed keystroke). */
  #keepTail(data: Buffer): void {
    const n = Math.min(data.length, PROMPT_TAIL);
    const keep = Math.min(this.#tailLength, PROMPT_TAIL - n);
    if (keep > 0) this.#tail.copyWithin(0, this.#tailLength - keep, this.#tailLength);
    data.copy(this.#tail, keep, data.length - n);
    this.#tailLength = keep + n;
  }

  /** {@link SECRET_PROMPT} on the tail; the regex runs only when the tail ends in a colon and spaces. */
  #endsLikePrompt(): boolean {
    let i = this.#tailLength - 1;
    while (i >= 0 && isSpace(this.#tail[i]!)) i--;
    if (i < 0 || this.#tail[i] !== COLON) return false;
    return SECRET_PROMPT.test(this.#tail.toString('latin1', 0, this.#tailLength));
  }

  #bytesEvent(type: AsciicastEventType.Output | AsciicastEventType.Input, data: Buffer, at: number): void {
    if (data.length === 0) return;
    const last = this.#events.at(-1);
    const joins =
      last !== undefined &&
      last.type === type &&
      at - last.at <= COALESCE_MS &&
      last.bytes + data.length <= BATCH_BYTES;
    if (!this.#charge(data.length + (joins ? 0 : EVENT_OVERHEAD), at)) return;
    const copy = this.#copy(data);
    this.#held += copy.length;
    if (joins) {
      last.chunks.push(copy);
      last.bytes += copy.length;
    } else {
      this.#events.push({ type, at, chunks: [copy], bytes: copy.length });
    }
  }

  /**
   * Copies `data` into the current arena block and returns a view of the copy. A copy, because a
   * small chunk may be a view holding a whole socket read buffer alive; an arena, because one
   * allocation per chunk is what made recording a bulk transfer slow (external memory drives GC).
   */
  #copy(data: Buffer): Buffer {
    if (data.length > ARENA_BLOCK / 4) return Buffer.from(data);
    if (this.#arena.length - this.#arenaUsed < data.length) {
      this.#arena = Buffer.allocUnsafeSlow(ARENA_BLOCK);
      this.#arenaUsed = 0;
    }
    const start = this.#arenaUsed;
    data.copy(this.#arena, start);
    this.#arenaUsed += data.length;
    return this.#arena.subarray(start, this.#arenaUsed);
  }

  /** Counts `bytes` against the limit; false (and truncated from now on) when they do not fit. */
  #charge(bytes: number, at: number): boolean {
    if (this.#truncated) return false;
    if (this.#bytes + bytes > this.#options.maxBytes) {
      this.#truncated = true;
      this.#events.push({ type: AsciicastEventType.Marker, at, label: TRUNCATED });
      return false;
    }
    this.#bytes += bytes;
    return true;
  }
}
