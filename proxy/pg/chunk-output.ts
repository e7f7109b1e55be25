/**
 * Batches what one received chunk turns into for the other side. Messages forwarded unchanged
 * that sit back to back in the chunk leave as one view of it (no copy; an unchanged chunk leaves
 * as itself); rewritten messages are written into one reusable writer and leave as one buffer.
 * Order is kept. A chunk that turns into one buffer is written as is; several are written under
 * cork/uncork so they leave in one system call.
 */
import { MessageWriter } from './protocol/serializer.ts';

/** Where the buffers go: a socket. */
export interface ByteSink {
  /** `done`, when given, is called once the sink no longer refers to `buffer`. */
  write(buffer: Buffer, done?: () => void): unknown;
  cork(): void;
  uncork(): void;
}

export class ChunkOutput {
  private chunk: Buffer = Buffer.alloc(0);
  private runStart = -1;
  private runEnd = -1;
  private writerInstance: MessageWriter | null = null;
  private writerUsed = false;
  private held: Buffer | null = null;
  private heldDone: (() => void) | undefined;
  private corked = false;

  constructor(private readonly sink: ByteSink) {}

  private emit(buffer: Buffer, done?: () => void): void {
    if (this.corked) {
      this.sink.write(buffer, done);
    } else if (this.held) {
      this.sink.cork();
      this.corked = true;
      this.writeHeld();
      this.sink.write(buffer, done);
    } else {
      this.held = buffer;
      this.heldDone = done;
    }
  }

  private writeHeld(): void {
    const held = this.held!;
    const done = this.heldDone;
    this.held = null;
    this.heldDone = undefined;
    this.sink.write(held, done);
  }

  /** Starts a new received chunk. */
  begin(chunk: Buffer): void {
    this.chunk = chunk;
    this.runStart = -1;
    this.runEnd = -1;
  }

  /** Forwards a complete message unchanged. */
  pass(raw: Buffer): void {
    if (this.writerUsed) this.flushWriter();
    const chunk = this.chunk;
    const offset = raw.byteOffset - chunk.byteOffset;
    const inside = raw.buffer === chunk.buffer && offset >= 0 && offset + raw.length <= chunk.length;
    if (inside && offset === this.runEnd) {
      this.runEnd += raw.length;
      return;
    }
    this.flushRun();
    if (inside) {
      this.runStart = offset;
      this.runEnd = offset + raw.length;
    } else {
      this.emit(raw);
    }
  }

  /** The writer to append rewritten messages to (they go out after everything passed before). */
  writer(): MessageWriter {
    this.flushRun();
    this.writerUsed = true;
    if (!this.writerInstance) this.writerInstance = new MessageWriter(16 * 1024);
    return this.writerInstance;
  }

  /** Sends bytes built elsewhere, in order; `done` is called once the sink no longer refers to them. */
  send(buffer: Buffer, done?: () => void): void {
    this.flushRun();
    if (this.writerUsed) this.flushWriter();
    this.emit(buffer, done);
  }

  /** Writes whatever is pending; call once the chunk is consumed. */
  end(): void {
    this.flushRun();
    if (this.writerUsed) this.flushWriter();
    if (this.corked) {
      this.corked = false;
      this.sink.uncork();
    } else if (this.held) {
      this.writeHeld();
    }
  }

  private flushRun(): void {
    if (this.runStart < 0) return;
    const whole = this.runStart === 0 && this.runEnd === this.chunk.length;
    this.emit(whole ? this.chunk : this.chunk.subarray(this.runStart, this.runEnd));
    this.runStart = -1;
    this.runEnd = -1;
  }

  private flushWriter(): void {
    this.writerUsed = false;
    const writer = this.writerInstance!;
    if (writer.length > 0) this.emit(writer.finish());
  }
}
