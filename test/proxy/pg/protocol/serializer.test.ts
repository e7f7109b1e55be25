import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  DataRowLocator,
  decodeBackendMessage,
  type FieldDescription,
} from '../../../../proxy/pg/protocol/backend-parser.ts';
import { ProtocolError } from '../../../../proxy/pg/protocol/errors.ts';
import { type FrontendMessage, FrontendParser } from '../../../../proxy/pg/protocol/frontend-parser.ts';
import { TransactionStatus } from '../../../../proxy/pg/protocol/message-codes.ts';
import {
  encodeMessages,
  MessageWriter,
  writeAuthenticationCleartextPassword,
  writeAuthenticationOk,
  writeAuthenticationSasl,
  writeAuthenticationSaslContinue,
  writeAuthenticationSaslFinal,
  writeBackendKeyData,
  writeBind,
  writeBindComplete,
  writeCancelRequest,
  writeClose,
  writeCommandComplete,
  writeCopyData,
  writeCopyDone,
  writeCopyFail,
  writeDataRow,
  writeDataRowFrom,
  writeDescribe,
  writeEmptyQueryResponse,
  writeEncryptionResponse,
  writeErrorResponse,
  writeExecute,
  writeFlush,
  writeNoData,
  writeNoticeResponse,
  writeParameterDescription,
  writeParameterStatus,
  writeParse,
  writeParseComplete,
  writePasswordMessage,
  writeQuery,
  writeReadyForQuery,
  writeRowDescription,
  writeSaslInitialResponse,
  writeSaslResponse,
  writeSslRequest,
  writeStartupMessage,
  writeSync,
  writeTerminate,
} from '../../../../proxy/pg/protocol/serializer.ts';
import { backend, frontend } from './test-buffers.ts';

const fields: FieldDescription[] = [
  { name: 'id', tableOid: 16384, columnAttribute: 1, typeOid: 23, typeSize: 4, typeModifier: -1, format: 0 },
  {
    name: 'e-mail',
    tableOid: 0xfffffff0,
    columnAttribute: 2,
    typeOid: 25,
    typeSize: -1,
    typeModifier: -1,
    format: 1,
  },
];

describe('serializer writes the same bytes as the reference builders', () => {
  const table: [string, (w: MessageWriter) => void, Buffer][] = [
    ['AuthenticationOk', (w) => writeAuthenticationOk(w), backend.authenticationOk()],
    [
      'AuthenticationCleartextPassword',
      (w) => writeAuthenticationCleartextPassword(w),
      backend.authenticationCleartext(),
    ],
    [
      'AuthenticationSASL',
      (w) => writeAuthenticationSasl(w, ['SCRAM-SHA-256']),
      backend.authenticationSasl(['SCRAM-SHA-256']),
    ],
    [
      'AuthenticationSASLContinue',
      (w) => writeAuthenticationSaslContinue(w, 'r=a,s=b,i=1'),
      backend.authenticationSaslContinue('r=a,s=b,i=1'),
    ],
    [
      'AuthenticationSASLFinal',
      (w) => writeAuthenticationSaslFinal(w, Buffer.from('v=x')),
      backend.authenticationSaslFinal('v=x'),
    ],
    [
      'ParameterStatus',
      (w) => writeParameterStatus(w, 'TimeZone', 'UTC'),
      backend.parameterStatus('TimeZone', 'UTC'),
    ],
    ['BackendKeyData', (w) => writeBackendKeyData(w, 5, -6), backend.backendKeyData(5, -6)],
    [
      'ReadyForQuery',
      (w) => writeReadyForQuery(w, TransactionStatus.InTransaction),
      backend.readyForQuery('T'),
    ],
    ['RowDescription', (w) => writeRowDescription(w, fields), backend.rowDescription(fields)],
    [
      'DataRow',
      (w) => writeDataRow(w, ['1', null, Buffer.from('ü'), '']),
      backend.dataRow(['1', null, 'ü', '']),
    ],
    ['CommandComplete', (w) => writeCommandComplete(w, 'UPDATE 2'), backend.commandComplete('UPDATE 2')],
    ['EmptyQueryResponse', (w) => writeEmptyQueryResponse(w), backend.empty('I')],
    [
      'ParameterDescription',
      (w) => writeParameterDescription(w, [23, 0xfffffff0]),
      backend.parameterDescription([23, 0xfffffff0]),
    ],
    ['ParseComplete', (w) => writeParseComplete(w), backend.empty('1')],
    ['BindComplete', (w) => writeBindComplete(w), backend.empty('2')],
    ['NoData', (w) => writeNoData(w), backend.empty('n')],
    ['CopyData', (w) => writeCopyData(w, 'a\tb\n'), backend.copyData('a\tb\n')],
    ['CopyDone', (w) => writeCopyDone(w), backend.copyDone()],
    [
      'ErrorResponse from named fields',
      (w) =>
        writeErrorResponse(w, {
          severity: 'ERROR',
          code: '42501',
          message: 'blocked',
          detail: 'd',
          hint: 'h',
          position: 3,
          extra: [['W', 'where']],
        }),
      backend.fieldList('E', [
        ['S', 'ERROR'],
        ['V', 'ERROR'],
        ['C', '42501'],
        ['M', 'blocked'],
        ['D', 'd'],
        ['H', 'h'],
        ['P', '3'],
        ['W', 'where'],
      ]),
    ],
    [
      'NoticeResponse from a field map',
      (w) =>
        writeNoticeResponse(
          w,
          new Map([
            ['S', 'NOTICE'],
            ['M', '***'],
          ]),
        ),
      backend.fieldList('N', [
        ['S', 'NOTICE'],
        ['M', '***'],
      ]),
    ],
    ['SSL accepted', (w) => writeEncryptionResponse(w, true), Buffer.from('S')],
    ['SSL refused', (w) => writeEncryptionResponse(w, false), Buffer.from('N')],
    [
      'StartupMessage from a record',
      (w) => writeStartupMessage(w, { user: 'u', database: 'd' }),
      frontend.startup({ user: 'u', database: 'd' }),
    ],
    [
      'StartupMessage from entries',
      (w) => writeStartupMessage(w, [['user', 'u']]),
      frontend.startup({ user: 'u' }),
    ],
    ['SSLRequest', (w) => writeSslRequest(w), frontend.sslRequest()],
    ['CancelRequest', (w) => writeCancelRequest(w, 9, -9), frontend.cancelRequest(9, -9)],
    ['PasswordMessage', (w) => writePasswordMessage(w, 'pw'), frontend.password('pw')],
    [
      'SASLInitialResponse',
      (w) => writeSaslInitialResponse(w, 'SCRAM-SHA-256', 'n,,n=,r=x'),
      frontend.saslInitialResponse('SCRAM-SHA-256', 'n,,n=,r=x'),
    ],
    [
      'SASLInitialResponse without data',
      (w) => writeSaslInitialResponse(w, 'M', null),
      frontend.saslInitialResponse('M', null),
    ],
    ['SASLResponse', (w) => writeSaslResponse(w, 'c=biws'), frontend.saslResponse('c=biws')],
    ['Query', (w) => writeQuery(w, 'select 1'), frontend.query('select 1')],
    [
      'Parse',
      (w) => writeParse(w, { name: 's', sql: 'select $1', parameterTypes: [23] }),
      frontend.parse('s', 'select $1', [23]),
    ],
    [
      'Bind',
      (w) =>
        writeBind(w, {
          portal: 'p',
          statement: 's',
          parameterFormats: [0],
          parameters: ['1', null],
          resultFormats: [1],
        }),
      frontend.bind('p', 's', [0], ['1', null], [1]),
    ],
    ['Describe', (w) => writeDescribe(w, 'portal', 'p'), frontend.describe('P', 'p')],
    ['Close', (w) => writeClose(w, 'statement', 's'), frontend.close('S', 's')],
    ['Execute', (w) => writeExecute(w, 'p', 10), frontend.execute('p', 10)],
    ['Sync', (w) => writeSync(w), frontend.sync()],
    ['Flush', (w) => writeFlush(w), frontend.flush()],
    ['Terminate', (w) => writeTerminate(w), frontend.terminate()],
    ['CopyFail', (w) => writeCopyFail(w, 'stop'), frontend.copyFail('stop')],
  ];
  for (const [name, write, expected] of table) {
    it(name, () => assert.deepEqual(encodeMessages(write), expected));
  }
});

describe('serializer ↔ parser round trips', () => {
  it('backend messages the proxy emits decode to what was written', () => {
    const bytes = encodeMessages((w) => {
      writeRowDescription(w, fields);
      writeDataRow(w, ['42', null, '***']);
      writeErrorResponse(w, { severity: 'ERROR', code: '42501', message: 'statement blocked by Warden' });
      writeReadyForQuery(w, TransactionStatus.Failed);
    });
    const messages: unknown[] = [];
    let at = 0;
    while (at < bytes.length) {
      const end = at + 1 + bytes.readInt32BE(at + 1);
      messages.push(decodeBackendMessage(bytes.subarray(at, end)));
      at = end;
    }
    assert.deepEqual(messages[0], { type: 'rowDescription', fields });
    assert.deepEqual(messages[1], { type: 'dataRow', values: [Buffer.from('42'), null, Buffer.from('***')] });
    assert.equal((messages[2] as { code: string }).code, '42501');
    assert.deepEqual(messages[3], { type: 'readyForQuery', status: TransactionStatus.Failed });
  });

  it('frontend messages the proxy emits parse to what was written', () => {
    const bytes = encodeMessages((w) => {
      writeStartupMessage(w, { user: 'warden_u1', database: 'app' });
      writeParse(w, { sql: 'select $1' });
      writeBind(w, { parameters: [Buffer.from([0, 1, 2])], parameterFormats: [1] });
      writeDescribe(w, 'portal');
      writeExecute(w);
      writeSync(w);
    });
    const messages: FrontendMessage[] = [];
    new FrontendParser().feed(bytes, (m) => messages.push(m));
    assert.deepEqual(
      messages.map((m) => m.type),
      ['startup', 'parse', 'bind', 'describe', 'execute', 'sync'],
    );
    const bind = messages[2];
    assert.equal(bind?.type, 'bind');
    if (bind?.type === 'bind') assert.deepEqual(bind.parameters, [Buffer.from([0, 1, 2])]);
  });
});

describe('MessageWriter', () => {
  it('grows from a tiny buffer for a 1 MiB DataRow and keeps earlier bytes', () => {
    const w = new MessageWriter(8);
    writeSync(w);
    const big = Buffer.alloc(1024 * 1024, 0x61);
    writeDataRow(w, [big]);
    const out = w.finish();
    assert.deepEqual(out.subarray(0, 5), frontend.sync());
    assert.deepEqual(out.subarray(5), backend.dataRow([big]));
  });

  it('finish hands out a copy the next message does not overwrite', () => {
    const w = new MessageWriter(64);
    writeQuery(w, 'first');
    const first = w.finish();
    writeQuery(w, 'other');
    w.finish();
    assert.deepEqual(first, frontend.query('first'));
  });

  it('refuses to grow past its maximum with ERR_PG_PROTOCOL_TOO_LONG', () => {
    const w = new MessageWriter(16, 64);
    assert.throws(
      () => writeCopyData(w, Buffer.alloc(100)),
      (e: unknown) => e instanceof ProtocolError && e.code === 'ERR_PG_PROTOCOL_TOO_LONG',
    );
  });

  const refused: [string, (w: MessageWriter) => void][] = [
    ['a NUL inside a query string', (w) => writeQuery(w, 'select 1\0; drop table x')],
    ['a NUL inside a parameter name', (w) => writeParameterStatus(w, 'a\0b', 'c')],
    ['an empty startup parameter name', (w) => writeStartupMessage(w, { '': 'x' })],
    ['a two-letter error field code', (w) => writeErrorResponse(w, new Map([['SS', 'x']]))],
    ['more than 65,535 DataRow values', (w) => writeDataRow(w, new Array(65_536).fill(null))],
  ];
  for (const [name, write] of refused) {
    it(`refuses ${name} with ERR_PG_PROTOCOL_MALFORMED and leaves the shared writer clean`, () => {
      assert.throws(
        () => encodeMessages(write),
        (e: unknown) => e instanceof ProtocolError && e.code === 'ERR_PG_PROTOCOL_MALFORMED',
      );
      assert.deepEqual(
        encodeMessages((w) => writeSync(w)),
        frontend.sync(),
      );
    });
  }
});

describe('writeDataRowFrom (masking fast path)', () => {
  const table: [string, (string | null)[], [number, string | Buffer | null][], (string | null)[]][] = [
    [
      'replaces one value and copies the rest',
      ['1', 'alice@example.com', null, 'x'],
      [[1, '***']],
      ['1', '***', null, 'x'],
    ],
    [
      'replaces a value with NULL and a NULL with a value',
      ['a', null],
      [
        [0, null],
        [1, 'b'],
      ],
      [null, 'b'],
    ],
    [
      'copies everything when nothing is replaced',
      ['', 'long value '.repeat(20), null],
      [],
      ['', 'long value '.repeat(20), null],
    ],
    ['handles a row without columns', [], [], []],
  ];
  for (const [name, values, replacements, expected] of table) {
    it(name, () => {
      const locator = new DataRowLocator();
      const raw = backend.dataRow(values);
      assert.equal(locator.locate(raw), values.length);
      const out = encodeMessages((w) => writeDataRowFrom(w, locator, new Map(replacements)));
      assert.deepEqual(out, backend.dataRow(expected));
    });
  }

  it('reuses one locator across rows of different widths', () => {
    const locator = new DataRowLocator();
    const wide = backend.dataRow(Array.from({ length: 200 }, (_, i) => String(i)));
    assert.equal(locator.locate(wide), 200);
    assert.equal(locator.value(199)?.toString(), '199');
    assert.equal(locator.locate(backend.dataRow([null, 'z'])), 2);
    assert.equal(locator.isNull(0), true);
    assert.equal(locator.value(1)?.toString(), 'z');
    assert.equal(locator.raw.toString('latin1', locator.start(1), locator.end(1)), 'z');
  });
});
