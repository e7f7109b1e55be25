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
