/**
 * Batches what one received chunk turns into for the other side. Messages forwarded unchanged
 * that sit back to back in the chunk leave as one view of it (no copy; an unchanged chunk leaves
 * as itself); rewritten messages are written into one reusable writer and leave as one buffer.
 * Order is kept. The caller wraps `end()` in cork/uncork so the pieces go out in one write.
 */
import { MessageWriter } from './protocol/serializer.ts';

/** Receives the buffers to send, in order. */
export type Emit = (buffer: Buffer) => void;

export class ChunkOutput {
  private chunk: Buffer = Buffer.alloc(0);
  private runStart = -1;
  private runEnd = -1;
  private writerInstance: MessageWriter | null = null;
  private writerUsed = false;

  constructor(private readonly emit: Emit) {}

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

  /** Sends bytes built elsewhere, in order. */
  send(buffer: Buffer): void {
    this.flushRun();
    if (this.writerUsed) this.flushWriter();
    this.emit(buffer);
  }

  /** Emits whatever is pending; call once the chunk is consumed. */
  end(): void {
    this.flushRun();
    if (this.writerUsed) this.flushWriter();
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
