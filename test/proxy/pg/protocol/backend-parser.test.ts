import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  BackendParser,
  type BackendParserOptions,
  decodeBackendMessage,
  decodeDataRow,
  decodeErrorResponse,
  decodeRowDescription,
} from '../../../../proxy/pg/protocol/backend-parser.ts';
import { ProtocolError, type ProtocolErrorCode } from '../../../../proxy/pg/protocol/errors.ts';
import { chunkings, copyChunks } from './split-feed.ts';
import { Bytes, backend, type TestField } from './test-buffers.ts';

function split(chunks: Buffer[], options?: BackendParserOptions): { code: number; raw: Buffer }[] {
  const parser = new BackendParser(options);
  const frames: { code: number; raw: Buffer }[] = [];
  for (const chunk of chunks) parser.feed(chunk, (code, raw) => frames.push({ code, raw }));
  assert.equal(parser.bufferedBytes, 0);
  return frames;
}

function plain(value: unknown): unknown {
  return JSON.parse(
    JSON.stringify(value, (_key, v) => {
      if (v instanceof Map) return Object.fromEntries(v);
      if (v && v.type === 'Buffer') return Buffer.from(v.data).toString('latin1');
      return v;
    }),
  );
}

const field = (name: string, typeOid: number): TestField => ({
  name,
  tableOid: 16384,
  columnAttribute: 2,
  typeOid,
  typeSize: -1,
  typeModifier: -1,
  format: 0,
});

const cases: [string, Buffer, unknown][] = [
  ['AuthenticationOk', backend.authenticationOk(), { type: 'authentication', request: { type: 'ok' } }],
  [
    'AuthenticationCleartextPassword',
    backend.authenticationCleartext(),
    { type: 'authentication', request: { type: 'cleartextPassword' } },
  ],
  [
    'AuthenticationMD5Password',
    backend.authenticationMd5(Buffer.from('abcd')),
    { type: 'authentication', request: { type: 'md5Password', salt: 'abcd' } },
  ],
  [
    'AuthenticationSASL',
    backend.authenticationSasl(['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256']),
    {
      type: 'authentication',
      request: { type: 'sasl', mechanisms: ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256'] },
    },
  ],
  [
    'AuthenticationSASLContinue',
    backend.authenticationSaslContinue('r=abc,s=c2FsdA==,i=4096'),
    { type: 'authentication', request: { type: 'saslContinue', data: 'r=abc,s=c2FsdA==,i=4096' } },
  ],
  [
    'AuthenticationSASLFinal',
    backend.authenticationSaslFinal('v=xyz'),
    { type: 'authentication', request: { type: 'saslFinal', data: 'v=xyz' } },
  ],
  [
    'AuthenticationGSS',
    backend.authenticationGss(),
    { type: 'authentication', request: { type: 'unsupported', method: 7, data: '' } },
  ],
  [
    'ParameterStatus',
    backend.parameterStatus('server_version', '15.8'),
    { type: 'parameterStatus', name: 'server_version', value: '15.8' },
  ],
  [
    'BackendKeyData',
    backend.backendKeyData(1234, -99),
    { type: 'backendKeyData', processId: 1234, secretKey: -99 },
  ],
  ['ReadyForQuery idle', backend.readyForQuery('I'), { type: 'readyForQuery', status: 0x49 }],
  ['ReadyForQuery in transaction', backend.readyForQuery('T'), { type: 'readyForQuery', status: 0x54 }],
  ['ReadyForQuery failed', backend.readyForQuery('E'), { type: 'readyForQuery', status: 0x45 }],
  [
    'RowDescription',
    backend.rowDescription([field('id', 23), { ...field('email', 25), tableOid: 0xfffffff0, format: 1 }]),
    {
      type: 'rowDescription',
      fields: [field('id', 23), { ...field('email', 25), tableOid: 0xfffffff0, format: 1 }],
    },
  ],
  ['empty RowDescription', backend.rowDescription([]), { type: 'rowDescription', fields: [] }],
  [
    'DataRow',
    backend.dataRow(['1', null, '', 'alice@example.com']),
    { type: 'dataRow', values: ['1', null, '', 'alice@example.com'] },
  ],
  ['CommandComplete', backend.commandComplete('SELECT 3'), { type: 'commandComplete', tag: 'SELECT 3' }],
  [
    'ErrorResponse',
    backend.fieldList('E', [
      ['S', 'ERREUR'],
      ['V', 'ERROR'],
      ['C', '42P01'],
      ['M', 'relation "x" does not exist'],
      ['P', '15'],
    ]),
    {
      type: 'errorResponse',
      fields: { S: 'ERREUR', V: 'ERROR', C: '42P01', M: 'relation "x" does not exist', P: '15' },
      severity: 'ERROR',
      code: '42P01',
      message: 'relation "x" does not exist',
    },
  ],
  [
    'NoticeResponse',
    backend.fieldList('N', [
      ['S', 'NOTICE'],
      ['C', '00000'],
      ['M', 'hello'],
      ['D', 'secret detail'],
    ]),
    {
      type: 'noticeResponse',
      fields: { S: 'NOTICE', C: '00000', M: 'hello', D: 'secret detail' },
      severity: 'NOTICE',
      code: '00000',
      message: 'hello',
    },
  ],
  [
    'CopyInResponse',
    backend.copyResponse('G', 0, [0, 0]),
    { type: 'copyResponse', direction: 'in', format: 0, columnFormats: [0, 0] },
  ],
  [
    'CopyOutResponse',
    backend.copyResponse('H', 1, [1]),
    { type: 'copyResponse', direction: 'out', format: 1, columnFormats: [1] },
  ],
  [
    'CopyBothResponse',
    backend.copyResponse('W', 0, []),
    { type: 'copyResponse', direction: 'both', format: 0, columnFormats: [] },
  ],
  ['CopyData', backend.copyData('1\talice\n'), { type: 'copyData', data: '1\talice\n' }],
  ['CopyDone', backend.copyDone(), { type: 'copyDone' }],
  [
    'NotificationResponse',
    backend.notification(77, 'jobs', '{"id":1}'),
    { type: 'notificationResponse', processId: 77, channel: 'jobs', payload: '{"id":1}' },
  ],
  [
    'ParameterDescription',
    backend.parameterDescription([23, 25]),
    { type: 'parameterDescription', typeOids: [23, 25] },
  ],
  ['NoData', backend.empty('n'), { type: 'noData' }],
  ['ParseComplete', backend.empty('1'), { type: 'parseComplete' }],
  ['BindComplete', backend.empty('2'), { type: 'bindComplete' }],
  ['CloseComplete', backend.empty('3'), { type: 'closeComplete' }],
  ['PortalSuspended', backend.empty('s'), { type: 'portalSuspended' }],
  ['EmptyQueryResponse', backend.empty('I'), { type: 'emptyQueryResponse' }],
  ['FunctionCallResponse', backend.functionCallResponse('42'), { type: 'functionCallResponse', value: '42' }],
  [
    'null FunctionCallResponse',
    backend.functionCallResponse(null),
    { type: 'functionCallResponse', value: null },
  ],
  [
    'NegotiateProtocolVersion',
    backend.negotiateProtocolVersion(0, ['_pq_.x']),
    { type: 'negotiateProtocolVersion', newestMinor: 0, unrecognized: ['_pq_.x'] },
  ],
];

describe('BackendParser', () => {
  for (const [name, bytes, expected] of cases) {
    it(`splits and decodes ${name} at every split point`, () => {
      for (const [label, chunks] of chunkings(bytes)) {
        const frames = split(copyChunks(chunks));
        assert.equal(frames.length, 1, label);
        assert.equal(frames[0]!.code, bytes[0], label);
        assert.deepEqual(frames[0]!.raw, bytes, label);
        assert.deepEqual(plain(decodeBackendMessage(frames[0]!.raw)), expected, label);
      }
    });
  }

  it('splits every message type back to back in one chunk into zero-copy views', () => {
    const all = Buffer.concat(cases.map(([, bytes]) => bytes));
    const frames = split([all]);
    assert.deepEqual(
      frames.map((f) => plain(decodeBackendMessage(f.raw))),
      cases.map(([, , expected]) => expected),
    );
    assert.ok(frames.every((f) => f.raw.buffer === all.buffer));
  });

  it('splits every message type back to back, byte by byte', () => {
    const all = Buffer.concat(cases.map(([, bytes]) => bytes));
    const frames = split([...all].map((byte) => Buffer.from([byte])));
    assert.deepEqual(Buffer.concat(frames.map((f) => f.raw)), all);
  });

  it('returns DataRow values as views of the message', () => {
    const raw = backend.dataRow(['abc', null]);
    const [value, nothing] = decodeDataRow(raw);
    assert.equal(value?.buffer, raw.buffer);
    assert.equal(value?.toString(), 'abc');
    assert.equal(nothing, null);
  });

  it('splits a stream of 10,000 DataRows fed in 1,000-byte chunks', () => {
    const rows = Array.from({ length: 10_000 }, (_, i) =>
      backend.dataRow([String(i), `user${i}@example.com`]),
    );
    const all = Buffer.concat(rows);
    const chunks: Buffer[] = [];
    for (let at = 0; at < all.length; at += 1000) chunks.push(all.subarray(at, at + 1000));
    const frames = split(chunks);
    assert.equal(frames.length, 10_000);
    assert.equal(decodeDataRow(frames[9_999]!.raw)[1]?.toString(), 'user9999@example.com');
  });
});

function assertCode(fn: () => unknown, code: ProtocolErrorCode): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ProtocolError, `expected ProtocolError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    return true;
  });
}

describe('BackendParser refuses bad input with an error code', () => {
  const header = (tag: string, length: number) => {
    const out = Buffer.alloc(5);
    out.write(tag, 0, 'latin1');
    out.writeInt32BE(length, 1);
    return out;
  };
  const framing: [string, Buffer, ProtocolErrorCode, BackendParserOptions?][] = [
    ['an unknown tag', header('x', 4), 'ERR_PG_PROTOCOL_UNKNOWN_MESSAGE'],
    ['a length of 3', header('D', 3), 'ERR_PG_PROTOCOL_MALFORMED'],
    ['a negative length', header('D', -5), 'ERR_PG_PROTOCOL_MALFORMED'],
    ['a length over the default 256 MiB', header('D', 256 * 1024 * 1024 + 1), 'ERR_PG_PROTOCOL_TOO_LONG'],
    [
      'a length over a custom limit',
      backend.dataRow(['x'.repeat(100)]),
      'ERR_PG_PROTOCOL_TOO_LONG',
      { maxMessageLength: 50 },
    ],
  ];
  for (const [name, bytes, code, options] of framing) {
    it(`${name}: ${code}`, () => assertCode(() => split([bytes], options), code));
  }

  const decoding: [string, Buffer][] = [
    ['a DataRow whose count overruns', new Bytes().int16(3).value('a').message('D')],
    ['a DataRow whose value overruns', new Bytes().int16(1).int32(10).raw('abc').message('D')],
    ['a DataRow with value length -2', new Bytes().int16(1).int32(-2).message('D')],
    ['a DataRow with trailing bytes', new Bytes().int16(1).value('a').raw('zz').message('D')],
    [
      'a RowDescription whose count overruns',
      new Bytes().int16(2).cstring('a').int32(0).int16(0).int32(23).int16(4).int32(-1).int16(0).message('T'),
    ],
    [
      'a RowDescription with an unterminated name',
      new Bytes().int16(1).raw('abcdefghijklmnopqrstuvwxyz').message('T'),
    ],
    ['an ErrorResponse without final NUL', new Bytes().raw('S').cstring('ERROR').message('E')],
    ['an ErrorResponse with an unterminated field', new Bytes().raw('Mabc').message('E')],
    ['a ReadyForQuery with status X', backend.readyForQuery('X' as 'I')],
    ['an empty ReadyForQuery', new Bytes().message('Z')],
    ['an Authentication without method', new Bytes().message('R')],
    ['an AuthenticationOk with trailing bytes', new Bytes().int32(0).raw('x').message('R')],
    ['an AuthenticationMD5Password with a short salt', new Bytes().int32(5).raw('ab').message('R')],
    [
      'an AuthenticationSASL without list terminator',
      new Bytes().int32(10).cstring('SCRAM-SHA-256').message('R'),
    ],
    ['a BackendKeyData with 4 bytes', new Bytes().int32(1).message('K')],
    ['a ParameterStatus without value', new Bytes().cstring('a').message('S')],
    ['a CommandComplete without terminator', new Bytes().raw('SELECT 1').message('C')],
    ['a CopyOutResponse whose count overruns', new Bytes().int8(0).int16(4).int16(0).message('H')],
    ['a ParameterDescription whose count overruns', new Bytes().int16(2).int32(23).message('t')],
    ['a NotificationResponse without payload', new Bytes().int32(1).cstring('chan').message('A')],
    ['a NegotiateProtocolVersion with count -1', new Bytes().int32(0).int32(-1).message('v')],
    ['a ParseComplete with a body', new Bytes().raw('x').message('1')],
    ['a FunctionCallResponse whose value overruns', new Bytes().int32(8).message('V')],
    [
      'a message whose length field lies',
      Buffer.concat([backend.commandComplete('SELECT 1'), Buffer.from('x')]),
    ],
  ];
  for (const [name, bytes] of decoding) {
    it(`${name}: ERR_PG_PROTOCOL_MALFORMED`, () =>
      assertCode(() => decodeBackendMessage(bytes), 'ERR_PG_PROTOCOL_MALFORMED'));
  }

  it('a specific decoder refuses another message type', () => {
    assertCode(() => decodeRowDescription(backend.dataRow([])), 'ERR_PG_PROTOCOL_MALFORMED');
    assertCode(() => decodeErrorResponse(backend.fieldList('N', [])), 'ERR_PG_PROTOCOL_MALFORMED');
  });

  it('checks the length before buffering', () => {
    const parser = new BackendParser({ maxMessageLength: 1000 });
    assertCode(() => parser.feed(header('D', 1001), () => {}), 'ERR_PG_PROTOCOL_TOO_LONG');
    assert.equal(parser.bufferedBytes, 0);
  });
});
