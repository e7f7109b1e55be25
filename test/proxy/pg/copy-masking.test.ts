/**
 * Masking `COPY table TO STDOUT`: options read from the statement, columns resolved from the
 * catalog (list or attnum order), refusals for what cannot be masked exactly, and rows masked by
 * position with the stream cut at every point.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { classify } from '../../../proxy/guardrails/sql/index.ts';
import { compileMasking, createMasker, type Masker } from '../../../proxy/masking/index.ts';
import { buildCatalog } from '../../../proxy/pg/catalog.ts';
import {
  CopyOutMasker,
  type CopyOutPlan,
  planCopyOut,
  readCopyFormat,
} from '../../../proxy/pg/copy-masking.ts';
import { chunkings } from './protocol/split-feed.ts';

const KEY = 'masking-test-key-0123456789abcdef';
const masker = createMasker(
  compileMasking(
    {
      columns: [
        { match: 'customers.email', style: 'hash' },
        { match: '*.card_number', style: 'last4' },
        { match: 'customers.note', style: 'none' },
      ],
    },
    KEY,
  ),
);

// Attnums out of order and with a gap (a dropped column 3), as pg_attribute may list them.
const catalog = buildCatalog(
  [
    ['100', 'public', 'customers', '5', 'note'],
    ['100', 'public', 'customers', '1', 'id'],
    ['100', 'public', 'customers', '2', 'email'],
    ['100', 'public', 'customers', '4', 'card_number'],
    ['200', 'public', 'orders', '1', 'id'],
    ['300', 'a', 'twin', '1', 'card_number'],
    ['301', 'b', 'twin', '1', 'card_number'],
  ],
  0,
);

function copyOf(sql: string) {
  const copy = classify(sql)[0]!.copy;
  assert.ok(copy, sql);
  return copy;
}

function plan(sql: string, m: Masker = masker): CopyOutPlan {
  const result = planCopyOut(copyOf(sql), catalog, m);
  assert.ok(!('refusal' in result), `${sql}: ${'refusal' in result ? result.refusal : ''}`);
  return result;
}

describe('readCopyFormat', () => {
  const cases: [string, string, boolean][] = [
    ['COPY t TO STDOUT', '\t|\\N|text', false],
    ['COPY t TO STDOUT (FORMAT csv, HEADER)', ',||csv', true],
    ['COPY t TO STDOUT WITH CSV HEADER', ',||csv', true],
    ["COPY t TO STDOUT (FORMAT csv, HEADER false, DELIMITER ';', NULL 'x')", ';|x|csv', false],
    ["COPY t TO STDOUT (FORMAT 'TEXT', DELIMITER '|', ENCODING 'UTF-8')", '||\\N|text', false],
    ['COPY t TO STDOUT (FORMAT csv, HEADER 1)', ',||csv', true],
  ];
  for (const [sql, expected, header] of cases) {
    it(`reads ${sql}`, () => {
      const read = readCopyFormat(copyOf(sql).options);
      assert.ok(!('refusal' in read));
      const f = read.format;
      assert.equal(
        `${String.fromCharCode(f.delimiter)}|${f.nullText.toString()}|${f.csv ? 'csv' : 'text'}`,
        expected,
      );
      assert.equal(read.header, header);
    });
  }

  it('takes ESCAPE from QUOTE unless given', () => {
    const quoteOnly = readCopyFormat(copyOf("COPY t TO STDOUT (FORMAT csv, QUOTE '''')").options);
    assert.ok(!('refusal' in quoteOnly) && quoteOnly.format.escape === 0x27);
    const both = readCopyFormat(copyOf("COPY t TO STDOUT (FORMAT csv, QUOTE '''', ESCAPE '\\')").options);
    assert.ok(!('refusal' in both) && both.format.quote === 0x27 && both.format.escape === 0x5c);
  });

  const refused: [string, RegExp][] = [
    ['COPY t TO STDOUT (FORMAT binary)', /binary/],
    ['COPY BINARY t TO STDOUT', /binary/],
    ['COPY t TO STDOUT (FORMAT parquet)', /format parquet/],
    ["COPY t TO STDOUT (ENCODING 'LATIN1')", /option encoding/],
    ["COPY t TO STDOUT (DELIMITER ';;')", /option delimiter/],
    ["COPY t TO STDOUT (QUOTE '''')", /option quote/],
    ['COPY t TO STDOUT (FORCE_QUOTE *)', /option force_quote/],
    ['COPY t TO STDOUT (HEADER maybe)', /option header/],
    ['COPY t TO STDOUT (FREEZE)', /option freeze is not known/],
  ];
  for (const [sql, message] of refused) {
    it(`refuses ${sql}`, () => {
      const read = readCopyFormat(copyOf(sql).options);
      assert.ok('refusal' in read);
      assert.match(read.refusal, message);
    });
  }
});

describe('planCopyOut', () => {
  it('takes the table columns in attnum order without a column list', () => {
    assert.deepEqual(
      plan('COPY customers TO STDOUT').rules.map((r) => r?.match ?? null),
      [null, 'customers.email', '*.card_number', 'customers.note'],
    );
  });

  it('takes the column list as written', () => {
    assert.deepEqual(
      plan('COPY public.customers (card_number, id, EMAIL) TO STDOUT').rules.map((r) => r?.style ?? null),
      ['last4', null, 'hash'],
    );
  });

  const refused: [string, RegExp, boolean?][] = [
    ['COPY (SELECT email FROM customers) TO STDOUT', /COPY \(query\)/],
    ['COPY customers TO STDOUT (FORMAT binary)', /binary/],
    ['COPY missing TO STDOUT', /not known to Warden's catalog yet/, true],
    ['COPY other.customers TO STDOUT', /not known/, true],
    ['COPY twin TO STDOUT', /several schemas/],
    ['COPY customers (id, secret) TO STDOUT', /column secret/],
  ];
  for (const [sql, message, unknown] of refused) {
    it(`refuses ${sql}`, () => {
      const result = planCopyOut(copyOf(sql), catalog, masker);
      assert.ok('refusal' in result);
      assert.match(result.refusal, message);
      assert.equal(result.unknownTable ?? false, unknown ?? false);
    });
  }

  it('plans a schema-qualified twin', () => {
    assert.equal(plan('COPY b.twin TO STDOUT').rules[0]?.style, 'last4');
  });
});

describe('CopyOutMasker', () => {
  const hashOf = (value: string) =>
    masker.maskValue(value, plan('COPY customers (email) TO STDOUT').rules[0]).text;

  function run(p: CopyOutPlan, chunks: Buffer[]): { out: string; counts: Record<string, number> } {
    const counts: Record<string, number> = {};
    const m = new CopyOutMasker(p, masker, true, (c) => {
      for (const [k, v] of Object.entries(c)) counts[k] = (counts[k] ?? 0) + v;
    });
    const parts = chunks.map((chunk) => m.feed(Buffer.from(chunk)));
    const rest = m.finish();
    if (rest) parts.push(rest);
    return { out: Buffer.concat(parts).toString('utf8'), counts };
  }

  it('masks text rows by column at every cut, detectors on the other columns', () => {
    const p = plan('COPY customers TO STDOUT');
    const input = Buffer.from(
      '1\tada@example.com\t4111111111111111\tcall ada@example.com\n' +
        '2\t\\N\t5500 0055 5555 5559\t\\N\n' +
        '3\tbob@example.org\t\\N\tnote\\twith tab é\n',
    );
    const expected =
      `1\t${hashOf('ada@example.com')}\t************1111\tcall ada@example.com\n` +
      '2\t\\N\t**** **** **** 5559\t\\N\n' +
      `3\t${hashOf('bob@example.org')}\t\\N\tnote\\twith tab é\n`;
    for (const [cut, chunks] of chunkings(input)) {
      const { out, counts } = run(p, chunks);
      assert.equal(out, expected, cut);
      assert.deepEqual(counts, { 'column:customers.email': 2, 'column:*.card_number': 2 }, cut);
    }
  });

  it('runs the detectors on unruled columns', () => {
    const { out, counts } = run(plan('COPY orders TO STDOUT'), [Buffer.from('mail ada@example.com\n')]);
    assert.equal(out, 'mail [REDACTED:email]\n');
    assert.deepEqual(counts, { email: 1 });
  });

  it('masks CSV with a header, quoted line breaks and re-quoting, at every cut', () => {
    const p = plan('COPY customers (id, email, note) TO STDOUT (FORMAT csv, HEADER)');
    const input = Buffer.from('id,email,note\n1,"a,b@example.com","two\nlines"\n2,,""\n');
    const expected = `id,email,note\n1,"${hashOf('a,b@example.com')}","two\nlines"\n2,,""\n`;
    for (const [cut, chunks] of chunkings(input)) assert.equal(run(p, chunks).out, expected, cut);
  });

  it('forwards rows without masked values unchanged', () => {
    const p = plan('COPY customers (id, card_number) TO STDOUT');
    const row = Buffer.from('1\t\\N\n');
    assert.equal(run(p, [row]).out, '1\t\\N\n');
  });

  it('refuses a row with another column count (ERR_PGPROXY_UNMASKABLE)', () => {
    const p = plan('COPY customers (id, email) TO STDOUT');
    assert.throws(() => run(p, [Buffer.from('1\tada@example.com\textra\n')]), {
      code: 'ERR_PGPROXY_UNMASKABLE',
    });
  });

  it('masks a last row without a line terminator', () => {
    const p = plan('COPY customers (email) TO STDOUT');
    assert.equal(run(p, [Buffer.from('ada@example.com')]).out, hashOf('ada@example.com'));
  });
});
