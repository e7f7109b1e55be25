import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ChannelRecorder, COALESCE_MS } from '../../../proxy/ssh/channel-recorder.ts';
import { parseAsciicast } from '../../../proxy/ssh/recording/asciicast-reader.ts';

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
const events = (recorder: ChannelRecorder) => parseAsciicast(recorder.finish(START + 60_000)).events;

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

  it('truncates at the raw limit, says so, keeps markers and stays under the limit when encoded', () => {
    for (const [name, byte] of [
      ['plain text', 0x61],
      ['control bytes that JSON escapes six-fold', 0x01],
    ] as const) {
      const recorder = newRecorder({ maxBytes: 4_000 });
      for (let i = 0; i < 100; i++) recorder.output(Buffer.alloc(100, byte), START + i * 10);
      recorder.marker('blocked', START + 5_000);
      assert.ok(recorder.truncated || byte === 0x01, name);
      const text = recorder.finish(START + 6_000);
      assert.ok(text.length <= 4_000 + 200, `${name}: ${text.length} bytes`);
      const cast = parseAsciicast(text);
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

  it('ignores impossible terminal sizes instead of failing the channel', () => {
    const recorder = newRecorder({ width: 1_000_000 });
    recorder.resize(0, 24, START);
    recorder.resize(50_000, 24, START);
    recorder.resize(100, 30, START + 1);
    const cast = parseAsciicast(recorder.finish(START + 2));
    assert.equal(cast.header.width, 80);
    assert.deepEqual(cast.events, [[0.001, 'r', '100x30']]);
  });
});

describe('ChannelRecorder.take', () => {
  it('pieces taken during the session, then finish, join into the same recording finish alone makes', () => {
    /** Feeds a short shell session; takes a small piece every fifth line when `pieces` is given. */
    const record = (pieces?: string[]) => {
      const recorder = newRecorder();
      const out: string[] = pieces ?? [];
      for (let i = 0; i < 50; i++) {
        recorder.output(Buffer.from(`line ${i} é\r\n`), START + i * 10);
        if (i % 7 === 0) recorder.input(Buffer.from('k'), START + i * 10 + 1);
        if (i === 20) recorder.resize(100, 30, START + i * 10 + 2);
        if (pieces && i % 5 === 0) out.push(recorder.take(64));
      }
      out.push(recorder.finish(START + 1_000));
      return out;
    };
    const pieces: string[] = [];
    record(pieces);
    assert.ok(pieces.filter(Boolean).length > 5);
    assert.deepEqual(parseAsciicast(pieces.join('')).events, parseAsciicast(record().join('')).events);
  });

  it('stops a piece near the size asked, counts held bytes, and returns nothing when nothing is held', () => {
    const recorder = newRecorder();
    assert.match(recorder.take(), /^\{"version":2/);
    assert.equal(recorder.take(), '');
    for (let i = 0; i < 10; i++) recorder.output(Buffer.alloc(1_000, 0x61), START + i * 100);
    assert.equal(recorder.heldBytes, 10_000);
    const piece = recorder.take(2_500);
    assert.equal(piece.split('\n').length - 1, 3);
    assert.equal(recorder.heldBytes, 7_000);
    recorder.finish(START + 2_000);
    assert.equal(recorder.heldBytes, 0);
  });

  it('the size limit holds across pieces', () => {
    const recorder = newRecorder({ maxBytes: 4_000 });
    const pieces: string[] = [];
    for (let i = 0; i < 100; i++) {
      recorder.output(Buffer.alloc(100, 0x01), START + i * 10);
      pieces.push(recorder.take(300));
    }
    pieces.push(recorder.finish(START + 2_000));
    const text = pieces.join('');
    assert.ok(text.length <= 4_000 + 200, `${text.length} bytes`);
    assert.ok(parseAsciicast(text).events.some((e) => e[1] === 'm' && e[2].includes('truncated')));
  });
});
