/**
 * The COPY row codec: text and CSV rows decoded and re-encoded (escapes, quoting, NULLs,
 * multi-byte UTF-8), and rows split out of a stream cut at every point.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type CopyFormat,
  CopyRowSplitter,
  decodeCopyRow,
  defaultCopyFormat,
  encodeCopyRow,
  rowContentLength,
} from '../../../proxy/pg/copy-codec.ts';
import { chunkings } from './protocol/split-feed.ts';

const TEXT = defaultCopyFormat(false);
const CSV = defaultCopyFormat(true);
const b = (s: string) => Buffer.from(s, 'utf8');

function values(row: string, format: CopyFormat): (string | null)[] {
  return decodeCopyRow(b(row), format).map((f) => (f.value === null ? null : f.value.toString('utf8')));
}

function withOptions(base: CopyFormat, options: Partial<CopyFormat>): CopyFormat {
  return { ...base, ...options };
}

describe('decodeCopyRow / encodeCopyRow (text format)', () => {
  const cases: [string, string, (string | null)[]][] = [
    ['plain values', '1\tAda\tada@example.com', ['1', 'Ada', 'ada@example.com']],
    ['NULL marker', '1\t\\N\tx', ['1', null, 'x']],
    ['the text \\N itself', '1\t\\\\N', ['1', '\\N']],
    ['empty values', '\t', ['', '']],
    ['escaped tab, newline, CR, backslash', 'a\\tb\\nc\\rd\\\\e', ['a\tb\nc\rd\\e']],
    ['\\b \\f \\v', '\\b\\f\\v', ['\b\f\v']],
    ['octal and hex escapes', '\\101\\x42\\7', ['AB\x07']],
    ['an escaped other character', '\\q', ['q']],
    ['multi-byte UTF-8', 'é\t日本\t😀', ['é', '日本', '😀']],
  ];
  for (const [label, row, expected] of cases) {
    it(`decodes ${label}`, () => assert.deepEqual(values(row, TEXT), expected));
  }

  const roundTrips: [string, CopyFormat, string][] = [
    ['server escapes', TEXT, '1\ta\\tb\\nc\\rd\\\\e\t\\N\t\\b\\f\\v'],
    ['a custom delimiter escaped in values', withOptions(TEXT, { delimiter: 0x7c }), 'a\\|b|c'],
    ['a custom NULL', withOptions(TEXT, { nullText: b('nil') }), 'nil\tx'],
    ['multi-byte UTF-8', TEXT, 'é\t日本\t😀'],
  ];
  for (const [label, format, row] of roundTrips) {
    it(`re-encodes ${label} byte for byte`, () => {
      assert.equal(encodeCopyRow(decodeCopyRow(b(row), format), format).toString('utf8'), row);
    });
  }

  it('escapes what a masked value brings in (tab, newline, backslash)', () => {
    const row = encodeCopyRow(
      [
        { value: b('a\tb\nc\\d'), quoted: false },
        { value: null, quoted: false },
      ],
      TEXT,
    );
    assert.equal(row.toString(), 'a\\tb\\nc\\\\d\t\\N');
  });
});

describe('decodeCopyRow / encodeCopyRow (CSV)', () => {
  const cases: [string, CopyFormat, string, (string | null)[]][] = [
    ['plain values', CSV, '1,Ada,ada@example.com', ['1', 'Ada', 'ada@example.com']],
    ['NULL is an unquoted empty value', CSV, '1,,""', ['1', null, '']],
    ['quoted delimiter and doubled quote', CSV, '"a,b","say ""hi"""', ['a,b', 'say "hi"']],
    ['a quoted line break', CSV, '"line1\nline2",x', ['line1\nline2', 'x']],
    ['a custom NULL', withOptions(CSV, { nullText: b('NULL') }), 'NULL,"NULL",', [null, 'NULL', '']],
    ['a custom delimiter', withOptions(CSV, { delimiter: 0x3b }), 'a;"b;c"', ['a', 'b;c']],
    [
      'a custom quote and escape',
      withOptions(CSV, { quote: 0x27, escape: 0x5c }),
      "'it\\'s','a\\\\b',\"x\"",
      ["it's", 'a\\b', '"x"'],
    ],
    ['multi-byte UTF-8', CSV, '"é,日本",😀', ['é,日本', '😀']],
  ];
  for (const [label, format, row, expected] of cases) {
    it(`decodes ${label}`, () => assert.deepEqual(values(row, format), expected));
    it(`re-encodes ${label} byte for byte`, () => {
      assert.equal(encodeCopyRow(decodeCopyRow(b(row), format), format).toString('utf8'), row);
    });
  }

  it('quotes a masked value that needs it, and one that equals the NULL marker', () => {
    const row = encodeCopyRow(
      [
        { value: b('a,b'), quoted: false },
        { value: b('say "x"'), quoted: false },
        { value: b(''), quoted: false },
        { value: null, quoted: false },
        { value: b('line\r\n'), quoted: false },
      ],
      CSV,
    );
    assert.equal(row.toString(), '"a,b","say ""x""","",,"line\r\n"');
  });

  it('quotes a single value \\. so it is not the end marker', () => {
    assert.equal(encodeCopyRow([{ value: b('\\.'), quoted: false }], CSV).toString(), '"\\."');
  });

  it('refuses a row that ends inside quotes (ERR_PGPROXY_UNMASKABLE)', () => {
    assert.throws(() => decodeCopyRow(b('"open,x'), CSV), { code: 'ERR_PGPROXY_UNMASKABLE' });
  });
});

describe('CopyRowSplitter', () => {
  const streams: [string, CopyFormat, string[]][] = [
    ['text rows', TEXT, ['1\tada@example.com\n', '2\t\\N\n', '3\ta\\nb\\\\\n']],
    ['CSV rows with quoted line breaks', CSV, ['1,"a\nb"\n', '2,"x ""q""\n,"\n', '3,\n']],
    [
      'CSV with a distinct escape before a quote',
      withOptions(CSV, { escape: 0x5c }),
      ['"a\\"\n",b\n', '"c\\\\",d\n'],
    ],
    ['multi-byte UTF-8', TEXT, ['é\t日本\n', '😀\t\\N\n']],
  ];
  for (const [label, format, rows] of streams) {
    it(`splits ${label} at every cut`, () => {
      const stream = b(rows.join(''));
      for (const [cut, chunks] of chunkings(stream)) {
        const splitter = new CopyRowSplitter(format);
        const out = chunks.flatMap((chunk) => splitter.push(Buffer.from(chunk)));
        assert.deepEqual(
          out.map((r) => r.toString('utf8')),
          rows,
          cut,
        );
        assert.equal(splitter.finish(), undefined, cut);
      }
    });
  }

  it('returns a last row without a line terminator at the end', () => {
    const splitter = new CopyRowSplitter(TEXT);
    assert.deepEqual(splitter.push(b('1\n2')), [b('1\n')]);
    assert.equal(splitter.pending, true);
    assert.deepEqual(splitter.finish(), b('2'));
  });

  it('bounds the bytes held for one row (ERR_PGPROXY_UNMASKABLE)', () => {
    const splitter = new CopyRowSplitter(TEXT, 8);
    splitter.push(b('12345'));
    assert.throws(() => splitter.push(b('6789')), { code: 'ERR_PGPROXY_UNMASKABLE' });
    const csv = new CopyRowSplitter(CSV, 8);
    assert.throws(() => csv.push(b('"1234\n5678\n9')), { code: 'ERR_PGPROXY_UNMASKABLE' });
  });

  it('measures a row without its line terminator', () => {
    assert.equal(rowContentLength(b('ab\n')), 2);
    assert.equal(rowContentLength(b('ab\r\n')), 2);
    assert.equal(rowContentLength(b('ab')), 2);
  });
});
