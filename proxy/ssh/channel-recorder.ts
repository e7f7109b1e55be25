/**
 * The recording of one proxied channel. On the data path it only copies bytes: each chunk goes into
 * a block of frames (see `recording/frames.ts`), and output chunks that follow each other within
 * {@link COALESCE_MS} grow the same frame. Nothing is decoded or encoded here; the session writes
 * the frames to the store in pieces with {@link ChannelRecorder.take}, and readers render them as
 * asciicast v2. The bytes kept are bounded by `maxBytes`, frame headers included. Input is left out
 * while the terminal likely has echo off (the last output looks like a password prompt) until the
 * next Enter. Pure apart from the times the caller passes.
 */

import { MAX_TERMINAL_SIZE } from './recording/asciicast.ts';
import { RecordingError } from './recording/errors.ts';
import {
  encodeFrame,
  encodeHeaderFrame,
  encodeResizeFrame,
  FRAME_HEADER_BYTES,
  FrameType,
  writeFrameHeader,
} from './recording/frames.ts';

/** Output ending like this is taken as a prompt typed without echo. */
const SECRET_PROMPT = /(pass(word|phrase)|PIN|token|secret)[^\n]{0,40}:\s*$/i;
const PROMPT_TAIL = 200;
const COLON = 0x3a;

/** Whether `byte` is whitespace to `\s` once decoded as latin1 (tab to CR, space, no-break space). */
function isSpace(byte: number): boolean {
  return (byte >= 0x09 && byte <= 0x0d) || byte === 0x20 || byte === 0xa0;
}
/** Output chunks closer than this (ms) to the first of their frame share it. */
export const COALESCE_MS = 5;
/** Largest payload (bytes) of one output or input frame. */
const FRAME_BYTES = 64 * 1024;
/** Largest block of frames, and so of a piece {@link ChannelRecorder.take} returns. */
export const PIECE_BYTES = 256 * 1024;
/** The first block; each next one doubles up to {@link PIECE_BYTES}, so a quiet channel stays small. */
const FIRST_BLOCK = 4 * 1024;
/** Longest marker label kept (characters). */
const MAX_LABEL = 1_000;
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
  /** Most bytes of frames kept (headers included); later ones are dropped and a marker says so. */
  maxBytes: number;
}

export class ChannelRecorder {
  readonly #options: ChannelRecorderOptions;
  /** Blocks (their untaken parts) that are full, oldest first. */
  #closed: Buffer[] = [];
  #closedBytes = 0;
  /** The block frames are written to: taken up to `#start`, written up to `#used`. */
  #block: Buffer;
  #start = 0;
  #used = 0;
  /** Offset of the last frame in `#block` while it may still grow; -1 when none may. */
  #open = -1;
  #openType = FrameType.Output;
  #openAt = 0;
  #openLength = 0;
  #bytes = 0;
  #truncated = false;
  #ended = false;
  /** The last output bytes, up to {@link PROMPT_TAIL}. */
  readonly #tail = Buffer.alloc(PROMPT_TAIL);
  #tailLength = 0;
  #echoOff = false;

  constructor(options: ChannelRecorderOptions) {
    this.#options = options;
    const { startedAt, title, env } = options;
    // A client may claim any size: out-of-range sizes fall back to 80x24 rather than fail the channel.
    const width = isTerminalSize(options.width) ? options.width : 80;
    const height = isTerminalSize(options.height) ? options.height : 24;
    const header = { width, height, title, ...(env ? { env } : {}) };
    // Checked now, so a bad start time fails the channel at its start rather than its replay.
    if (!Number.isFinite(startedAt)) {
      throw new RecordingError('ERR_RECORDING_INPUT', 'startedAt must be epoch milliseconds');
    }
    const frame = encodeHeaderFrame(header, startedAt);
    this.#block = Buffer.allocUnsafeSlow(Math.max(FIRST_BLOCK, frame.length));
    this.#append(frame);
  }

  /** Bytes of frames that {@link take} has not returned yet. */
  get heldBytes(): number {
    return this.#closedBytes + this.#used - this.#start;
  }

  /** Whether frames wait for {@link take}. */
  get hasHeld(): boolean {
    return this.heldBytes > 0;
  }

  /** Whether the recording hit its size limit. */
  get truncated(): boolean {
    return this.#truncated;
  }

  /** Output bytes seen at `at` (epoch ms). The bytes are copied: the caller may reuse `data`. */
  output(data: Buffer, at: number): void {
    this.#keepTail(data);
    this.#echoOff = this.#endsLikePrompt();
    this.#bytesFrame(FrameType.Output, data, at);
  }

  /** Input bytes seen at `at`; dropped while echo looks off or input recording is off. */
  input(data: Buffer, at: number): void {
    const hidden = this.#echoOff || !this.#options.recordInput;
    if (data.includes(0x0d) || data.includes(0x0a)) this.#echoOff = false;
    if (!hidden) this.#bytesFrame(FrameType.Input, data, at);
  }

  /** A terminal resize; sizes outside 1 to {@link MAX_TERMINAL_SIZE} are not recorded. */
  resize(width: number, height: number, at: number): void {
    if (!isTerminalSize(width) || !isTerminalSize(height) || this.#ended) return;
    const frame = encodeResizeFrame(width, height, at);
    if (this.#charge(frame.length, at)) this.#append(frame);
  }

  /** A marker; always kept, even past the limit (markers are few: blocked commands, the end). */
  marker(label: string, at: number): void {
    if (!this.#ended) this.#append(encodeFrame(FrameType.Marker, at, Buffer.from(label.slice(0, MAX_LABEL))));
  }

  /**
   * The next piece of the recording, oldest first: whole frames, at most {@link PIECE_BYTES}, the
   * header frame first; `undefined` when nothing is held. The pieces in order are the recording.
   * A piece is a view of memory the recorder never writes again.
   */
  take(): Buffer | undefined {
    const piece = this.#closed.shift();
    if (piece) {
      this.#closedBytes -= piece.length;
      return piece;
    }
    if (this.#used === this.#start) return undefined;
    const rest = this.#block.subarray(this.#start, this.#used);
    this.#start = this.#used;
    this.#open = -1;
    return rest;
  }

  /** Ends the recording at `at` (an end frame); {@link take} then returns what is left. Call once. */
  finish(at: number): void {
    if (this.#ended) return;
    this.#append(encodeFrame(FrameType.End, at));
    this.#ended = true;
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

  /** Copies `data` into frames: grows the open frame while it may, else starts new ones. */
  #bytesFrame(type: FrameType.Output | FrameType.Input, data: Buffer, at: number): void {
    let offset = 0;
    while (offset < data.length && !this.#ended) {
      const grows =
        this.#open >= 0 &&
        this.#openType === type &&
        at - this.#openAt <= COALESCE_MS &&
        this.#openLength < FRAME_BYTES &&
        this.#used < this.#block.length;
      if (grows) {
        const n = Math.min(
          data.length - offset,
          FRAME_BYTES - this.#openLength,
          this.#block.length - this.#used,
        );
        if (!this.#charge(n, at)) return;
        data.copy(this.#block, this.#used, offset, offset + n);
        this.#used += n;
        this.#openLength += n;
        this.#block.writeUInt32LE(this.#openLength, this.#open + 9);
        offset += n;
        continue;
      }
      const n = Math.min(data.length - offset, FRAME_BYTES);
      if (!this.#charge(FRAME_HEADER_BYTES + n, at)) return;
      this.#reserve(FRAME_HEADER_BYTES + n);
      const frame = this.#used;
      const payload = writeFrameHeader(this.#block, frame, type, at, n);
      data.copy(this.#block, payload, offset, offset + n);
      this.#used = payload + n;
      this.#open = frame;
      this.#openType = type;
      this.#openAt = at;
      this.#openLength = n;
      offset += n;
    }
  }

  /** Appends a whole frame (it closes the open one). */
  #append(frame: Buffer): void {
    this.#reserve(frame.length);
    frame.copy(this.#block, this.#used);
    this.#used += frame.length;
    this.#open = -1;
  }

  /** Makes room for `bytes` in the block, closing it for a new one when it has too little. */
  #reserve(bytes: number): void {
    if (this.#block.length - this.#used >= bytes) return;
    if (this.#used > this.#start) {
      this.#closed.push(this.#block.subarray(this.#start, this.#used));
      this.#closedBytes += this.#used - this.#start;
    }
    const size = Math.min(PIECE_BYTES, this.#block.length * 2);
    this.#block = Buffer.allocUnsafeSlow(Math.max(size, bytes));
    this.#start = 0;
    this.#used = 0;
    this.#open = -1;
  }

  /** Counts `bytes` against the limit; false (and truncated from now on) when they do not fit. */
  #charge(bytes: number, at: number): boolean {
    if (this.#truncated) return false;
    if (this.#bytes + bytes > this.#options.maxBytes) {
      this.#truncated = true;
      this.marker(TRUNCATED, at);
      return false;
    }
    this.#bytes += bytes;
    return true;
  }
}
