/** The session recorder: batches, bounded queue with backpressure, sink failures. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SessionEventRecord, SessionRecord } from '../../../broker/ports/proxy.ts';
import { SessionRecorder, type TimelineSink } from '../../../proxy/pg/recorder.ts';

const SESSION: SessionRecord = {
  id: 's_1',
  protocol: 'postgres',
  grantId: 'r1',
  requester: 'carol',
  target: 'db',
  level: 'read',
  login: 'warden_carol_r1',
  clientAddress: '127.0.0.1:1',
  startedAt: 0,
  endedAt: null,
  endReason: null,
  summary: {},
};

/** A sink whose writes wait until released, to hold the queue full. */
class SlowSink implements TimelineSink {
  readonly batches: SessionEventRecord[][] = [];
  ended: { endReason: string } | undefined;
  private gate: Promise<void> = Promise.resolve();
  private open: () => void = () => {};
  fail = false;
  hold(): void {
    this.gate = new Promise((resolve) => {
      this.open = resolve;
    });
  }
  release(): void {
    this.open();
  }
  async insertSession(): Promise<void> {}
  async appendSessionEvents(events: readonly SessionEventRecord[]): Promise<void> {
    await this.gate;
    if (this.fail) throw new Error('store down');
    this.batches.push([...events]);
  }
  async endSession(_id: string, end: { endReason: string }): Promise<void> {
    this.ended = end;
  }
}

describe('SessionRecorder', () => {
  it('writes full batches, the rest at the end, in order', async () => {
    const sink = new SlowSink();
    const recorder = new SessionRecorder(sink, SESSION, { batchSize: 3, flushDelayMs: 10_000 });
    for (let i = 0; i < 7; i++) recorder.record('statement', { i });
    await recorder.end('client terminated', { statements: 7 });
    assert.deepEqual(
      sink.batches.map((b) => b.map((e) => e.seq)),
      [[1, 2, 3], [4, 5, 6], [7]],
    );
    assert.equal(sink.ended?.endReason, 'client terminated');
  });

  it('reports full at its limit and calls back once drained (no unbounded queue)', async () => {
    const sink = new SlowSink();
    sink.hold();
    const recorder = new SessionRecorder(sink, SESSION, { batchSize: 2, maxQueued: 6, flushDelayMs: 10_000 });
    for (let i = 0; i < 8; i++) recorder.record('statement', { i });
    assert.equal(recorder.full, true);
    let drained = false;
    recorder.whenDrained(() => {
      drained = true;
    });
    assert.equal(drained, false);
    sink.release();
    await recorder.end('done', {});
    assert.equal(drained, true);
    assert.equal(sink.batches.flat().length, 8);
  });

  it('counts events lost when the sink fails and still ends the session', async () => {
    const sink = new SlowSink();
    sink.fail = true;
    const errors: unknown[] = [];
    const recorder = new SessionRecorder(sink, SESSION, { batchSize: 2, onError: (e) => errors.push(e) });
    recorder.record('statement', {});
    recorder.record('statement', {});
    await recorder.end('done', {});
    assert.equal(recorder.failed, 2);
    assert.equal(errors.length, 1);
    assert.equal(sink.ended?.endReason, 'done');
  });
});
