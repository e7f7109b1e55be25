/**
 * The one-pass DataRow rewriter against the per-value path it replaced (decode each row, mask
 * each value with `Masker.maskBuffer`, encode the row again): random rows must give identical
 * bytes, whatever the plan, NULLs, empty and zero-column rows, non-ASCII values and long values.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type ColumnRule, compileMasking, createMasker, type Masker } from '../../../proxy/masking/index.ts';
import { decodeDataRow } from '../../../proxy/pg/protocol/backend-parser.ts';
import { encodeMessages, writeDataRow } from '../../../proxy/pg/protocol/serializer.ts';
import { ColumnOp, type RowPlan, RowRewriter } from '../../../proxy/pg/row-rewriter.ts';
import { createRandom } from './protocol/split-feed.ts';

const masker = createMasker(
  compileMasking(
    {
      columns: [
        { match: 'r.redacted', style: 'redact' },
        { match: 'r.last4', style: 'last4' },
        { match: 'r.hashed', style: 'hash' },
      ],
    },
    'a masking key of at least thirty-two bytes',
  ),
);
const [REDACT, LAST4, HASH] = masker.config.columns as [ColumnRule, ColumnRule, ColumnRule];
const REDACTED = Buffer.from('[REDACTED]');

function planOf(ops: ColumnOp[]): RowPlan {
  const rules = ops.map((op) =>
    op === ColumnOp.Constant
      ? REDACT
      : op === ColumnOp.Last4
        ? LAST4
        : op === ColumnOp.Hash
          ? HASH
          : op === ColumnOp.Rule || op === ColumnOp.Nullify
            ? LAST4
            : null,
  );
  return {
    ops: Uint8Array.from(ops),
    rules,
    constants: ops.map((op) => (op === ColumnOp.Constant ? REDACTED : null)),
    labels: rules.map((rule) => (rule ? `column:${rule.match}` : null)),
    hits: new Int32Array(ops.length),
    hitCount: 0,
  };
}

/** The per-value path: what every row must come out as. */
function referenceRows(rows: (Buffer | null)[][], plan: RowPlan, m: Masker): Buffer {
  return encodeMessages((w) => {
    for (const row of rows) {
      const values = row.map((value, i) => {
        if (value === null) return null;
        const op = i < plan.ops.length ? plan.ops[i]! : ColumnOp.Scan;
        if (op === ColumnOp.Skip) return value;
        if (op === ColumnOp.Scan) return m.maskBuffer(value, null).buffer;
        if (op === ColumnOp.Nullify) return null;
        if (op === ColumnOp.Constant) return plan.constants[i]!;
        return m.maskBuffer(value, plan.rules[i]).buffer;
      });
      writeDataRow(w, values);
    }
  });
}

function encodeRows(rows: (Buffer | null)[][]): Buffer {
  return encodeMessages((w) => {
    for (const row of rows) writeDataRow(w, row);
  });
}

const SAMPLES = [
  '',
  'plain text',
  'user42@example.com',
  'write to a.b@c.io today',
  '4242424242424242',
  '4242 4242 4242 4242',
  '123-45-6789',
  '+44 20 7946 0958',
  'xoxb-1234567890-abcdefghij',
  'AKIAIOSFODNN7EXAMPLE',
  'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln',
  'José García, 日本',
  'x'.repeat(40),
  '2024-01-15 12:34:56',
  '550e8400-e29b-41d4-a716-446655440000',
  'DE89370400440532013000',
];

function randomValue(random: () => number): Buffer | null {
  const pick = random();
  if (pick < 0.1) return null;
  if (pick < 0.2) {
    // Raw bytes, not always UTF-8.
    const bytes = Buffer.alloc(Math.floor(random() * 24));
    for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(random() * 256);
    return bytes;
  }
  if (pick < 0.25) return Buffer.from(`${SAMPLES[2]} `.repeat(1 + Math.floor(random() * 40)));
  const a = SAMPLES[Math.floor(random() * SAMPLES.length)]!;
  const b = random() < 0.3 ? ` ${SAMPLES[Math.floor(random() * SAMPLES.length)]}` : '';
  return Buffer.from(a + b);
}

const OPS = [
  ColumnOp.Skip,
  ColumnOp.Scan,
  ColumnOp.Constant,
  ColumnOp.Last4,
  ColumnOp.Hash,
  ColumnOp.Rule,
  ColumnOp.Nullify,
];
const noHooks = { onScanned() {}, onRow: null };

function rewriteAll(
  rewriter: RowRewriter,
  input: Buffer,
  plan: RowPlan,
  start = 0,
  end = input.length,
): Buffer {
  return rewriter.rewrite(input, start, end, plan, noHooks) ?? input.subarray(start, end);
}

describe('RowRewriter', () => {
  it('gives the bytes of the per-value path for random rows and plans', () => {
    const random = createRandom(7);
    const rewriter = new RowRewriter(masker);
    for (let round = 0; round < 300; round++) {
      const columns = Math.floor(random() * 7);
      const ops = Array.from(
        { length: Math.floor(random() * (columns + 2)) },
        () => OPS[Math.floor(random() * OPS.length)]!,
      );
      const plan = planOf(ops);
      const rows = Array.from({ length: 1 + Math.floor(random() * 20) }, () =>
        Array.from({ length: columns }, () => randomValue(random)),
      );
      const input = encodeRows(rows);
      assert.deepEqual(
        rewriteAll(rewriter, input, plan),
        referenceRows(rows, plan, masker),
        `round ${round}`,
      );
    }
  });

  it('reuses an output buffer only once it is given back, never one still referred to', () => {
    const random = createRandom(11);
    const rewriter = new RowRewriter(masker);
    const plan = planOf([ColumnOp.Skip, ColumnOp.Constant, ColumnOp.Last4, ColumnOp.Scan]);
    const kept: [Buffer, Buffer][] = [];
    let reused = 0;
    let previous: Buffer | null = null;
    for (let round = 0; round < 200; round++) {
      // Runs of 1 to 400 rows: small outputs are slices of Node's shared pool, never taken back.
      const length = random() < 0.3 ? 1 + Math.floor(random() * 5) : 20 + Math.floor(random() * 380);
      const rows = Array.from({ length }, () => Array.from({ length: 4 }, () => randomValue(random)));
      const input = encodeRows(rows);
      const rewritten = rewriter.rewrite(input, 0, input.length, plan, noHooks);
      const out = rewritten ?? input;
      assert.deepEqual(out, referenceRows(rows, plan, masker), `round ${round}`);
      if (rewritten === null) continue;
      if (previous !== null && out.buffer === previous.buffer) reused++;
      previous = out;
      // Half the outputs stay referred to (a write the socket has not taken): they must not change.
      if (random() < 0.5) kept.push([out, Buffer.from(out)]);
      else rewriter.recycle(rewritten);
    }
    for (const [out, copy] of kept)
      assert.deepEqual(out, copy, 'an output still referred to was overwritten');
    assert.ok(reused > 0, 'buffers given back are reused');
    // Once dropped (the session is idle), the next output is a new buffer.
    const rows = Array.from({ length: 400 }, () => [
      null,
      Buffer.from('a@b.co'),
      Buffer.from('1234567890'),
      null,
    ]);
    const input = encodeRows(rows);
    const first = rewriter.rewrite(input, 0, input.length, plan, noHooks)!;
    rewriter.recycle(first);
    rewriter.dropSpares();
    assert.notEqual(rewriter.rewrite(input, 0, input.length, plan, noHooks)!.buffer, first.buffer);
    rewriter.recycle(first);
    assert.equal(rewriter.rewrite(input, 0, input.length, plan, noHooks)!.buffer, first.buffer);
  });

  it('reads rows in the middle of a chunk and leaves the bytes around them alone', () => {
    const rewriter = new RowRewriter(masker);
    const rows = [[Buffer.from('1'), Buffer.from('a@b.co'), Buffer.from('4242424242424242')]];
    const rowBytes = encodeRows(rows);
    const chunk = Buffer.concat([Buffer.from('garbage'), rowBytes, Buffer.from('tail')]);
    const plan = planOf([ColumnOp.Skip, ColumnOp.Scan, ColumnOp.Last4]);
    const out = rewriteAll(rewriter, chunk, plan, 7, 7 + rowBytes.length);
    assert.deepEqual(out, referenceRows(rows, plan, masker));
    assert.equal(chunk.toString('latin1', 0, 7), 'garbage');
  });

  it('returns null for rows it does not change, and scans every column without a plan', () => {
    const rewriter = new RowRewriter(masker);
    const clean = encodeRows([[Buffer.from('hello'), null, Buffer.from('')], []]);
    assert.equal(rewriter.rewrite(clean, 0, clean.length, planOf([]), noHooks), null);
    const dirty = encodeRows([[Buffer.from('mail me: a@b.co')]]);
    const scanned: unknown[] = [];
    const out = rewriter.rewrite(dirty, 0, dirty.length, planOf([]), {
      onScanned: (c) => scanned.push(c),
      onRow: null,
    });
    assert.deepEqual(out, referenceRows([[Buffer.from('mail me: a@b.co')]], planOf([]), masker));
    assert.deepEqual(scanned, [{ email: 1 }]);
  });

  it('counts rule hits per column, never for NULLs', () => {
    const rewriter = new RowRewriter(masker);
    const plan = planOf([ColumnOp.Constant, ColumnOp.Last4, ColumnOp.Nullify]);
    const rows = [
      [Buffer.from('a'), Buffer.from('12345678'), Buffer.from('x')],
      [null, Buffer.from('1'), null],
    ];
    const input = encodeRows(rows);
    rewriteAll(rewriter, input, plan);
    assert.deepEqual([...plan.hits], [1, 2, 1]);
    assert.equal(plan.hitCount, 4);
  });

  it('hands each row as sent to onRow until it returns false', () => {
    const rewriter = new RowRewriter(masker);
    const plan = planOf([ColumnOp.Constant, ColumnOp.Skip]);
    const rows = [
      [Buffer.from('secret'), Buffer.from('one')],
      [Buffer.from('secret'), Buffer.from('two')],
      [Buffer.from('secret'), Buffer.from('three')],
    ];
    const input = encodeRows(rows);
    const seen: string[][] = [];
    rewriter.rewrite(input, 0, input.length, plan, {
      onScanned() {},
      onRow: (bytes, start, end) => {
        seen.push(decodeDataRow(Buffer.from(bytes.subarray(start, end))).map((v) => String(v)));
        return seen.length < 2;
      },
    });
    assert.deepEqual(seen, [
      ['[REDACTED]', 'one'],
      ['[REDACTED]', 'two'],
    ]);
  });

  it('grows its output past the first guess (replacements longer than the values)', () => {
    const rewriter = new RowRewriter(masker);
    const rows = Array.from({ length: 300 }, () => [Buffer.from('a'), Buffer.from('a@b.co')]);
    const plan = planOf([ColumnOp.Hash, ColumnOp.Scan]);
    const input = encodeRows(rows);
    assert.deepEqual(rewriteAll(rewriter, input, plan), referenceRows(rows, plan, masker));
  });

  // Bad rows from the server end the session with a protocol error, never a crash or a bad row.
  const malformed: [string, Buffer][] = [
    ['a message that is not a DataRow', Buffer.from([0x43, 0, 0, 0, 6, 0, 0])],
    ['a count past the end', Buffer.from([0x44, 0, 0, 0, 6, 0, 9])],
    ['a value past the end', Buffer.from([0x44, 0, 0, 0, 10, 0, 1, 0, 0, 0, 9])],
    ['a negative length', Buffer.from([0x44, 0, 0, 0, 10, 0, 1, 0xff, 0xff, 0xff, 0xfe])],
    ['trailing bytes', Buffer.from([0x44, 0, 0, 0, 11, 0, 1, 0xff, 0xff, 0xff, 0xff, 7])],
    ['a length running past the run', Buffer.from([0x44, 0, 0, 0, 60, 0, 0])],
    ['a row cut short', Buffer.from([0x44, 0, 0, 0, 6, 0])],
  ];
  for (const [label, bytes] of malformed) {
    it(`refuses ${label} (ERR_PG_PROTOCOL_MALFORMED)`, () => {
      const rewriter = new RowRewriter(masker);
      for (const plan of [planOf([]), planOf([ColumnOp.Skip])]) {
        assert.throws(
          () => rewriter.rewrite(bytes, 0, bytes.length, plan, noHooks),
          (error: { code?: string }) => error.code === 'ERR_PG_PROTOCOL_MALFORMED',
        );
      }
    });
  }
});
