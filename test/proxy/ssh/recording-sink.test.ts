import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ChannelRecorder, PIECE_BYTES } from '../../../proxy/ssh/channel-recorder.ts';
import { isSshProxyError } from '../../../proxy/ssh/errors.ts';
import { parseAsciicast } from '../../../proxy/ssh/recording/asciicast-reader.ts';
import { renderAsciicast } from '../../../proxy/ssh/recording/frames.ts';
import { RecordingSink, type RecordingSinkOptions } from '../../../proxy/ssh/recording-sink.ts';

const START = Date.UTC(2030, 0, 1);

const newRecorder = (maxBytes = 64 * 1024 * 1024) =>
  new ChannelRecorder({ width: 80, height: 24, startedAt: START, title: 't', recordInput: true, maxBytes });

/** A store that keeps the pieces; a write waits for `gate` when one is set. */
function fakeStore() {
  const pieces: { seq: number; bytes: Buffer }[] = [];
  const errors: unknown[] = [];
  const store = {
    pieces,
    errors,
    gate: undefined as Promise<void> | undefined,
    fail: new Set<number>(),
    write: async (seq: number, piece: Uint8Array) => {
      await store.gate;
      if (store.fail.has(seq)) throw new Error(`store down at ${seq}`);
      // A copy, as a database keeps it.
      pieces.push({ seq, bytes: Buffer.from(piece) });
    },
    text: () => renderAsciicast(pieces.map((p) => p.bytes)),
  };
  return store;
}

function newSink(
  recorder: ChannelRecorder,
  store: ReturnType<typeof fakeStore>,
  options: Partial<RecordingSinkOptions> = {},
) {
  return new RecordingSink({
    recorder,
    write: store.write,
    onError: (error) => store.errors.push(error),
    ...options,
  });
}

const outputOf = (text: string) =>
  parseAsciicast(text)
    .events.filter((e) => e[1] === 'o')
    .map((e) => e[2])
    .join('');

describe('RecordingSink', () => {
  for (const [name, byte, total, chunk] of [
    ['keystroke echoes', 0x61, 2_000, 1],
    ['a bulk transfer of text', 0x61, 3 * 1024 * 1024, 32 * 1024],
    ['control bytes', 0x01, 1024 * 1024, 16 * 1024],
  ] as const) {
    it(`stores ${name} in bounded pieces that join into the whole recording`, async () => {
      const recorder = newRecorder();
      const store = fakeStore();
      const sink = newSink(recorder, store);
      for (let sent = 0, i = 0; sent < total; sent += chunk, i++) {
        recorder.output(Buffer.alloc(chunk, byte), START + i);
        sink.noteHeld();
        // Let the sink's turns run now and then, as the event loop does between socket reads.
        if (i % 64 === 0) await new Promise((resolve) => setImmediate(resolve));
      }
      await sink.finish(START + 60_000);
      assert.deepEqual(
        store.pieces.map((p) => p.seq),
        store.pieces.map((_, i) => i),
      );
      for (const piece of store.pieces) assert.ok(piece.bytes.length <= PIECE_BYTES, `${piece.bytes.length}`);
      if (total > 1024 * 1024) assert.ok(store.pieces.length > 10, `${store.pieces.length} pieces`);
      assert.equal(outputOf(store.text()), String.fromCharCode(byte).repeat(total));
      assert.equal(recorder.heldBytes, 0);
    });
  }

  it('writes what is held after the flush interval, while the session still runs', async () => {
    const recorder = newRecorder();
    const store = fakeStore();
    const sink = newSink(recorder, store, { flushIntervalMs: 5 });
    recorder.input(Buffer.from('l'), START);
    recorder.output(Buffer.from('l'), START + 1);
    sink.noteHeld();
    while (store.pieces.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    assert.equal(outputOf(store.text()), 'l');
    await sink.finish(START + 2);
    assert.equal(parseAsciicast(store.text()).events.length, 2);
  });

  it('a slow store makes the sink full; a caller that waits keeps memory bounded and loses nothing', async () => {
    const recorder = newRecorder();
    const store = fakeStore();
    const highWaterBytes = 256 * 1024;
    const chunk = 16 * 1024;
    const sink = newSink(recorder, store, { highWaterBytes });
    let release: () => void = () => {};
    let maxHeld = 0;
    let waits = 0;
    for (let i = 0; i < 256; i++) {
      if (i % 32 === 0) store.gate = new Promise((resolve) => (release = resolve));
      recorder.output(Buffer.alloc(chunk, 0x62), START + i * 10);
      sink.noteHeld();
      maxHeld = Math.max(maxHeld, recorder.heldBytes);
      if (sink.full) {
        waits++;
        const drained = new Promise<void>((resolve) => sink.onceDrained(resolve));
        release();
        await drained;
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
    release();
    store.gate = undefined;
    await sink.finish(START + 10_000);
    assert.ok(waits > 0, 'the sink never asked the caller to wait');
    assert.ok(maxHeld <= highWaterBytes + chunk, `held ${maxHeld} bytes`);
    assert.equal(outputOf(store.text()), 'b'.repeat(256 * chunk));
  });

  it('a failed write is reported and counted; later pieces and the end are still written', async () => {
    const recorder = newRecorder();
    const store = fakeStore();
    store.fail.add(1);
    const sink = newSink(recorder, store, { pieceBytes: 1024 });
    for (let i = 0; i < 4; i++) {
      recorder.output(Buffer.alloc(40 * 1024, 0x63), START + i * 100);
      sink.noteHeld();
      await new Promise((resolve) => setImmediate(resolve));
    }
    await sink.finish(START + 1_000);
    assert.equal(sink.failedWrites, 1);
    assert.match(String(store.errors[0]), /store down at 1/);
    assert.ok(store.pieces.some((p) => p.seq > 1));
    assert.equal(store.pieces[0]!.seq, 0);
    // Pieces are whole frames: what is left still renders, without the lost piece's output.
    const output = outputOf(store.text());
    assert.ok(output.length > 0 && output.length < 4 * 40 * 1024, `${output.length} bytes of output`);
  });

  it('a write that never returns counts as failed after the timeout; the sink and the session go on', async () => {
    const recorder = newRecorder();
    const pieces: number[] = [];
    const errors: unknown[] = [];
    const sink = new RecordingSink({
      recorder,
      // Piece 1 hangs forever, as a store whose connection stalled.
      write: async (seq) => {
        if (seq === 1) await new Promise<void>(() => {});
        pieces.push(seq);
      },
      onError: (error) => errors.push(error),
      pieceBytes: 1024,
      writeTimeoutMs: 20,
    });
    for (let i = 0; i < 4; i++) {
      recorder.output(Buffer.alloc(40 * 1024, 0x64), START + i * 100);
      sink.noteHeld();
      await new Promise((resolve) => setImmediate(resolve));
    }
    await sink.finish(START + 1_000);
    assert.equal(sink.failedWrites, 1);
    assert.ok(isSshProxyError(errors[0], 'ERR_SSH_PROXY_RECORDING_TIMEOUT'), String(errors[0]));
    assert.deepEqual(pieces, [0, ...Array.from({ length: sink.pieces - 2 }, (_, i) => i + 2)]);
    assert.equal(sink.full, false);
  });
});
