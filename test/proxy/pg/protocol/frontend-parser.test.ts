import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ProtocolError, type ProtocolErrorCode } from '../../../../proxy/pg/protocol/errors.ts';
import {
  decodePasswordMessage,
  decodeSaslInitialResponse,
  decodeSaslResponse,
  type FrontendMessage,
  FrontendParser,
  type FrontendParserOptions,
} from '../../../../proxy/pg/protocol/frontend-parser.ts';
import { chunkings, copyChunks } from './split-feed.ts';
import { Bytes, frontend } from './test-buffers.ts';

function parseAll(chunks: Buffer[], options: FrontendParserOptions = { phase: 'normal' }): FrontendMessage[] {
  const parser = new FrontendParser(options);
  const messages: FrontendMessage[] = [];
  for (const chunk of chunks) parser.feed(chunk, (m) => messages.push(m));
  assert.equal(parser.bufferedBytes, 0);
  return messages;
}

/** Drops `raw` (checked separately) and turns Buffers into strings for deep comparison. */
function plain(message: FrontendMessage): Record<string, unknown> {
  return JSON.parse(
    JSON.stringify(message, (key, value) => {
      if (key === 'raw') return undefined;
      if (value instanceof Map) return Object.fromEntries(value);
      if (value && value.type === 'Buffer') return Buffer.from(value.data).toString('latin1');
      return value;
    }),
  );
}

const normalCases: [string, Buffer, Record<string, unknown>][] = [
  ['Query', frontend.query('select 1; -- ü'), { type: 'query', sql: 'select 1; -- ü' }],
  ['empty Query', frontend.query(''), { type: 'query', sql: '' }],
  [
    'Parse',
    frontend.parse('s1', 'select $1::int, $2', [23, 0]),
    { type: 'parse', name: 's1', sql: 'select $1::int, $2', parameterTypes: [23, 0] },
  ],
  [
    'Parse with OID above 2^31',
    frontend.parse('', 'x', [0xfffffff0]),
    { type: 'parse', name: '', sql: 'x', parameterTypes: [0xfffffff0] },
  ],
  [
    'Bind',
    frontend.bind('p1', 's1', [0, 1], ['42', null], [1]),
    {
      type: 'bind',
      portal: 'p1',
      statement: 's1',
      parameterFormats: [0, 1],
      parameters: ['42', null],
      resultFormats: [1],
    },
  ],
  [
    'Bind with one format for all and empty value',
    frontend.bind('', '', [1], ['', 'ab', 'c'], []),
    {
      type: 'bind',
      portal: '',
      statement: '',
      parameterFormats: [1],
      parameters: ['', 'ab', 'c'],
      resultFormats: [],
    },
  ],
  ['Describe statement', frontend.describe('S', 's1'), { type: 'describe', kind: 'statement', name: 's1' }],
  ['Describe portal', frontend.describe('P', ''), { type: 'describe', kind: 'portal', name: '' }],
  ['Execute', frontend.execute('p1', 100), { type: 'execute', portal: 'p1', maxRows: 100 }],
  ['Sync', frontend.sync(), { type: 'sync' }],
  ['Flush', frontend.flush(), { type: 'flush' }],
  ['Close statement', frontend.close('S', 's1'), { type: 'close', kind: 'statement', name: 's1' }],
  ['Close portal', frontend.close('P', 'p'), { type: 'close', kind: 'portal', name: 'p' }],
  ['CopyData', frontend.copyData('1\tabc\n'), { type: 'copyData', data: '1\tabc\n' }],
  ['empty CopyData', frontend.copyData(''), { type: 'copyData', data: '' }],
  ['CopyDone', frontend.copyDone(), { type: 'copyDone' }],
  ['CopyFail', frontend.copyFail('aborted'), { type: 'copyFail', message: 'aborted' }],
  ['PasswordMessage', frontend.password('secret'), { type: 'authResponse', body: 'secret\0' }],
  [
    'SASLInitialResponse',
    frontend.saslInitialResponse('SCRAM-SHA-256', 'n,,n=,r=abc'),
    { type: 'authResponse', body: 'SCRAM-SHA-256\0\0\0\0\x0bn,,n=,r=abc' },
  ],
  ['SASLResponse', frontend.saslResponse('c=biws,r=x,p=y'), { type: 'authResponse', body: 'c=biws,r=x,p=y' }],
  [
    'FunctionCall',
    frontend.functionCall(1598, [0], ['5', null], 1),
    {
      type: 'functionCall',
      functionOid: 1598,
      argumentFormats: [0],
      arguments: ['5', null],
      resultFormat: 1,
    },
  ],
];

const startupCases: [string, Buffer, Record<string, unknown>][] = [
  [
    'StartupMessage',
    frontend.startup({ user: 'alice', database: 'app', application_name: 'psql' }),
    {
      type: 'startup',
      majorVersion: 3,
      minorVersion: 0,
      parameters: { user: 'alice', database: 'app', application_name: 'psql' },
    },
  ],
  [
    'StartupMessage 3.2',
    frontend.startup({ user: 'bob' }, 196610),
    { type: 'startup', majorVersion: 3, minorVersion: 2, parameters: { user: 'bob' } },
  ],
  ['SSLRequest', frontend.sslRequest(), { type: 'sslRequest' }],
  ['GSSENCRequest', frontend.gssEncRequest(), { type: 'gssEncRequest' }],
  [
    'CancelRequest',
    frontend.cancelRequest(4242, -7),
    { type: 'cancelRequest', processId: 4242, secretKey: -7 },
  ],
];

describe('FrontendParser, normal phase', () => {
  for (const [name, bytes, expected] of normalCases) {
    it(`parses ${name} at every split point`, () => {
      for (const [label, chunks] of chunkings(bytes)) {
        const messages = parseAll(copyChunks(chunks));
        assert.equal(messages.length, 1, label);
        assert.deepEqual(plain(messages[0]!), expected, label);
        assert.deepEqual(messages[0]!.raw, bytes, label);
      }
    });
  }

  it('parses every message type back to back in one chunk, with views of that chunk', () => {
    const all = Buffer.concat(normalCases.map(([, bytes]) => bytes));
    const messages = parseAll([all]);
    assert.deepEqual(
      messages.map(plain),
      normalCases.map(([, , expected]) => expected),
    );
    assert.ok(
      messages.every((m) => m.raw.buffer === all.buffer),
      'raw must be a zero-copy view',
    );
  });

  it('parses every message type back to back, byte by byte', () => {
    const all = Buffer.concat(normalCases.map(([, bytes]) => bytes));
    const messages = parseAll([...all].map((byte) => Buffer.from([byte])));
    assert.deepEqual(
      messages.map(plain),
      normalCases.map(([, , expected]) => expected),
    );
  });

  it('decodes the three meanings of a p message', () => {
    const [password, initial, response] = parseAll([
      Buffer.concat([
        frontend.password('hunter2'),
        frontend.saslInitialResponse('SCRAM-SHA-256', 'n,,n=,r=x'),
        frontend.saslResponse('c=biws'),
      ]),
    ]);
    assert.equal(password?.type, 'authResponse');
    assert.equal(initial?.type, 'authResponse');
    assert.equal(response?.type, 'authResponse');
    if (
      password?.type !== 'authResponse' ||
      initial?.type !== 'authResponse' ||
      response?.type !== 'authResponse'
    )
      return;
    assert.equal(decodePasswordMessage(password.body), 'hunter2');
    const sasl = decodeSaslInitialResponse(initial.body);
    assert.equal(sasl.mechanism, 'SCRAM-SHA-256');
    assert.equal(sasl.data?.toString(), 'n,,n=,r=x');
    assert.equal(decodeSaslResponse(response.body).toString(), 'c=biws');
    assert.equal(decodeSaslInitialResponse(new Bytes().cstring('X').int32(-1).body()).data, null);
  });

  const badAuth: [string, Buffer][] = [
    ['password without terminator', Buffer.from('abc')],
    ['password with trailing bytes', Buffer.from('abc\0x')],
  ];
  for (const [name, body] of badAuth) {
    it(`refuses a ${name}`, () => assertCode(() => decodePasswordMessage(body), 'ERR_PG_PROTOCOL_MALFORMED'));
  }
  const badSasl: [string, Buffer][] = [
    ['SASLInitialResponse without mechanism terminator', Buffer.from('SCRAM')],
    [
      'SASLInitialResponse with overlong data',
      new Bytes().cstring('SCRAM-SHA-256').int32(50).raw('abc').body(),
    ],
    ['SASLInitialResponse with length -2', new Bytes().cstring('SCRAM-SHA-256').int32(-2).body()],
    ['SASLInitialResponse with trailing bytes', new Bytes().cstring('M').int32(1).raw('ab').body()],
  ];
  for (const [name, body] of badSasl) {
    it(`refuses a ${name}`, () =>
      assertCode(() => decodeSaslInitialResponse(body), 'ERR_PG_PROTOCOL_MALFORMED'));
  }
});

describe('FrontendParser, startup phase', () => {
  for (const [name, bytes, expected] of startupCases) {
    it(`parses ${name} at every split point`, () => {
      for (const [label, chunks] of chunkings(bytes)) {
        const messages = parseAll(copyChunks(chunks), {});
        assert.equal(messages.length, 1, label);
        assert.deepEqual(plain(messages[0]!), expected, label);
        assert.deepEqual(messages[0]!.raw, bytes, label);
      }
    });
  }

  it('moves to the normal phase after StartupMessage, even within one chunk', () => {
    const parser = new FrontendParser();
    const seen: string[] = [];
    parser.feed(Buffer.concat([frontend.startup({ user: 'a' }), frontend.query('select 1')]), (m) =>
      seen.push(m.type),
    );
    assert.deepEqual(seen, ['startup', 'query']);
    assert.equal(parser.phase, 'normal');
  });

  it('stays in the startup phase after SSLRequest and takes the StartupMessage that follows', () => {
    const parser = new FrontendParser();
    const seen: string[] = [];
    parser.feed(frontend.sslRequest(), (m) => seen.push(m.type));
    assert.equal(parser.phase, 'startup');
    parser.feed(frontend.startup({ user: 'a' }), (m) => seen.push(m.type));
    assert.deepEqual(seen, ['sslRequest', 'startup']);
  });

  it('ends after CancelRequest', () => {
    const parser = new FrontendParser();
    parser.feed(frontend.cancelRequest(1, 2), () => {});
    assert.equal(parser.phase, 'ended');
    assertCode(() => parser.feed(Buffer.from([0]), () => {}), 'ERR_PG_PROTOCOL_UNEXPECTED_DATA');
  });
});

function assertCode(fn: () => unknown, code: ProtocolErrorCode): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ProtocolError, `expected ProtocolError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    return true;
  });
}

function feedAll(chunks: Buffer[], options: FrontendParserOptions): void {
  const parser = new FrontendParser(options);
  for (const chunk of chunks) parser.feed(chunk, () => {});
}

const tagged = (tag: string, body: Buffer | string) => new Bytes().raw(body).message(tag);
const withLength = (tag: string, length: number) => {
  const out = Buffer.alloc(5);
  out.write(tag, 0, 'latin1');
  out.writeInt32BE(length, 1);
  return out;
};

describe('FrontendParser refuses bad input with an error code', () => {
  const normal: [string, Buffer, ProtocolErrorCode, FrontendParserOptions?][] = [
    ['an unknown tag', tagged('Z', ''), 'ERR_PG_PROTOCOL_UNKNOWN_MESSAGE'],
    ['a NUL tag', Buffer.from([0]), 'ERR_PG_PROTOCOL_UNKNOWN_MESSAGE'],
    ['a length below 4', withLength('Q', 3), 'ERR_PG_PROTOCOL_MALFORMED'],
    ['a negative length', withLength('Q', -1), 'ERR_PG_PROTOCOL_MALFORMED'],
    ['a Query over the limit', withLength('Q', 1024 * 1024 + 1), 'ERR_PG_PROTOCOL_TOO_LONG'],
    [
      'a Query over a custom limit',
      frontend.query('x'.repeat(100)),
      'ERR_PG_PROTOCOL_TOO_LONG',
      { phase: 'normal', maxMessageLength: 64 },
    ],
    ['a CopyData over its limit', withLength('d', 16 * 1024 * 1024 + 1), 'ERR_PG_PROTOCOL_TOO_LONG'],
    ['a p message over the auth limit', withLength('p', 65_536), 'ERR_PG_PROTOCOL_TOO_LONG'],
    ['a Query without terminator', tagged('Q', 'select 1'), 'ERR_PG_PROTOCOL_MALFORMED'],
    ['a Query with trailing bytes', tagged('Q', 'select 1\0x'), 'ERR_PG_PROTOCOL_MALFORMED'],
    ['a Sync with a body', tagged('S', 'x'), 'ERR_PG_PROTOCOL_MALFORMED'],
    ['a Terminate with a body', tagged('X', 'x'), 'ERR_PG_PROTOCOL_MALFORMED'],
    [
      'a Parse whose type count overruns',
      new Bytes().cstring('').cstring('x').int16(3).int32(23).message('P'),
      'ERR_PG_PROTOCOL_MALFORMED',
    ],
    [
      'a Bind whose value count overruns',
      new Bytes().cstring('').cstring('').int16(0).int16(5).value('a').int16(0).message('B'),
      'ERR_PG_PROTOCOL_MALFORMED',
    ],
    [
      'a Bind whose value length overruns',
      new Bytes().cstring('').cstring('').int16(0).int16(1).int32(100).raw('abc').int16(0).message('B'),
      'ERR_PG_PROTOCOL_MALFORMED',
    ],
    [
      'a Bind with value length -2',
      new Bytes().cstring('').cstring('').int16(0).int16(1).int32(-2).int16(0).message('B'),
      'ERR_PG_PROTOCOL_MALFORMED',
    ],
    [
      'a Bind with 2 formats for 3 values',
      frontend.bind('', '', [0, 1], ['a', 'b', 'c'], []),
      'ERR_PG_PROTOCOL_MALFORMED',
    ],
    ['a Bind with format code 2', frontend.bind('', '', [2], ['a'], []), 'ERR_PG_PROTOCOL_MALFORMED'],
    [
      'a Bind whose result format count overruns',
      new Bytes().cstring('').cstring('').int16(0).int16(0).int16(9).message('B'),
      'ERR_PG_PROTOCOL_MALFORMED',
    ],
    ['a Bind with an unterminated portal', tagged('B', 'portal'), 'ERR_PG_PROTOCOL_MALFORMED'],
    ['a Describe of kind X', frontend.describe('X' as 'S', 'a'), 'ERR_PG_PROTOCOL_MALFORMED'],
    ['an empty Describe', tagged('D', ''), 'ERR_PG_PROTOCOL_MALFORMED'],
    ['a Close of kind Q', frontend.close('Q' as 'S', 'a'), 'ERR_PG_PROTOCOL_MALFORMED'],
    ['an Execute without row count', new Bytes().cstring('p').message('E'), 'ERR_PG_PROTOCOL_MALFORMED'],
    ['a CopyFail without terminator', tagged('f', 'oops'), 'ERR_PG_PROTOCOL_MALFORMED'],
    [
      'a FunctionCall whose argument overruns',
      new Bytes().int32(1).int16(0).int16(1).int32(9).message('F'),
      'ERR_PG_PROTOCOL_MALFORMED',
    ],
    [
      'a FunctionCall without result format',
      new Bytes().int32(1).int16(0).int16(0).message('F'),
      'ERR_PG_PROTOCOL_MALFORMED',
    ],
    [
      'a message after Terminate',
      Buffer.concat([frontend.terminate(), frontend.sync()]),
      'ERR_PG_PROTOCOL_UNEXPECTED_DATA',
    ],
  ];
  for (const [name, bytes, code, options] of normal) {
    it(`${name}: ${code}`, () => assertCode(() => feedAll([bytes], options ?? { phase: 'normal' }), code));
  }

  const startup: [string, Buffer, ProtocolErrorCode][] = [
    ['a startup length below 8', new Bytes().int32(4).body(), 'ERR_PG_PROTOCOL_MALFORMED'],
    ['a negative startup length', new Bytes().int32(-8).body(), 'ERR_PG_PROTOCOL_MALFORMED'],
    ['a startup packet over 10,000 bytes', new Bytes().int32(10_001).body(), 'ERR_PG_PROTOCOL_TOO_LONG'],
    ['protocol 2.0', frontend.startup({ user: 'a' }, 0x20000), 'ERR_PG_PROTOCOL_UNSUPPORTED_VERSION'],
    ['an unknown 1234 request code', new Bytes().int32(80877199).packet(), 'ERR_PG_PROTOCOL_UNKNOWN_MESSAGE'],
    ['an SSLRequest with a body', new Bytes().int32(80877103).int32(0).packet(), 'ERR_PG_PROTOCOL_MALFORMED'],
    ['a short CancelRequest', new Bytes().int32(80877102).int32(1).packet(), 'ERR_PG_PROTOCOL_MALFORMED'],
    [
      'a parameter without value',
      new Bytes().int32(196608).cstring('user').int8(0).packet(),
      'ERR_PG_PROTOCOL_MALFORMED',
    ],
    [
      'parameters without final terminator',
      new Bytes().int32(196608).cstring('user').cstring('a').packet(),
      'ERR_PG_PROTOCOL_MALFORMED',
    ],
    [
      'bytes after the final terminator',
      new Bytes().int32(196608).cstring('user').cstring('a').int8(0).int8(7).packet(),
      'ERR_PG_PROTOCOL_MALFORMED',
    ],
    [
      'a repeated parameter',
      new Bytes().int32(196608).cstring('user').cstring('a').cstring('user').cstring('b').int8(0).packet(),
      'ERR_PG_PROTOCOL_MALFORMED',
    ],
    [
      'bytes after SSLRequest before the answer (CVE-2021-23214)',
      Buffer.concat([frontend.sslRequest(), frontend.query('x')]),
      'ERR_PG_PROTOCOL_UNEXPECTED_DATA',
    ],
    [
      'bytes after GSSENCRequest before the answer',
      Buffer.concat([frontend.gssEncRequest(), Buffer.from([1])]),
      'ERR_PG_PROTOCOL_UNEXPECTED_DATA',
    ],
    [
      'bytes after CancelRequest',
      Buffer.concat([frontend.cancelRequest(1, 2), Buffer.from([1])]),
      'ERR_PG_PROTOCOL_UNEXPECTED_DATA',
    ],
  ];
  for (const [name, bytes, code] of startup) {
    it(`${name}: ${code}`, () => assertCode(() => feedAll([bytes], {}), code));
  }

  it('checks the length before buffering: a 5-byte header claiming 1 GiB fails at once', () => {
    const parser = new FrontendParser({ phase: 'normal' });
    assertCode(() => parser.feed(withLength('Q', 0x3fffffff), () => {}), 'ERR_PG_PROTOCOL_TOO_LONG');
    assert.equal(parser.bufferedBytes, 0);
  });

  it('checks the tag on its first byte, before the length arrives', () => {
    const parser = new FrontendParser({ phase: 'normal' });
    assertCode(() => parser.feed(Buffer.from('Z'), () => {}), 'ERR_PG_PROTOCOL_UNKNOWN_MESSAGE');
  });

  it('keeps failing after an error, and delivers the messages before it', () => {
    const parser = new FrontendParser({ phase: 'normal' });
    const seen: string[] = [];
    assertCode(
      () => parser.feed(Buffer.concat([frontend.sync(), tagged('Z', '')]), (m) => seen.push(m.type)),
      'ERR_PG_PROTOCOL_UNKNOWN_MESSAGE',
    );
    assert.deepEqual(seen, ['sync']);
    assertCode(
      () => parser.feed(frontend.sync(), (m) => seen.push(m.type)),
      'ERR_PG_PROTOCOL_UNKNOWN_MESSAGE',
    );
    assert.deepEqual(seen, ['sync']);
  });

  it('a Bind claiming 65,535 values in a tiny body fails without allocating for them', () => {
    const bytes = new Bytes().cstring('').cstring('').int16(0).int16(-1).message('B');
    assertCode(() => feedAll([bytes], { phase: 'normal' }), 'ERR_PG_PROTOCOL_MALFORMED');
  });
});
