import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseAsciicast } from '../../../../proxy/ssh/recording/asciicast-reader.ts';
import { AsciicastWriter } from '../../../../proxy/ssh/recording/asciicast-writer.ts';
import { isRecordingError } from '../../../../proxy/ssh/recording/errors.ts';
import {
  encodeFrame,
  encodeHeaderFrame,
  encodeResizeFrame,
  FrameType,
  renderAsciicast,
} from '../../../../proxy/ssh/recording/frames.ts';

const START = Date.UTC(2030, 0, 1);
const HEADER = { width: 80, height: 24, title: 'alice deploy@web-1', env: { TERM: 'xterm' } };

/** A session as frames, and the text the asciicast writer makes of the same events directly. */
function sample(): { frames: Buffer[]; text: string } {
  const writer = new AsciicastWriter({ ...HEADER, startedAt: START });
  const euro = Buffer.from('€');
  const events: [FrameType, number, Buffer][] = [
    [FrameType.Output, START + 10, Buffer.from('$ ')],
    [FrameType.Input, START + 500, Buffer.from('ls\r')],
    [
      FrameType.Output,
      START + 510,
      Buffer.concat([Buffer.from('a.txt "b" \\ \x1b[0m\r\n'), euro.subarray(0, 2)]),
    ],
    [FrameType.Output, START + 520, Buffer.concat([euro.subarray(2), Buffer.from([0xff, 0x00])])],
    [FrameType.Marker, START + 600, Buffer.from('blocked: rm -rf /')],
  ];
  const frames = [encodeHeaderFrame(HEADER, START)];
  let text = writer.header();
  for (const [type, at, payload] of events) {
    frames.push(encodeFrame(type, at, payload));
    if (type === FrameType.Output) text += writer.output(payload, at);
    else if (type === FrameType.Input) text += writer.input(payload, at);
    else text += writer.marker(payload.toString(), at);
  }
  frames.push(encodeResizeFrame(120, 40, START + 700));
  text += writer.resize(120, 40, START + 700);
  frames.push(encodeFrame(FrameType.End, START + 800));
  text += writer.end(START + 800);
  return { frames, text };
}

describe('recording frames', () => {
  it('render as the text the asciicast writer makes of the same events, however they are cut into pieces', () => {
    const { frames, text } = sample();
    assert.equal(renderAsciicast([Buffer.concat(frames)]), text);
    assert.equal(renderAsciicast(frames), text);
    assert.equal(renderAsciicast([Buffer.concat(frames.slice(0, 3)), Buffer.concat(frames.slice(3))]), text);
    const cast = parseAsciicast(text);
    assert.deepEqual(cast.header.env, HEADER.env);
    assert.equal(cast.events.filter((e) => e[1] === 'o').at(-1)![2], '€\ufffd\u0000');
  });

  it('a recording cut short (no end frame: the proxy stopped) renders up to its last frame', () => {
    const { frames } = sample();
    const cast = parseAsciicast(renderAsciicast(frames.slice(0, 4)));
    // The last frame's cut character comes out as U+FFFD at the end, as the writer's end() does.
    assert.deepEqual(
      cast.events.map((e) => [e[0], e[1]]),
      [
        [0.01, 'o'],
        [0.5, 'i'],
        [0.51, 'o'],
        [0.51, 'o'],
      ],
    );
    assert.equal(cast.events[3]![2], '\ufffd');
  });

  const damaged: [string, Buffer[]][] = [
    ['no pieces', []],
    ['an empty piece only', [Buffer.alloc(0)]],
    ['output before the header', [encodeFrame(FrameType.Output, START, Buffer.from('x'))]],
    ['a header that is not JSON', [encodeFrame(FrameType.Header, START, Buffer.from('{width'))]],
    ['a header without a size', [encodeFrame(FrameType.Header, START, Buffer.from('{"title":"t"}'))]],
    ['a header with a size out of range', [encodeHeaderFrame({ width: 0, height: 24 }, START)]],
    [
      'a header with a bad env',
      [encodeFrame(FrameType.Header, START, Buffer.from('{"width":1,"height":1,"env":{"a":1}}'))],
    ],
    ['a header time that is not a number', [encodeHeaderFrame(HEADER, Number.NaN)]],
    ['an unknown frame type', [encodeHeaderFrame(HEADER, START), encodeFrame(0x7a as FrameType, START)]],
    [
      'a resize of 3 bytes',
      [encodeHeaderFrame(HEADER, START), encodeFrame(FrameType.Resize, START, Buffer.alloc(3))],
    ],
    ['a resize to 0 columns', [encodeHeaderFrame(HEADER, START), encodeResizeFrame(0, 10, START)]],
    [
      'frames after the end',
      [
        encodeHeaderFrame(HEADER, START),
        encodeFrame(FrameType.End, START),
        encodeFrame(FrameType.End, START),
      ],
    ],
    [
      'an output time that is not a number',
      [
        encodeHeaderFrame(HEADER, START),
        encodeFrame(FrameType.Output, Number.POSITIVE_INFINITY, Buffer.from('x')),
      ],
    ],
  ];
  for (const [name, pieces] of damaged) {
    it(`refuses a damaged recording: ${name}`, () => {
      assert.throws(
        () => renderAsciicast(pieces),
        (error) => isRecordingError(error, 'ERR_RECORDING_FRAME'),
      );
    });
  }

  it('a length that passes the end of its piece is refused, never read into the next piece', () => {
    const header = encodeHeaderFrame(HEADER, START);
    const frame = encodeFrame(FrameType.Output, START, Buffer.from('abcdef'));
    frame.writeUInt32LE(0xffffffff, 9);
    assert.throws(
      () => renderAsciicast([header, frame, Buffer.alloc(64)]),
      (error) => isRecordingError(error, 'ERR_RECORDING_FRAME') && /passes the end/.test(error.message),
    );
  });

  it('every cut of a stored recording renders or is refused with ERR_RECORDING_FRAME, nothing else', () => {
    const whole = Buffer.concat(sample().frames);
    for (let cut = 0; cut <= whole.length; cut++) {
      for (const pieces of [[whole.subarray(0, cut)], [whole.subarray(0, cut), whole.subarray(cut + 1)]]) {
        try {
          parseAsciicast(renderAsciicast(pieces));
        } catch (error) {
          assert.ok(isRecordingError(error, 'ERR_RECORDING_FRAME'), `cut at ${cut}: ${error}`);
        }
      }
    }
  });
});
