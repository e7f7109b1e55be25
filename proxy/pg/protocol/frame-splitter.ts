import { describeTag, MalformedMessageError, MessageTooLongError } from './errors.ts';

/** Receives one complete tagged message: its tag byte and its raw bytes (tag, length and body). */
export type FrameHandler = (code: number, raw: Buffer) => void;

/**
 * Receives a run of complete messages of one tag lying back to back in `chunk[start, end)`, each
 * with a valid header (tag, length within the limit); their bodies are not checked.
 */
export type RunHandler = (chunk: Buffer, start: number, end: number) => void;

/** Which tags a side may send and how long each may be. */
export interface FrameRules {
  /** Largest allowed value of the length field (which counts itself, not the tag) for a tag. */
  limitFor(code: number): number;
  /** Throws a ProtocolError when the tag is not one this side may send. */
  checkTag(code: number): void;
}

const HEADER = 5;

/**
 * Splits a byte stream into tagged messages (`tag`, Int32 length, body) across arbitrary chunk
 * boundaries. Complete messages inside a chunk are handed out as zero-copy views of that chunk;
 * a message split across chunks is copied once into a buffer sized from its length field, which is
 * checked against the limit before anything is buffered. At most `limit + 1` bytes are ever held.
 * After an error (its own, or one thrown by `onFrame`, which leaves the stream position unknown)
 * every later call throws the same error.
 */
export class FrameSplitter {
  private readonly header = Buffer.alloc(HEADER);
  private headerFill = 0;
  private partial: Buffer | null = null;
  private partialFill = 0;
  private failure: unknown = null;

  constructor(private readonly rules: FrameRules) {}

  /** Bytes held back waiting for the rest of a message. */
  get bufferedBytes(): number {
    return this.partial ? this.partialFill : this.headerFill;
  }

  /**
   * Feeds a chunk; calls `onFrame` for every message it completes, in order. With `runCode` and
   * `onRun`, complete messages of that tag lying back to back inside the chunk go to `onRun` as one
   * run instead (a message split across chunks still goes to `onFrame`).
   */
  feed(chunk: Buffer, onFrame: FrameHandler, runCode = -1, onRun?: RunHandler): void {
    if (this.failure) throw this.failure;
    try {
      this.split(chunk, onFrame, runCode, onRun);
    } catch (error) {
      this.failure = error;
      throw error;
    }
  }

  private split(chunk: Buffer, onFrame: FrameHandler, runCode: number, onRun: RunHandler | undefined): void {
    const size = chunk.length;
    let pos = 0;
    if (this.headerFill > 0) {
      const take = Math.min(HEADER - this.headerFill, size);
      chunk.copy(this.header, this.headerFill, 0, take);
      this.headerFill += take;
      pos = take;
      if (this.headerFill < HEADER) return;
      const total = this.checkHeader(this.header, 0);
      this.headerFill = 0;
      this.partial = Buffer.allocUnsafe(total);
      this.header.copy(this.partial, 0);
      this.partialFill = HEADER;
    }
    if (this.partial) {
      const partial = this.partial;
      const take = Math.min(partial.length - this.partialFill, size - pos);
      chunk.copy(partial, this.partialFill, pos, pos + take);
      this.partialFill += take;
      pos += take;
      if (this.partialFill < partial.length) return;
      this.partial = null;
      this.partialFill = 0;
      onFrame(partial[0]!, partial);
    }
    while (pos < size) {
      const left = size - pos;
      if (left < HEADER) {
        this.rules.checkTag(chunk[pos]!);
        chunk.copy(this.header, 0, pos, size);
        this.headerFill = left;
        return;
      }
      const total = this.checkHeader(chunk, pos);
      if (left >= total && onRun !== undefined && chunk[pos] === runCode) {
        const end = this.findRunEnd(chunk, pos + total, runCode);
        onRun(chunk, pos, end);
        pos = end;
      } else if (left >= total) {
        onFrame(chunk[pos]!, chunk.subarray(pos, pos + total));
        pos += total;
      } else {
        const partial = Buffer.allocUnsafe(total);
        chunk.copy(partial, 0, pos, size);
        this.partial = partial;
        this.partialFill = left;
        return;
      }
    }
  }

  /** End of the complete `code` messages with valid lengths from `pos` on (the rest is left to `split`). */
  private findRunEnd(chunk: Buffer, pos: number, code: number): number {
    const size = chunk.length;
    const limit = this.rules.limitFor(code);
    let at = pos;
    while (size - at >= HEADER && chunk[at] === code) {
      const length = chunk.readInt32BE(at + 1);
      if (length < 4 || length > limit || size - at - 1 < length) break;
      at += length + 1;
    }
    return at;
  }

  /** Validates tag and length at `at` and returns the message's total size including the tag. */
  private checkHeader(bytes: Buffer, at: number): number {
    const code = bytes[at]!;
    this.rules.checkTag(code);
    const length = bytes.readInt32BE(at + 1);
    if (length < 4) {
      throw new MalformedMessageError(`message ${describeTag(code)} has invalid length ${length}`, {
        length,
      });
    }
    const limit = this.rules.limitFor(code);
    if (length > limit) throw new MessageTooLongError(`message ${describeTag(code)}`, length, limit);
    return length + 1;
  }
}
