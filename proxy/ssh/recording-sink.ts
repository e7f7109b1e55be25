/**
 * Writes one channel's recording to the store while the session runs, in pieces: pieces are
 * written once enough bytes are held (or a little while after the last one), one write at a time,
 * each off the data path and after a turn of the event loop. So no single store write holds the
 * proxy's event loop for long, however big the recording, and a session that ends has only its
 * last piece left to write. When the store falls behind, {@link RecordingSink.full}
 * tells the session to stop reading output until {@link RecordingSink.onceDrained}: memory stays
 * bounded, and no output reaches the client unrecorded.
 */
import type { ChannelRecorder } from './channel-recorder.ts';
import { SshProxyError } from './errors.ts';

/** Options of {@link RecordingSink}. */
export interface RecordingSinkOptions {
  recorder: ChannelRecorder;
  /** Stores piece `seq` (0, 1, …) of the recording (the sink never changes its bytes). */
  write(seq: number, piece: Uint8Array): Promise<void>;
  /**
   * Told about each failed or timed-out write; that piece is lost (a timed-out one may still land),
   * the session and later pieces go on.
   */
  onError(error: unknown): void;
  /** Bytes held before pieces are written at once. Default 64 KiB. */
  pieceBytes?: number;
  /** Bytes held from which the sink is {@link RecordingSink.full}. Default 1 MiB. */
  highWaterBytes?: number;
  /** Longest time (ms) fewer than `pieceBytes` wait before they are written. Default 1 000. */
  flushIntervalMs?: number;
  /**
   * Longest time (ms) one write may take before it counts as failed and the sink goes on (a store
   * that hangs would otherwise hold the session's output forever). Default 30 000.
   */
  writeTimeoutMs?: number;
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** The store side of a {@link ChannelRecorder}. */
export class RecordingSink {
  readonly #recorder: ChannelRecorder;
  readonly #o: RecordingSinkOptions;
  readonly #pieceBytes: number;
  readonly #highWater: number;
  #seq = 0;
  #failed = 0;
  #pumping: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #ending = false;
  #drained: (() => void)[] = [];

  constructor(options: RecordingSinkOptions) {
    this.#o = options;
    this.#recorder = options.recorder;
    this.#pieceBytes = options.pieceBytes ?? 64 * 1024;
    this.#highWater = options.highWaterBytes ?? 1024 * 1024;
  }

  /** Whether the session should stop reading output until {@link onceDrained}. */
  get full(): boolean {
    return this.#recorder.heldBytes >= this.#highWater;
  }

  /** Writes that failed so far. */
  get failedWrites(): number {
    return this.#failed;
  }

  /** Pieces written or tried so far. */
  get pieces(): number {
    return this.#seq;
  }

  /** Calls `listener` once the sink is no longer {@link full} (at once if it is not). */
  onceDrained(listener: () => void): void {
    if (!this.full) listener();
    else this.#drained.push(listener);
  }

  /** Call after the recorder got bytes: schedules the next piece. Cheap: it runs per keystroke. */
  noteHeld(): void {
    if (this.#pumping || this.#ending) return;
    if (this.#recorder.heldBytes >= this.#pieceBytes) this.#pump();
    else this.#arm();
  }

  /**
   * Ends the recording at `at` and writes what is still held, in pieces. Resolves once every piece
   * was written or failed (never rejects). Call once.
   */
  async finish(at: number): Promise<void> {
    this.#ending = true;
    clearTimeout(this.#timer);
    await this.#pumping;
    this.#recorder.finish(at);
    await this.#writeHeld();
    this.#release();
  }

  #arm(): void {
    if (this.#timer || !this.#recorder.hasHeld) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (!this.#pumping && !this.#ending) this.#pump();
    }, this.#o.flushIntervalMs ?? 1_000);
    this.#timer.unref();
  }

  #pump(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#pumping = this.#writeHeld(this.#pieceBytes).then(() => {
      this.#pumping = undefined;
      if (!this.#ending) this.#arm();
    });
  }

  /** Writes pieces while at least `minBytes` are held (while anything is held by default). */
  async #writeHeld(minBytes = 0): Promise<void> {
    let first = true;
    while (first || this.#recorder.heldBytes >= minBytes) {
      first = false;
      // A turn of the event loop first: sockets are served between two pieces.
      await nextTurn();
      const piece = this.#recorder.take();
      if (!piece) return;
      await this.#writeOne(piece);
      this.#release();
    }
  }

  async #writeOne(piece: Uint8Array): Promise<void> {
    const seq = this.#seq++;
    const timeoutMs = this.#o.writeTimeoutMs ?? 30_000;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new SshProxyError(
              'ERR_SSH_PROXY_RECORDING_TIMEOUT',
              `recording piece ${seq} not stored within ${timeoutMs} ms`,
              { details: { seq } },
            ),
          ),
        timeoutMs,
      );
    });
    try {
      await Promise.race([this.#o.write(seq, piece), timedOut]);
    } catch (error) {
      this.#failed++;
      this.#o.onError(error);
    } finally {
      clearTimeout(timer);
    }
  }

  #release(): void {
    if (this.full && !this.#ending) return;
    for (const listener of this.#drained.splice(0)) listener();
  }
}
