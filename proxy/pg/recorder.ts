/**
 * Asynchronous session recording with a bounded queue. Sessions push timeline events without
 * waiting; a single writer flushes them in batches to the sink (the broker's store). When the
 * queue is full the session is told to pause its client (backpressure) rather than grow the heap
 * or drop the trace.
 */
import type { SessionEventRecord, SessionRecord, SessionSink } from '../../broker/ports/proxy.ts';

/** The part of the broker's session sink a timeline is written to. */
export type TimelineSink = Pick<SessionSink, 'insertSession' | 'appendSessionEvents' | 'endSession'>;

/** Limits of a {@link SessionRecorder}. */
export interface RecorderOptions {
  /** Events queued before `full` turns true. Default 20,000. */
  maxQueued?: number;
  /** Events written per batch (one stored chunk). Default 2,000. */
  batchSize?: number;
  /** Longest wait before queued events are written, in ms. Default 200. */
  flushDelayMs?: number;
  /** Called when a write fails (the events are dropped: the store is down). */
  onError?: (error: unknown) => void;
}

const DEFAULTS = { maxQueued: 20_000, batchSize: 2_000, flushDelayMs: 200 } as const;

/** Records one session. */
export class SessionRecorder {
  private readonly queue: SessionEventRecord[] = [];
  private readonly sink: TimelineSink;
  private readonly options: Required<Omit<RecorderOptions, 'onError'>>;
  private readonly onError: (error: unknown) => void;
  private seq = 0;
  private started: Promise<void>;
  private writing: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private drainWaiters: (() => void)[] = [];
  /** Events lost because the sink failed. */
  failed = 0;

  constructor(
    sink: TimelineSink,
    readonly session: SessionRecord,
    options: RecorderOptions = {},
  ) {
    this.sink = sink;
    this.options = { ...DEFAULTS, ...options };
    this.onError = options.onError ?? (() => {});
    this.started = sink.insertSession(session).catch((error) => this.onError(error));
  }

  /** True when the session should stop reading its client until {@link whenDrained}. */
  get full(): boolean {
    return this.queue.length >= this.options.maxQueued;
  }

  /** Queues one event (already masked). */
  record(kind: string, data: Record<string, unknown>, at = Date.now()): void {
    this.queue.push({ sessionId: this.session.id, seq: ++this.seq, at, kind, data });
    if (this.queue.length >= this.options.batchSize) this.flushSoon(0);
    else this.flushSoon(this.options.flushDelayMs);
  }

  /** Calls `callback` once the queue is below half its limit. */
  whenDrained(callback: () => void): void {
    if (this.queue.length < this.options.maxQueued / 2) callback();
    else this.drainWaiters.push(callback);
  }

  /** Writes what is queued and the session's end. */
  async end(endReason: string, summary: Record<string, unknown>, endedAt = Date.now()): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.ending = true;
    await this.flush();
    await this.started;
    try {
      await this.sink.endSession(this.session.id, { endedAt, endReason, summary });
    } catch (error) {
      this.onError(error);
    }
  }

  private flushSoon(delay: number): void {
    if (this.timer || this.writing) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.flush();
    }, delay);
    this.timer.unref();
  }

  private async flush(): Promise<void> {
    while (this.writing) await this.writing;
    if (this.queue.length === 0) return;
    const batch = this.queue.splice(0, this.options.batchSize);
    this.writing = (async () => {
      await this.started;
      try {
        await this.sink.appendSessionEvents(batch);
      } catch (error) {
        this.failed += batch.length;
        this.onError(error);
      }
    })();
    await this.writing;
    this.writing = null;
    if (this.queue.length < this.options.maxQueued / 2 && this.drainWaiters.length > 0) {
      const waiters = this.drainWaiters;
      this.drainWaiters = [];
      for (const waiter of waiters) waiter();
    }
    // Only a full batch is written at once; a few stragglers wait for the timer (or the end).
    if (this.queue.length >= this.options.batchSize || (this.ending && this.queue.length > 0))
      await this.flush();
    else if (this.queue.length > 0) this.flushSoon(this.options.flushDelayMs);
  }

  private ending = false;
}
