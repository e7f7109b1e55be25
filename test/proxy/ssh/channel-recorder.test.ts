import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ChannelRecorder, COALESCE_MS, PIECE_BYTES } from '../../../proxy/ssh/channel-recorder.ts';
import type { AsciicastEvent } from '../../../proxy/ssh/recording/asciicast.ts';
import { parseAsciicast } from '../../../proxy/ssh/recording/asciicast-reader.ts';
import { isRecordingError } from '../../../proxy/ssh/recording/errors.ts';
import { renderAsciicast } from '../../../proxy/ssh/recording/frames.ts';

const START = Date.UTC(2030, 0, 1);
const newRecorder = (options: { maxBytes?: number; recordInput?: boolean; width?: number } = {}) =>
  new ChannelRecorder({
    width: options.width ?? 80,
    height: 24,
    startedAt: START,
    title: 't',
    recordInput: options.recordInput ?? true,
    maxBytes: options.maxBytes ?? 1024 * 1024,
  });
/** The pieces still held, oldest first. */
function takeAll(recorder: ChannelRecorder): Buffer[] {
  const pieces: Buffer[] = [];
  for (let piece = recorder.take(); piece; piece = recorder.take()) pieces.push(piece);
  return pieces;
}
/** Ends the recording at `at` and renders all it holds. */
const finishText = (recorder: ChannelRecorder, at: number) => {
  recorder.finish(at);
  return renderAsciicast(takeAll(recorder));
};
const events = (recorder: ChannelRecorder) => parseAsciicast(finishText(recorder, START + 60_000)).events;
const sizeOf = (pieces: readonly Buffer[]) => pieces.reduce((n, p) => n + p.length, 0);

describe('ChannelRecorder', () => {
  it('joins output chunks that follow within the coalescing window, splits later ones', () => {
    const recorder = newRecorder();
    recorder.output(Buffer.from('ab'), START);
    recorder.output(Buffer.from('cd'), START + COALESCE_MS);
    recorder.output(Buffer.from('ef'), START + COALESCE_MS + 1);
    recorder.input(Buffer.from('x'), START + 100);
    recorder.output(Buffer.from('gh'), START + 100);
    assert.deepEqual(events(recorder), [
      [0, 'o', 'abcd'],
      [0.006, 'o', 'ef'],
      [0.1, 'i', 'x'],
      [0.1, 'o', 'gh'],
    ]);
  });

  it('copies the bytes: a caller reusing its buffer does not change the recording', () => {
    const recorder = newRecorder();
    const chunk = Buffer.from('secret');
    recorder.output(chunk, START);
    chunk.fill(0x41);
    assert.deepEqual(events(recorder), [[0, 'o', 'secret']]);
  });

  it('a UTF-8 character split across chunks is whole in the recording', () => {
    const recorder = newRecorder();
    const euro = Buffer.from('€');
    recorder.output(euro.subarray(0, 1), START);
    recorder.output(euro.subarray(1), START + 1_000);
    assert.equal(
      events(recorder)
        .map((e) => e[2])
        .join(''),
      '€',
    );
  });

  it('leaves out input typed after a password prompt, until Enter', () => {
    const recorder = newRecorder();
    recorder.output(Buffer.from('[sudo] password for bob: '), START);
    recorder.input(Buffer.from('hunter2\r'), START + 100);
    recorder.input(Buffer.from('ls\r'), START + 200);
    const inputs = events(recorder).filter((e) => e[1] === 'i');
    assert.deepEqual(
      inputs.map((e) => e[2]),
      ['ls\r'],
    );
  });

  it('hides input after prompts split across chunks or followed by spaces, as a regex on all output would', () => {
    const prompt = /(pass(word|phrase)|PIN|token|secret)[^\n]{0,40}:\s*$/i;
    const pieces = [
      'Password',
      'pass',
      'word',
      ':',
      ' ',
      '\xa0',
      '\t',
      '\r\n',
      'x',
      'PIN',
      'token: ',
      'é',
      'a'.repeat(150),
    ];
    let seed = 7;
    let hidden = 0;
    const pick = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return pieces[seed % pieces.length]!;
    };
    for (let run = 0; run < 20; run++) {
      const recorder = newRecorder();
      let all = '';
      let expected = 0;
      for (let i = 0; i < 60; i++) {
        const chunk = Buffer.from(pick() + (i % 9 === 0 ? pick() : ''), 'latin1');
        all += chunk.toString('latin1');
        recorder.output(chunk, START + i * 100);
        if (!prompt.test(all.slice(-200))) expected++;
        else hidden++;
        recorder.input(Buffer.from('z'), START + i * 100 + 50);
      }
      const typed = events(recorder).filter((e) => e[1] === 'i');
      assert.equal(typed.map((e) => e[2]).join('').length, expected, `run ${run}`);
    }
    assert.ok(hidden > 20, `only ${hidden} keystrokes followed a prompt`);
  });

  it('truncates at the limit on stored bytes, says so, and keeps markers', () => {
    for (const [name, byte] of [
      ['plain text', 0x61],
      ['control bytes (JSON escapes them six-fold, the store keeps them as they are)', 0x01],
    ] as const) {
      const recorder = newRecorder({ maxBytes: 4_000 });
      for (let i = 0; i < 100; i++) recorder.output(Buffer.alloc(100, byte), START + i * 10);
      recorder.marker('blocked', START + 5_000);
      assert.ok(recorder.truncated, name);
      recorder.finish(START + 6_000);
      const pieces = takeAll(recorder);
      // The header, the two markers and the end frame are kept past the limit.
      assert.ok(sizeOf(pieces) <= 4_000 + 200, `${name}: ${sizeOf(pieces)} bytes`);
      const cast = parseAsciicast(renderAsciicast(pieces));
      assert.ok(
        cast.events.some((e) => e[1] === 'm' && e[2].includes('truncated')),
        `${name}: no truncation marker`,
      );
      assert.ok(
        cast.events.some((e) => e[1] === 'm' && e[2] === 'blocked'),
        `${name}: marker dropped`,
      );
    }
  });

  it('a start time that is not a number fails at once, not when the recording is replayed', () => {
    assert.throws(
      () =>
        new ChannelRecorder({
          width: 80,
          height: 24,
          startedAt: Number.NaN,
          title: 't',
          recordInput: true,
          maxBytes: 1,
        }),
      (error) => isRecordingError(error, 'ERR_RECORDING_INPUT'),
    );
  });

  it('ignores impossible terminal sizes instead of failing the channel', () => {
    const recorder = newRecorder({ width: 1_000_000 });
    recorder.resize(0, 24, START);
    recorder.resize(50_000, 24, START);
    recorder.resize(100, 30, START + 1);
    const cast = parseAsciicast(finishText(recorder, START + 2));
    assert.equal(cast.header.width, 80);
    assert.deepEqual(cast.events, [[0.001, 'r', '100x30']]);
  });
});

describe('ChannelRecorder.take', () => {
  it('pieces taken during the session, then the rest, render as the same recording as one take at the end', () => {
    /** Feeds a short shell session; takes a piece every fifth line when `during` is true. */
    const record = (during: boolean) => {
      const recorder = newRecorder();
      const pieces: Buffer[] = [];
      for (let i = 0; i < 50; i++) {
        // A two-byte character split across chunks, so across frames (and pieces) too.
        recorder.output(Buffer.from(`line ${i} é\r\n`).subarray(0, 9), START + i * 10);
        recorder.output(Buffer.from(`line ${i} é\r\n`).subarray(9), START + i * 10 + 6);
        if (i % 7 === 0) recorder.input(Buffer.from('k'), START + i * 10 + 1);
        if (i === 20) recorder.resize(100, 30, START + i * 10 + 2);
        if (during && i % 5 === 0) pieces.push(...takeAll(recorder));
      }
      recorder.finish(START + 1_000);
      pieces.push(...takeAll(recorder));
      return pieces;
    };
    const pieces = record(true);
    assert.ok(pieces.length > 5);
    // A take ends the frame it cuts, so output may split into other events: the same bytes, and
    // the same input, resizes and markers at the same times.
    const split = (events: AsciicastEvent[]) => ({
      output: events
        .filter((e) => e[1] === 'o')
        .map((e) => e[2])
        .join(''),
      others: events.filter((e) => e[1] !== 'o'),
    });
    const whole = split(parseAsciicast(renderAsciicast(record(false))).events);
    assert.deepEqual(split(parseAsciicast(renderAsciicast(pieces)).events), whole);
    assert.match(whole.output, /line 3 é\r\n/);
    assert.equal(whole.others.length, 9);
  });

  it('counts held bytes, returns nothing when nothing is held, and never returns a piece past its size', () => {
    const recorder = newRecorder({ maxBytes: 64 * 1024 * 1024 });
    const header = recorder.take()!;
    assert.ok(header.length > 0 && recorder.heldBytes === 0);
    assert.equal(recorder.take(), undefined);
    for (let i = 0; i < 10; i++) recorder.output(Buffer.alloc(1_000, 0x61), START + i * 100);
    const held = recorder.heldBytes;
    assert.ok(held > 10_000 && held < 10_200, `${held} bytes held`);
    assert.equal(sizeOf(takeAll(recorder)), held);
    assert.equal(recorder.heldBytes, 0);
    // A bulk transfer: pieces stay within the bound however the chunks come.
    for (let i = 0; i < 400; i++)
      recorder.output(Buffer.alloc(i % 3 === 0 ? 100_000 : 7_000, 0x62), START + 2_000);
    const pieces = takeAll(recorder);
    assert.ok(pieces.length > 10);
    for (const piece of pieces) assert.ok(piece.length <= PIECE_BYTES, `a piece of ${piece.length} bytes`);
  });

  it('a piece keeps its bytes after the recorder writes more (the store may still hold it)', () => {
    const recorder = newRecorder();
    recorder.output(Buffer.from('first'), START);
    const pieces = takeAll(recorder);
    const copies = pieces.map((p) => Buffer.from(p));
    recorder.output(Buffer.from('second'), START + 1);
    recorder.output(Buffer.from('third'), START + 2);
    assert.deepEqual(pieces, copies);
    recorder.finish(START + 3);
    const text = renderAsciicast([...pieces, ...takeAll(recorder)]);
    assert.equal(
      parseAsciicast(text)
        .events.map((e) => e[2])
        .join(''),
      'firstsecondthird',
    );
  });

  it('the size limit holds across pieces', () => {
    const recorder = newRecorder({ maxBytes: 4_000 });
    const pieces: Buffer[] = [];
    for (let i = 0; i < 100; i++) {
      recorder.output(Buffer.alloc(100, 0x01), START + i * 10);
      pieces.push(...takeAll(recorder));
    }
    recorder.finish(START + 2_000);
    pieces.push(...takeAll(recorder));
    assert.ok(sizeOf(pieces) <= 4_000 + 200, `${sizeOf(pieces)} bytes`);
    assert.ok(
      parseAsciicast(renderAsciicast(pieces)).events.some((e) => e[1] === 'm' && e[2].includes('truncated')),
    );
  });
});
