import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isAsciiSafeEncoding } from '../../../../proxy/guardrails/sql/encodings.ts';

describe('isAsciiSafeEncoding', () => {
  const cases: [string, boolean][] = [
    ['UTF8', true],
    ['LATIN1', true],
    ['EUC_JP', true],
    ['WIN1252', true],
    ['SJIS', false],
    ['Shift_JIS_2004', false],
    ['big5', false],
    ['GBK', false],
    ['UHC', false],
    ['GB18030', false],
    ['JOHAB', false],
    ['SQL_ASCII', true],
    ['utf-8', true],
    ['MULE_INTERNAL', true],
    ['', false],
    ['nonsense', false],
  ];
  for (const [name, safe] of cases) {
    it(`${name}: ${safe ? 'read by bytes' : 'refused'}`, () => assert.equal(isAsciiSafeEncoding(name), safe));
  }
});
