/**
 * The relay core without sockets: substituted statements and their errors, reply matching,
 * masking plans (including portals executed without Describe), zero-copy forwarding, and every
 * TCP split point of client messages.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileSqlGuardrails } from '../../../proxy/guardrails/sql/index.ts';
import { compileMasking, createMasker } from '../../../proxy/masking/index.ts';
import { buildCatalog } from '../../../proxy/pg/catalog.ts';
import { type ByteSink, ChunkOutput } from '../../../proxy/pg/chunk-output.ts';
import {
  type BackendMessage,
  BackendParser,
  decodeBackendMessage,
  type FieldDescription,
} from '../../../proxy/pg/protocol/backend-parser.ts';
import { type FrontendMessage, FrontendParser } from '../../../proxy/pg/protocol/frontend-parser.ts';
import { BackendCode, TransactionStatus } from '../../../proxy/pg/protocol/message-codes.ts';
import {
  encodeMessages,
  type MessageWriter,
  writeBind,
  writeBindComplete,
  writeCommandComplete,
  writeCopyData,
  writeCopyDone,
  writeDataRow,
  writeErrorResponse,
  writeExecute,
  writeNoData,
  writeParse,
  writeParseComplete,
  writeQuery,
  writeReadyForQuery,
  writeRowDescription,
  writeSync,
} from '../../../proxy/pg/protocol/serializer.ts';
import { type BlockedStatement, PgRelay, type RelayOptions } from '../../../proxy/pg/relay.ts';
import { chunkings } from './protocol/split-feed.ts';
import { frontend } from './protocol/test-buffers.ts';

class Capture implements ByteSink {
  readonly writes: Buffer[] = [];
  /** Per write, the callback it came with. */
  readonly dones: ((() => void) | undefined)[] = [];
  corks = 0;
  write(buffer: Buffer, done?: () => void): boolean {
    this.writes.push(buffer);
    this.dones.push(done);
    return true;
  }
  cork(): void {
    this.corks++;
  }
  uncork(): void {}
  get bytes(): Buffer {
    return Buffer.concat(this.writes);
  }
  clear(): void {
    this.writes.length = 0;
  }
}

function field(
  name: string,
  tableOid: number,
  columnAttribute: number,
  typeOid = 25,
  format = 0,
): FieldDescription {
  return { name, tableOid, columnAttribute, typeOid, typeSize: -1, typeModifier: -1, format };
}

function backendMessages(bytes: Buffer): BackendMessage[] {
  const out: BackendMessage[] = [];
  new BackendParser().feed(bytes, (_c, raw) => out.push(decodeBackendMessage(Buffer.from(raw))));
  return out;
}

function frontendMessages(bytes: Buffer): FrontendMessage[] {
  const out: FrontendMessage[] = [];
  new FrontendParser({ phase: 'normal' }).feed(bytes, (m) => out.push(m));
  return out;
}

const CUSTOMERS = 16_400;

function createRelay(
  maskingConfig: unknown = { columns: [{ match: 'customers.card', style: 'last4' }] },
  extra: Partial<RelayOptions> = {},
) {
  const upstream = new Capture();
  const client = new Capture();
  const recorded: { kind: string; data: Record<string, unknown> }[] = [];
  const relay = new PgRelay({
    guardrails: compileSqlGuardrails({}),
    masker: createMasker(compileMasking(maskingConfig)),
    level: 'read',
    groups: [],
    recordRows: false,
    catalog: buildCatalog(
      [
        [String(CUSTOMERS), 'public', 'customers', '1', 'id'],
        [String(CUSTOMERS), 'public', 'customers', '2', 'card'],
      ],
      0,
    ),
    toUpstream: upstream,
    toClient: client,
    record: (kind, data) => recorded.push({ kind, data }),
    token: 'feedface',
    clock: () => 1000,
    ...extra,
  });
  return { relay, upstream, client, recorded };
}

describe('ChunkOutput', () => {
  it('forwards an unchanged chunk as the very same buffer, without corking', () => {
    const sink = new Capture();
    const out = new ChunkOutput(sink);
    const chunk = encodeMessages((w) => {
      writeCommandComplete(w, 'SELECT 1');
      writeReadyForQuery(w, TransactionStatus.Idle);
    });
    out.begin(chunk);
    new BackendParser().feed(chunk, (_c, raw) => out.pass(raw));
    out.end();
    assert.equal(sink.writes.length, 1);
    assert.equal(sink.writes[0], chunk);
    assert.equal(sink.corks, 0);
  });

  it('keeps order between passed runs and rewritten messages, in one corked write', () => {
    const sink = new Capture();
    const out = new ChunkOutput(sink);
    const chunk = encodeMessages((w) => {
      writeCommandComplete(w, 'A');
      writeCommandComplete(w, 'B');
      writeCommandComplete(w, 'C');
    });
    out.begin(chunk);
    let n = 0;
    new BackendParser().feed(chunk, (_c, raw) => {
      if (n++ === 1) writeCommandComplete(out.writer(), 'b');
      else out.pass(raw);
    });
    out.end();
    assert.equal(sink.corks, 1);
    assert.deepEqual(
      backendMessages(sink.bytes).map((m) => (m.type === 'commandComplete' ? m.tag : m.type)),
      ['A', 'b', 'C'],
    );
  });

  it("hands each sent buffer's callback to the sink with that very buffer, alone or corked", () => {
    const sink = new Capture();
    const out = new ChunkOutput(sink);
    const chunk = encodeMessages((w) => writeCommandComplete(w, 'A'));
    const sent: string[] = [];
    const first = Buffer.from('first');
    out.begin(chunk);
    out.send(first, () => sent.push('first'));
    out.end();
    assert.deepEqual(sink.writes, [first]);
    sink.dones[0]!();
    assert.deepEqual(sent, ['first']);

    const second = Buffer.from('second');
    out.begin(chunk);
    new BackendParser().feed(chunk, (_c, raw) => out.pass(raw));
    out.send(second, () => sent.push('second'));
    out.end();
    assert.equal(sink.corks, 1);
    assert.equal(sink.writes[1], chunk);
    assert.equal(sink.dones[1], undefined, 'a view of the received chunk has no callback');
    assert.equal(sink.writes[2], second);
    sink.dones[2]!();
    assert.deepEqual(sent, ['first', 'second']);
  });
});

describe('PgRelay', () => {
  it('replaces a blocked query and turns the server error into the guardrail error', () => {
    const { relay, upstream, client, recorded } = createRelay();
    relay.feedClient(encodeMessages((w) => writeQuery(w, 'DROP TABLE customers')));
    const sent = frontendMessages(upstream.bytes);
    assert.equal(sent.length, 1);
    assert.ok(sent[0]!.type === 'query' && sent[0]!.sql === 'warden_blocked_feedface_1');
    relay.feedUpstream(
      encodeMessages((w) => {
        writeErrorResponse(w, {
          severity: 'ERROR',
          code: '42601',
          message: 'syntax error at or near "warden_blocked_feedface_1"',
          position: 1,
        });
        writeReadyForQuery(w, TransactionStatus.Idle);
      }),
    );
    const [error, ready] = backendMessages(client.bytes);
    assert.ok(error?.type === 'errorResponse');
    assert.equal(error.code, '42501');
    assert.match(error.message, /rule drop-table/);
    assert.doesNotMatch(client.bytes.toString('latin1'), /feedface/);
    assert.equal(ready?.type, 'readyForQuery');
    assert.equal(recorded[0]!.kind, 'blocked');
    assert.deepEqual(relay.stats.blocked, 1);
  });

  it('tells onBlocked of each refused statement when it refuses it, masked, before any reply', () => {
    const blocked: BlockedStatement[] = [];
    const { relay } = createRelay({ detectors: { email: 'redact' } }, { onBlocked: (b) => blocked.push(b) });
    relay.feedClient(
      Buffer.concat([
        frontend.query('DROP TABLE customers -- ada@example.com'),
        frontend.parse('wipe', 'TRUNCATE invoices'),
        frontend.functionCall(764, [], [], 0),
        frontend.query('select 1'),
      ]),
    );
    assert.deepEqual(blocked, [
      { statement: 'DROP TABLE customers -- [REDACTED:email]', rule: 'drop-table' },
      { statement: 'TRUNCATE invoices', rule: 'truncate' },
      { statement: '<function call oid 764>', rule: 'function-call' },
    ]);
  });

  it('passes a server error that merely quotes the token shape of another session', () => {
    const { relay, client } = createRelay();
    relay.feedClient(encodeMessages((w) => writeQuery(w, 'select warden_blocked_other_1')));
    relay.feedUpstream(
      encodeMessages((w) => {
        writeErrorResponse(w, {
          severity: 'ERROR',
          code: '42703',
          message: 'column "warden_blocked_other_1" does not exist',
        });
        writeReadyForQuery(w, TransactionStatus.Idle);
      }),
    );
    const [error] = backendMessages(client.bytes);
    assert.ok(error?.type === 'errorResponse' && error.code === '42703');
  });

  it('masks rows by the RowDescription of the query and forwards unmasked results untouched', () => {
    const { relay, client } = createRelay({
      columns: [{ match: 'customers.card', style: 'last4' }],
      detectors: {
        email: 'off',
        card: 'off',
        ssn: 'off',
        iban: 'off',
        phone: 'off',
        jwt: 'off',
        api_key: 'off',
      },
    });
    relay.feedClient(encodeMessages((w) => writeQuery(w, 'select id, card as c from customers')));
    relay.feedUpstream(
      encodeMessages((w) => {
        writeRowDescription(w, [field('id', CUSTOMERS, 1, 23), field('c', CUSTOMERS, 2)]);
        writeDataRow(w, ['1', '4111111111111111']);
        writeCommandComplete(w, 'SELECT 1');
        writeReadyForQuery(w, TransactionStatus.Idle);
      }),
    );
    const row = backendMessages(client.bytes).find((m) => m.type === 'dataRow');
    assert.ok(row?.type === 'dataRow');
    assert.deepEqual(
      row.values.map((v) => v?.toString()),
      ['1', '************1111'],
    );
    client.clear();
    relay.feedClient(encodeMessages((w) => writeQuery(w, 'select 1')));
    const plain = encodeMessages((w) => {
      writeRowDescription(w, [field('?column?', 0, 0, 23)]);
      writeDataRow(w, ['1']);
      writeCommandComplete(w, 'SELECT 1');
      writeReadyForQuery(w, TransactionStatus.Idle);
    });
    relay.feedUpstream(plain);
    assert.equal(client.writes.length, 1);
    assert.equal(client.writes[0], plain, 'zero-copy: the chunk itself is forwarded');
  });

  it('skips the content scan for integer and date columns unless custom patterns could match them', () => {
    const result = encodeMessages((w) => {
      writeRowDescription(w, [field('n', 0, 0, 23), field('d', 0, 0, 1082)]);
      writeDataRow(w, ['123456', '2024-01-02']);
      writeCommandComplete(w, 'SELECT 1');
      writeReadyForQuery(w, TransactionStatus.Idle);
    });
    const plain = createRelay({});
    plain.relay.feedClient(encodeMessages((w) => writeQuery(w, 'select n, d from t where id = 1')));
    plain.relay.feedUpstream(result);
    assert.equal(plain.client.writes[0], result, 'forwarded untouched');
    const custom = createRelay({ patterns: [{ name: 'emp', regex: '[0-9]{6}' }] });
    custom.relay.feedClient(encodeMessages((w) => writeQuery(w, 'select n, d from t where id = 1')));
    custom.relay.feedUpstream(result);
    const row = backendMessages(custom.client.bytes).find((m) => m.type === 'dataRow');
    assert.ok(row?.type === 'dataRow');
    assert.equal(row.values[0]?.toString(), '[REDACTED:pattern:emp]');
  });

  it('describes a portal executed without Describe, keeps the answer, and masks its rows', () => {
    const { relay, upstream, client } = createRelay();
    relay.feedClient(
      encodeMessages((w) => {
        writeParse(w, { name: 's', sql: 'select card from customers where id = $1' });
        writeBind(w, { statement: 's', parameters: ['1'] });
        writeExecute(w);
        writeSync(w);
      }),
    );
    assert.deepEqual(
      frontendMessages(upstream.bytes).map((m) => m.type),
      ['parse', 'bind', 'describe', 'execute', 'sync'],
    );
    relay.feedUpstream(
      encodeMessages((w) => {
        writeParseComplete(w);
        writeBindComplete(w);
        writeRowDescription(w, [field('card', CUSTOMERS, 2)]);
        writeDataRow(w, ['5500005555555559']);
        writeCommandComplete(w, 'SELECT 1');
        writeReadyForQuery(w, TransactionStatus.Idle);
      }),
    );
    const replies = backendMessages(client.bytes);
    assert.deepEqual(
      replies.map((m) => m.type),
      ['parseComplete', 'bindComplete', 'dataRow', 'commandComplete', 'readyForQuery'],
    );
    const row = replies[2]!;
    assert.ok(row.type === 'dataRow');
    assert.equal(row.values[0]?.toString(), '************5559');
  });

  it('records each execution with the parameters of its own portal, masked', () => {
    const { relay, recorded } = createRelay();
    relay.feedClient(
      encodeMessages((w) => {
        writeParse(w, { name: 's', sql: 'select $1::text' });
        writeBind(w, { portal: 'a', statement: 's', parameters: ['ada@example.com'] });
        writeBind(w, { portal: 'b', statement: 's', parameters: ['plain'] });
        writeExecute(w, 'a');
        writeExecute(w, 'b');
        writeSync(w);
      }),
    );
    relay.feedUpstream(
      encodeMessages((w) => {
        writeParseComplete(w);
        writeBindComplete(w);
        writeBindComplete(w);
        writeRowDescription(w, [field('text', 0, 0)]);
        writeCommandComplete(w, 'SELECT 0');
        writeRowDescription(w, [field('text', 0, 0)]);
        writeCommandComplete(w, 'SELECT 0');
        writeReadyForQuery(w, TransactionStatus.Idle);
      }),
    );
    assert.deepEqual(
      recorded.map((r) => r.data.params),
      [['[REDACTED:email]'], ['plain']],
    );
  });

  it('skips to Sync after an extended-protocol error and records the skipped executes', () => {
    const { relay, recorded } = createRelay();
    relay.feedClient(
      encodeMessages((w) => {
        writeParse(w, { sql: 'select 1/0' });
        writeBind(w, {});
        writeExecute(w);
        writeParse(w, { sql: 'select 2' });
        writeBind(w, {});
        writeExecute(w);
        writeSync(w);
      }),
    );
    relay.feedUpstream(
      encodeMessages((w) => {
        writeParseComplete(w);
        writeBindComplete(w);
        writeRowDescription(w, [field('?column?', 0, 0, 23)]);
        writeErrorResponse(w, { severity: 'ERROR', code: '22012', message: 'division by zero' });
        writeReadyForQuery(w, TransactionStatus.Idle);
      }),
    );
    assert.equal(relay.inFlight, 0);
    const outcomes = recorded
      .filter((r) => r.kind === 'statement')
      .map((r) => [r.data.error, r.data.outcome]);
    assert.deepEqual(outcomes, [
      ['22012 division by zero', undefined],
      ['22012 division by zero', 'skipped'],
    ]);
  });

  it('sends the same bytes upstream at every TCP split point of a Query and a Parse', () => {
    const bytes = encodeMessages((w) => {
      writeQuery(w, 'select 1');
      writeParse(w, { name: 'n', sql: 'select 2' });
    });
    const whole = createRelay();
    whole.relay.feedClient(bytes);
    for (let split = 1; split < bytes.length; split++) {
      const parts = createRelay();
      parts.relay.feedClient(bytes.subarray(0, split));
      parts.relay.feedClient(bytes.subarray(split));
      assert.deepEqual(parts.upstream.bytes, whole.upstream.bytes, `split at ${split}`);
    }
  });

  it('closes on a message only a server sends (ERR_PG_PROTOCOL_UNKNOWN_MESSAGE)', () => {
    const { relay } = createRelay();
    assert.throws(
      () => relay.feedClient(encodeMessages((w) => writeReadyForQuery(w, TransactionStatus.Idle))),
      (e: { code?: string }) => e.code === 'ERR_PG_PROTOCOL_UNKNOWN_MESSAGE',
    );
  });
});

function writeCopyOutResponse(w: MessageWriter, columns: number, format = 0): void {
  w.startMessage(BackendCode.CopyOutResponse).writeByte(format).writeInt16(columns);
  for (let i = 0; i < columns; i++) w.writeInt16(format);
  w.endMessage();
}

function copyPayloads(bytes: Buffer): string {
  return backendMessages(bytes)
    .map((m) => (m.type === 'copyData' ? m.data.toString('utf8') : `<${m.type}>`))
    .join('');
}

describe('PgRelay COPY TO of masked tables', () => {
  it('masks a COPY by column position, in statement order, rows spanning CopyData messages', () => {
    const { relay, upstream, client } = createRelay();
    const sql = "COPY (select 'x') TO STDOUT; COPY customers TO STDOUT";
    relay.feedClient(encodeMessages((w) => writeQuery(w, sql)));
    assert.deepEqual(frontendMessages(upstream.bytes), [
      { type: 'query', sql, raw: frontendMessages(upstream.bytes)[0]!.raw },
    ]);
    relay.feedUpstream(
      encodeMessages((w) => {
        writeCopyOutResponse(w, 1);
        writeCopyData(w, 'x 4111\n\n');
        writeCopyDone(w);
        writeCommandComplete(w, 'COPY 1');
        writeCopyOutResponse(w, 2);
        writeCopyData(w, '1\t41111111');
        writeCopyData(w, '11111111\n2\t\\N\n3\t');
        writeCopyData(w, '5500005555555559');
        writeCopyDone(w);
        writeCommandComplete(w, 'COPY 3');
        writeReadyForQuery(w, TransactionStatus.Idle);
      }),
    );
    assert.equal(
      copyPayloads(client.bytes),
      '<copyResponse>x 4111\n\n<copyDone><commandComplete><copyResponse>' +
        '1\t************1111\n2\t\\N\n3\t************5559<copyDone><commandComplete><readyForQuery>',
    );
    assert.deepEqual(relay.stats.masked, { 'column:customers.card': 2 });
  });

  it('masks a COPY run through Parse/Bind/Execute', () => {
    const { relay, upstream, client } = createRelay();
    relay.feedClient(
      encodeMessages((w) => {
        writeParse(w, { sql: 'COPY customers (card) TO STDOUT (FORMAT csv, HEADER)' });
        writeBind(w, {});
        writeExecute(w);
        writeSync(w);
      }),
    );
    assert.deepEqual(
      frontendMessages(upstream.bytes).map((m) => m.type),
      ['parse', 'bind', 'describe', 'execute', 'sync'],
    );
    relay.feedUpstream(
      encodeMessages((w) => {
        writeParseComplete(w);
        writeBindComplete(w);
        writeNoData(w);
        writeCopyOutResponse(w, 1);
        writeCopyData(w, 'card\n');
        writeCopyData(w, '"5500,0055,5555,5559"\n');
        writeCopyDone(w);
        writeCommandComplete(w, 'COPY 1');
        writeReadyForQuery(w, TransactionStatus.Idle);
      }),
    );
    assert.equal(
      copyPayloads(client.bytes),
      '<parseComplete><bindComplete><copyResponse>card\n"****,****,****,5559"\n' +
        '<copyDone><commandComplete><readyForQuery>',
    );
  });

  const refused: [string, RegExp][] = [
    ['COPY customers TO STDOUT (FORMAT binary)', /binary/],
    ['COPY (select card from customers) TO STDOUT', /COPY \(query\)/],
    ['COPY customers TO STDOUT (FREEZE)', /option freeze/],
  ];
  for (const [sql, message] of refused) {
    it(`refuses ${sql} (rule masked-copy)`, () => {
      const { relay, upstream, client } = createRelay();
      relay.feedClient(encodeMessages((w) => writeQuery(w, sql)));
      const [sent] = frontendMessages(upstream.bytes);
      assert.ok(sent?.type === 'query' && sent.sql === 'warden_blocked_feedface_1');
      relay.feedUpstream(
        encodeMessages((w) => {
          writeErrorResponse(w, {
            severity: 'ERROR',
            code: '42601',
            message: `syntax error at or near "${sent.sql}"`,
          });
          writeReadyForQuery(w, TransactionStatus.Idle);
        }),
      );
      const [error] = backendMessages(client.bytes);
      assert.ok(error?.type === 'errorResponse' && error.code === '42501');
      assert.match(error.message, /rule masked-copy/);
      assert.match(error.message, message);
    });
  }

  it('ends the session when the server returns other columns than planned (ERR_PGPROXY_UNMASKABLE)', () => {
    const { relay } = createRelay();
    relay.feedClient(encodeMessages((w) => writeQuery(w, 'COPY customers TO STDOUT')));
    assert.throws(
      () => relay.feedUpstream(encodeMessages((w) => writeCopyOutResponse(w, 3))),
      (e: { code?: string }) => e.code === 'ERR_PGPROXY_UNMASKABLE',
    );
    const rows = createRelay();
    rows.relay.feedClient(encodeMessages((w) => writeQuery(w, 'COPY customers TO STDOUT')));
    assert.throws(
      () =>
        rows.relay.feedUpstream(
          encodeMessages((w) => {
            writeCopyOutResponse(w, 2);
            writeCopyData(w, '1\t4111111111111111\tmore\n');
          }),
        ),
      (e: { code?: string }) => e.code === 'ERR_PGPROXY_UNMASKABLE',
    );
  });

  it('refuses COPY of a masked table in a client encoding that embeds ASCII (Shift-JIS)', () => {
    const { relay, upstream } = createRelay(undefined, { clientEncoding: 'SJIS' });
    relay.feedClient(encodeMessages((w) => writeQuery(w, 'COPY customers TO STDOUT')));
    const [sent] = frontendMessages(upstream.bytes);
    assert.ok(sent?.type === 'query' && sent.sql === 'warden_blocked_feedface_1');
    const switched = createRelay();
    switched.relay.feedClient(encodeMessages((w) => writeQuery(w, 'COPY customers TO STDOUT')));
    assert.throws(
      () =>
        switched.relay.feedUpstream(
          encodeMessages((w) => {
            w.startMessage(BackendCode.ParameterStatus)
              .writeCString('client_encoding')
              .writeCString('SJIS')
              .endMessage();
            writeCopyOutResponse(w, 2);
          }),
        ),
      (e: { code?: string }) => e.code === 'ERR_PGPROXY_UNMASKABLE',
    );
  });

  it('ends the session on a COPY it did not plan (a statement it never saw prepared)', () => {
    const { relay } = createRelay();
    relay.feedClient(
      encodeMessages((w) => {
        writeBind(w, { statement: 'never-parsed' });
        writeExecute(w);
        writeSync(w);
      }),
    );
    assert.throws(
      () =>
        relay.feedUpstream(
          encodeMessages((w) => {
            writeBindComplete(w);
            writeNoData(w);
            writeCopyOutResponse(w, 2);
          }),
        ),
      (e: { code?: string }) => e.code === 'ERR_PGPROXY_UNMASKABLE',
    );
  });

  it('forwards a CopyData of whole rows with nothing to mask as the received chunk (zero-copy)', () => {
    const { relay, client } = createRelay();
    relay.feedClient(encodeMessages((w) => writeQuery(w, 'COPY customers TO STDOUT')));
    relay.feedUpstream(encodeMessages((w) => writeCopyOutResponse(w, 2)));
    const plain = encodeMessages((w) => writeCopyData(w, '1\t\\N\n2\t\\N\n'));
    relay.feedUpstream(plain);
    assert.equal(client.writes.at(-1), plain);
  });

  it('drops the unfinished row of a COPY that fails midway', () => {
    const { relay, client } = createRelay();
    relay.feedClient(encodeMessages((w) => writeQuery(w, 'COPY customers TO STDOUT')));
    relay.feedUpstream(
      encodeMessages((w) => {
        writeCopyOutResponse(w, 2);
        writeCopyData(w, '1\t4111111111111111\n2\t5500');
        writeErrorResponse(w, { severity: 'ERROR', code: '57014', message: 'canceling statement' });
        writeReadyForQuery(w, TransactionStatus.Idle);
      }),
    );
    assert.equal(
      copyPayloads(client.bytes),
      '<copyResponse>1\t************1111\n<errorResponse><readyForQuery>',
    );
  });
});

describe('PgRelay result rows', () => {
  const result = encodeMessages((w) => {
    writeRowDescription(w, [field('id', CUSTOMERS, 1, 23), field('card', CUSTOMERS, 2), field('note', 0, 0)]);
    writeDataRow(w, ['1', '4111111111111111', 'mail a@b.co']);
    writeDataRow(w, ['2', null, null]);
    writeDataRow(w, ['3', '4242 4242 4242 4242', 'José']);
    writeCommandComplete(w, 'SELECT 3');
    writeReadyForQuery(w, TransactionStatus.Idle);
  });

  function runQuery(chunks: Buffer[], recordRows = false) {
    const run = createRelay(undefined, { recordRows });
    run.relay.feedClient(encodeMessages((w) => writeQuery(w, 'select id, card, note from customers')));
    for (const chunk of chunks) run.relay.feedUpstream(Buffer.from(chunk));
    return run;
  }

  it('masks rows the same at every TCP split point of the result', () => {
    const expected = runQuery([result]);
    const rows = backendMessages(expected.client.bytes).filter((m) => m.type === 'dataRow');
    assert.deepEqual(
      rows.map((m) => (m.type === 'dataRow' ? m.values.map((v) => v?.toString() ?? null) : [])),
      [
        ['1', '************1111', 'mail [REDACTED:email]'],
        ['2', null, null],
        ['3', '**** **** **** 4242', 'José'],
      ],
    );
    for (const [label, chunks] of chunkings(result)) {
      const run = runQuery(chunks);
      assert.deepEqual(run.client.bytes, expected.client.bytes, label);
      assert.deepEqual(run.relay.stats.masked, expected.relay.stats.masked, label);
    }
    assert.deepEqual(expected.relay.stats.masked, { 'column:customers.card': 2, email: 1 });
  });

  it('records the masked sample of the rows with record_rows, whatever the split', () => {
    for (const [label, chunks] of [...chunkings(result)].filter((_, i) => i % 7 === 0)) {
      const { recorded } = runQuery(chunks, true);
      const statement = recorded.find((r) => r.kind === 'statement');
      assert.deepEqual(
        statement?.data.result,
        [
          ['1', '************1111', 'mail [REDACTED:email]'],
          ['2', 'NULL', 'NULL'],
          ['3', '**** **** **** 4242', 'José'],
        ],
        label,
      );
    }
  });

  it('sends masked columns of binary-format results as NULL and scans binary text columns', () => {
    const { relay, client } = createRelay();
    relay.feedClient(
      encodeMessages((w) => {
        writeParse(w, { name: '', sql: 'select card, note from customers' });
        writeBind(w, { portal: '', statement: '', resultFormats: [1] });
        writeExecute(w, '');
        writeSync(w);
      }),
    );
    relay.feedUpstream(
      encodeMessages((w) => {
        writeParseComplete(w);
        writeBindComplete(w);
        writeRowDescription(w, [field('card', CUSTOMERS, 2, 25, 1), field('note', 0, 0, 25, 1)]);
        writeDataRow(w, ['4111111111111111', 'a@b.co']);
        writeCommandComplete(w, 'SELECT 1');
        writeReadyForQuery(w, TransactionStatus.Idle);
      }),
    );
    const row = backendMessages(client.bytes).find((m) => m.type === 'dataRow');
    assert.ok(row?.type === 'dataRow');
    assert.deepEqual(
      row.values.map((v) => v?.toString() ?? null),
      [null, '[REDACTED:email]'],
    );
  });

  it('forwards zero-column rows as they are', () => {
    const { relay, client } = createRelay();
    relay.feedClient(encodeMessages((w) => writeQuery(w, 'select from customers')));
    const rows = encodeMessages((w) => {
      writeRowDescription(w, []);
      writeDataRow(w, []);
      writeDataRow(w, []);
      writeCommandComplete(w, 'SELECT 2');
      writeReadyForQuery(w, TransactionStatus.Idle);
    });
    relay.feedUpstream(rows);
    assert.deepEqual(client.bytes, rows);
  });

  it('ends the session on a malformed DataRow inside a run (ERR_PG_PROTOCOL_MALFORMED)', () => {
    const { relay } = createRelay();
    relay.feedClient(encodeMessages((w) => writeQuery(w, 'select card from customers')));
    const good = encodeMessages((w) => {
      writeRowDescription(w, [field('card', CUSTOMERS, 2)]);
      writeDataRow(w, ['4111111111111111']);
    });
    const bad = Buffer.from([0x44, 0, 0, 0, 10, 0, 1, 0, 0, 0, 9]);
    assert.throws(
      () => relay.feedUpstream(Buffer.concat([good, bad])),
      (e: { code?: string }) => e.code === 'ERR_PG_PROTOCOL_MALFORMED',
    );
  });
});
