import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type ColumnStyle,
  compileColumnRule,
  type ResultColumn,
  resolveColumnRules,
  type TableName,
} from '../../../proxy/masking/columns.ts';
import { MaskingConfigError } from '../../../proxy/masking/errors.ts';

const CUSTOMERS = 16401;
const BILLING_CUSTOMERS = 16402;
const ORDERS = 16403;

const tables = new Map<number, TableName>([
  [CUSTOMERS, { schema: 'public', table: 'customers' }],
  [BILLING_CUSTOMERS, { schema: 'billing', table: 'customers' }],
  [ORDERS, { schema: 'public', table: 'Orders' }],
]);
const attributeNames = new Map<number, Map<number, string>>([
  [
    CUSTOMERS,
    new Map([
      [1, 'id'],
      [2, 'email'],
      [3, 'card_number'],
      [4, 'work_email'],
    ]),
  ],
  [BILLING_CUSTOMERS, new Map([[2, 'email']])],
  [
    ORDERS,
    new Map([
      [1, 'id'],
      [2, 'Card_Number'],
    ]),
  ],
]);

function rules(...specs: [string, ColumnStyle][]) {
  return specs.map(([match, style], i) => compileColumnRule(match, style, `masking.columns[${i}].match`));
}

function resolve(ruleSpecs: [string, ColumnStyle][], columns: ResultColumn[]): (string | null)[] {
  return resolveColumnRules(rules(...ruleSpecs), tables, columns, attributeNames).map(
    (r) => r?.match ?? null,
  );
}

const col = (tableOid: number, attnum: number, name: string): ResultColumn => ({ tableOid, attnum, name });

describe('resolveColumnRules', () => {
  const cases: [string, [string, ColumnStyle][], ResultColumn[], (string | null)[]][] = [
    [
      'table.column in any schema',
      [['customers.email', 'hash']],
      [col(CUSTOMERS, 1, 'id'), col(CUSTOMERS, 2, 'email'), col(BILLING_CUSTOMERS, 2, 'email')],
      [null, 'customers.email', 'customers.email'],
    ],
    [
      'schema.table.column',
      [['billing.customers.email', 'redact']],
      [col(CUSTOMERS, 2, 'email'), col(BILLING_CUSTOMERS, 2, 'email')],
      [null, 'billing.customers.email'],
    ],
    [
      '*.column across tables, case-insensitively',
      [['*.card_number', 'last4']],
      [col(CUSTOMERS, 3, 'card_number'), col(ORDERS, 2, 'Card_Number'), col(ORDERS, 1, 'id')],
      ['*.card_number', '*.card_number', null],
    ],
    [
      'schema.table.* for every column',
      [['public.customers.*', 'redact']],
      [col(CUSTOMERS, 1, 'id'), col(CUSTOMERS, 2, 'email'), col(BILLING_CUSTOMERS, 2, 'email')],
      ['public.customers.*', 'public.customers.*', null],
    ],
    [
      'a glob inside a segment',
      [['*_email', 'hash']],
      [col(CUSTOMERS, 2, 'email'), col(CUSTOMERS, 4, 'work_email')],
      [null, '*_email'],
    ],
    [
      'an alias does not hide the real column',
      [['customers.email', 'hash']],
      [col(CUSTOMERS, 2, 'contact')],
      ['customers.email'],
    ],
    [
      'an output name matching a rule is masked too',
      [['customers.email', 'hash']],
      [col(CUSTOMERS, 1, 'email')],
      ['customers.email'],
    ],
    [
      'computed columns match only rules with wildcard schema and table',
      [
        ['customers.email', 'hash'],
        ['*.card_number', 'last4'],
      ],
      [col(0, 0, 'email'), col(0, 0, 'card_number'), col(0, 0, '?column?')],
      [null, '*.card_number', null],
    ],
    [
      'a bare column name matches computed columns',
      [['email', 'redact']],
      [col(0, 0, 'EMAIL'), col(CUSTOMERS, 2, 'x')],
      ['email', 'email'],
    ],
    [
      'an unknown table OID is treated like a computed column',
      [['customers.email', 'hash']],
      [col(99999, 2, 'email')],
      [null],
    ],
    [
      'the first matching rule wins',
      [
        ['public.customers.email', 'none'],
        ['*.*', 'redact'],
      ],
      [col(CUSTOMERS, 2, 'email'), col(CUSTOMERS, 1, 'id')],
      ['public.customers.email', '*.*'],
    ],
    ['no rules', [], [col(CUSTOMERS, 2, 'email')], [null]],
  ];
  for (const [what, ruleSpecs, columns, expected] of cases) {
    it(what, () => assert.deepEqual(resolve(ruleSpecs, columns), expected));
  }

  it('keeps the style of the rule it returns', () => {
    const [rule] = resolveColumnRules(
      rules(['customers.email', 'hash']),
      tables,
      [col(CUSTOMERS, 2, 'email')],
      attributeNames,
    );
    assert.equal(rule?.style, 'hash');
  });
});

describe('compileColumnRule', () => {
  for (const bad of ['', 'a..b', 'a.b.c.d', 'cust omers.email', 'customers.email;drop', '.email']) {
    it(`refuses ${JSON.stringify(bad)}`, () => {
      assert.throws(
        () => compileColumnRule(bad, 'redact', 'masking.columns[3].match'),
        (e: unknown) =>
          e instanceof MaskingConfigError &&
          e.code === 'ERR_MASKING_CONFIG' &&
          e.path === 'masking.columns[3].match',
      );
    });
  }
});
