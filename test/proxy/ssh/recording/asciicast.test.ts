import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Asciicast } from '../../../../proxy/ssh/recording/asciicast.ts';
import { schedulePlayback } from '../../../../proxy/ssh/recording/asciicast-player.ts';
import { parseAsciicast } from '../../../../proxy/ssh/recording/asciicast-reader.ts';
import { AsciicastWriter } from '../../../../proxy/ssh/recording/asciicast-writer.ts';
import { isRecordingError, type RecordingErrorCode } from '../../../../proxy/ssh/recording/errors.ts';

const START = Date.UTC(2030, 0, 1);
const newWriter = () =>
  new AsciicastWriter({ width: 80, height: 24, startedAt: START, title: 'prod-db', env: { TERM: 'xterm' } });
const expectCode = (code: RecordingErrorCode) => (e: unknown) => isRecordingError(e, code);

describe('AsciicastWriter', () => {
  it('writes a header and events that the reader reads back', () => {
    const writer = newWriter();
    const text =
      writer.header() +
      writer.output(Buffer.from('$ '), START + 100) +
      writer.input('ls\r', START + 1_500) +
      writer.resize(120, 40, START + 2_000) +
      writer.marker('blocked: rm -rf /', START + 2_500);
    const cast = parseAsciicast(text);
    assert.deepEqual(cast.header, {
      version: 2,
      width: 80,
      height: 24,
      timestamp: START / 1000,
      env: { TERM: 'xterm' },
      title: 'prod-db',
    });
    assert.deepEqual(cast.events, [
      [0.1, 'o', '$ '],
      [1.5, 'i', 'ls\r'],
      [2, 'r', '120x40'],
      [2.5, 'm', 'blocked: rm -rf /'],
    ]);
  });

  const text = 'héllo € 𝄞 ok';
  const bytes = Buffer.from(text);
  for (let split = 1; split < bytes.length; split++) {
    it(`keeps UTF-8 whole when output is split at byte ${split}`, () => {
      const writer = newWriter();
      const lines = [
        writer.output(bytes.subarray(0, split), START),
        writer.output(bytes.subarray(split), START + 1),
      ];
      const decoded = lines
        .filter((line) => line !== '')
        .map((line) => JSON.parse(line) as [number, string, string])
        .map(([, , data]) => data);
      assert.equal(decoded.join(''), text);
      assert.ok(decoded.every((part) => !part.includes('\ufffd')));
    });
  }

  it('holds an incomplete character back and flushes it as U+FFFD at the end', () => {
    const writer = newWriter();
    assert.equal(writer.output(Buffer.from([0xe2, 0x82]), START), '');
    assert.deepEqual(JSON.parse(writer.end(START + 10)), [0.01, 'o', '\ufffd']);
  });

  it('writes plain ASCII chunks byte for byte as decoding and escaping every chunk would (random)', () => {
    // Reference: a streaming decoder and JSON.stringify for every chunk, the writer's general path.
    const alphabet = ['a', 'Z', ' ', '~', '"', '\\', '\n', '\x1b', 'é', '€', '😀', '\u00ff'];
    let seed = 7;
    const random = (n: number) => {
      seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 1;
      return seed % n;
    };
    for (let round = 0; round < 300; round++) {
      // Chunks are either plain ASCII or any slice of UTF-8 text (which may cut a character).
      const chunks: Buffer[] = [];
      for (let n = 1 + random(5); n > 0; n--) {
        let text = '';
        const plain = random(2) === 0;
        for (let i = random(12); i > 0; i--)
          text += plain ? 'abc XYZ~!{}'[random(11)] : alphabet[random(alphabet.length)];
        const bytes = Buffer.from(text);
        const from = random(bytes.length + 1);
        chunks.push(plain ? bytes : bytes.subarray(from, from + random(bytes.length - from + 1)));
      }
      const writer = newWriter();
      const decoder = new TextDecoder();
      let got = '';
      let expected = '';
      let at = START;
      for (const chunk of chunks) {
        at += 10;
        got += writer.output(chunk, at);
        const decoded = decoder.decode(chunk, { stream: true });
        if (decoded) expected += `${JSON.stringify([(at - START) / 1000, 'o', decoded])}\n`;
      }
      got += writer.end(at);
      const rest = decoder.decode();
      if (rest) expected += `${JSON.stringify([(at - START) / 1000, 'o', rest])}\n`;
      assert.equal(got, expected, JSON.stringify(chunks.map((c) => c.toString('hex'))));
    }
  });

  it('escapes control characters and never goes back in time', () => {
    const writer = newWriter();
    const first = writer.output('\x1b[31m"red"\n', START + 500);
    const second = writer.output('x', START + 100);
    assert.deepEqual(JSON.parse(first), [0.5, 'o', '\x1b[31m"red"\n']);
    assert.deepEqual(JSON.parse(second), [0.5, 'o', 'x']);
  });

  for (const [width, height] of [
    [0, 24],
    [80, -1],
    [1.5, 24],
    [80, 100_000],
  ] as const) {
    it(`refuses a ${width}x${height} terminal (ERR_RECORDING_INPUT)`, () => {
      assert.throws(
        () => new AsciicastWriter({ width, height, startedAt: START }),
        expectCode('ERR_RECORDING_INPUT'),
      );
      assert.throws(() => newWriter().resize(width, height, START), expectCode('ERR_RECORDING_INPUT'));
    });
  }
});

describe('parseAsciicast', () => {
  const header = '{"version":2,"width":80,"height":24}';
  it('accepts CRLF, blank lines and no final newline', () => {
    const cast = parseAsciicast(`${header}\r\n\n[0.5,"o","a"]\r\n[1,"o","b"]`);
    assert.equal(cast.events.length, 2);
  });

  const bad: [string, string, RecordingErrorCode, number][] = [
    ['an empty file', '', 'ERR_RECORDING_HEADER', 1],
    ['a header that is not JSON', '{version:2}', 'ERR_RECORDING_HEADER', 1],
    ['version 1', '{"version":1,"width":80,"height":24}', 'ERR_RECORDING_HEADER', 1],
    ['a header without size', '{"version":2}', 'ERR_RECORDING_HEADER', 1],
    ['a header that is an array', '[2,80,24]', 'ERR_RECORDING_HEADER', 1],
    [
      'a non-string env value',
      '{"version":2,"width":80,"height":24,"env":{"A":1}}',
      'ERR_RECORDING_HEADER',
      1,
    ],
    ['an event that is not JSON', `${header}\n[0.1,"o","a"\n`, 'ERR_RECORDING_EVENT', 2],
    ['an event with two fields', `${header}\n[0.1,"o"]`, 'ERR_RECORDING_EVENT', 2],
    ['an unknown event type', `${header}\n[0.1,"x","a"]`, 'ERR_RECORDING_EVENT', 2],
    ['a negative time', `${header}\n[-1,"o","a"]`, 'ERR_RECORDING_EVENT', 2],
    ['a string time', `${header}\n["1","o","a"]`, 'ERR_RECORDING_EVENT', 2],
    ['non-string data', `${header}\n[1,"o",5]`, 'ERR_RECORDING_EVENT', 2],
    ['bad resize data', `${header}\n[1,"r","wide"]`, 'ERR_RECORDING_EVENT', 2],
    ['time going backwards', `${header}\n[2,"o","a"]\n[1,"o","b"]`, 'ERR_RECORDING_TIME', 3],
    ['an over-long line', `${header}\n[1,"o","${'a'.repeat(200)}"]`, 'ERR_RECORDING_LINE_TOO_LONG', 2],
  ];
  for (const [name, text, code, line] of bad) {
    it(`refuses ${name} (${code}, line ${line})`, () => {
      assert.throws(
        () => parseAsciicast(text, { maxLineLength: 100 }),
        (e: unknown) => isRecordingError(e, code) && e.details.line === line,
      );
    });
  }

  it('refuses more events than allowed', () => {
    assert.throws(
      () => parseAsciicast(`${header}\n[1,"o","a"]\n[2,"o","b"]`, { maxEvents: 1 }),
      expectCode('ERR_RECORDING_EVENT'),
    );
  });
});

describe('schedulePlayback', () => {
  const cast: Asciicast = parseAsciicast(
    [
      '{"version":2,"width":80,"height":24}',
      '[0.5,"o","a"]',
      '[1,"i","typed"]',
      '[1.5,"o","b"]',
      '[61.5,"o","c"]',
      '[62,"r","100x30"]',
      '[62,"m","mark"]',
    ].join('\n'),
  );
  const table: [string, Parameters<typeof schedulePlayback>[1], [number, string][]][] = [
    [
      'real time',
      {},
      [
        [500, 'a'],
        [1000, 'b'],
        [60000, 'c'],
      ],
    ],
    [
      'double speed',
      { speed: 2 },
      [
        [250, 'a'],
        [500, 'b'],
        [30000, 'c'],
      ],
    ],
    [
      'idle capped at 2 s',
      { idleTimeLimit: 2 },
      [
        [500, 'a'],
        [1000, 'b'],
        [2000, 'c'],
      ],
    ],
    [
      'capped and fast',
      { idleTimeLimit: 2, speed: 4 },
      [
        [125, 'a'],
        [250, 'b'],
        [500, 'c'],
      ],
    ],
  ];
  for (const [name, options, expected] of table) {
    it(`schedules ${name}`, () => {
      assert.deepEqual(
        schedulePlayback(cast, options).map((step) => [step.delay, step.data]),
        expected,
      );
    });
  }

  it("uses the header's idle_time_limit and can include resizes", () => {
    const steps = schedulePlayback(
      { ...cast, header: { ...cast.header, idle_time_limit: 1 } },
      { includeResize: true },
    );
    assert.deepEqual(steps.at(-2)!.delay, 1000);
    assert.deepEqual(steps.at(-1), { delay: 500, data: '', resize: [100, 30] });
  });

  for (const options of [{ speed: 0 }, { speed: -1 }, { speed: Number.NaN }, { idleTimeLimit: 0 }]) {
    it(`refuses ${JSON.stringify(options)} (ERR_RECORDING_PLAYBACK)`, () => {
      assert.throws(() => schedulePlayback(cast, options), expectCode('ERR_RECORDING_PLAYBACK'));
    });
  }
});
