/** Result planning: per column, by rule, detector and type; once per result shape; COPY TO from its statement. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileSqlGuardrails } from '../../../proxy/guardrails/sql/index.ts';
import { compileMasking, createMasker } from '../../../proxy/masking/index.ts';
import { buildCatalog } from '../../../proxy/pg/catalog.ts';
import type { FieldDescription } from '../../../proxy/pg/protocol/backend-parser.ts';
import { ResultPlanner } from '../../../proxy/pg/result-plan.ts';
import { ColumnOp } from '../../../proxy/pg/row-rewriter.ts';
import { backend } from './protocol/test-buffers.ts';

const CUSTOMERS = 16_400;
const catalog = buildCatalog(
  [
    [String(CUSTOMERS), 'public', 'customers', '1', 'id'],
    [String(CUSTOMERS), 'public', 'customers', '2', 'card'],
    [String(CUSTOMERS), 'public', 'customers', '3', 'email'],
    [String(CUSTOMERS), 'public', 'customers', '4', 'note'],
    ['16500', 'public', 'invoices', '1', 'amount'],
  ],
  0,
);
const COLUMN_RULES = {
  columns: [
    { match: 'customers.card', style: 'last4' },
    { match: 'customers.email', style: 'redact' },
    { match: 'customers.id', style: 'none' },
  ],
};

const field = (
  name: string,
  attnum: number,
  typeOid = 25,
  format = 0,
  tableOid = CUSTOMERS,
): FieldDescription => ({
  name,
  tableOid,
  columnAttribute: attnum,
  typeOid,
  typeSize: -1,
  typeModifier: -1,
  format,
});

function planner(
  masking: unknown = COLUMN_RULES,
  extra: { recordRows?: boolean; onUnknownTable?: () => void } = {},
) {
  return new ResultPlanner({
    masker: createMasker(compileMasking(masking)),
    catalog,
    recordRows: extra.recordRows ?? false,
    onUnknownTable: extra.onUnknownTable,
  });
}

describe('ResultPlanner.plan', () => {
  const fields = [
    field('id', 1, 23),
    field('card', 2),
    field('email', 3),
    field('note', 4),
    field('n', 0, 23, 0, 0),
  ];
  for (const [name, masking, formats, ops] of [
    [
      'column rules by style, detectors on the rest (not on an int4)',
      COLUMN_RULES,
      [],
      [ColumnOp.Skip, ColumnOp.Last4, ColumnOp.Constant, ColumnOp.Scan, ColumnOp.Skip],
    ],
    [
      'a masked column in binary format is nullified (bytes cannot be rewritten)',
      COLUMN_RULES,
      [1],
      [ColumnOp.Skip, ColumnOp.Nullify, ColumnOp.Nullify, ColumnOp.Scan, ColumnOp.Skip],
    ],
    [
      'custom patterns scan every type (a pattern may match anything)',
      { ...COLUMN_RULES, patterns: [{ name: 'ticket', regex: 'T-[0-9]+' }] },
      [],
      [ColumnOp.Skip, ColumnOp.Last4, ColumnOp.Constant, ColumnOp.Scan, ColumnOp.Scan],
    ],
    [
      'per-column formats (binary text is scanned, binary int4 is not)',
      { detectors: { email: 'redact' } },
      [1, 1, 0, 1, 1],
      [ColumnOp.Skip, ColumnOp.Scan, ColumnOp.Scan, ColumnOp.Scan, ColumnOp.Skip],
    ],
  ] as const) {
    it(name, () => {
      const plan = planner(masking).plan(fields, formats);
      assert.deepEqual([...plan!.ops], ops);
    });
  }

  it('labels rule hits by rule and keeps the redaction constant', () => {
    const plan = planner().plan(fields, [])!;
    assert.deepEqual(plan.labels, [null, 'column:customers.card', 'column:customers.email', null, null]);
    assert.equal(plan.constants[2]!.toString(), '[REDACTED]');
    assert.equal(plan.hits.length, 5);
  });

  it('has no plan when nothing needs masking (rows pass untouched), unless rows are recorded', () => {
    const none = {
      detectors: {
        card: 'off',
        email: 'off',
        ssn: 'off',
        iban: 'off',
        phone: 'off',
        jwt: 'off',
        api_key: 'off',
      },
    };
    const off = planner(none);
    assert.equal(off.detectorsOn, false);
    assert.equal(off.plan(fields, []), null);
    assert.deepEqual([...planner(none, { recordRows: true }).plan(fields, [])!.ops], [0, 0, 0, 0, 0]);
  });

  it('reports a table the catalog does not know, once', () => {
    let unknown = 0;
    const p = planner(COLUMN_RULES, { onUnknownTable: () => unknown++ });
    p.plan([field('x', 1, 25, 0, 99_999)], []);
    p.plan([field('y', 1, 25, 0, 99_998)], []);
    assert.equal(unknown, 1);
  });
});

describe('ResultPlanner.planRowDescription', () => {
  it('plans each result shape once per session', () => {
    const p = planner();
    const shape = backend.rowDescription([field('card', 2), field('note', 4)]);
    const first = p.planRowDescription(shape);
    assert.equal(p.planRowDescription(Buffer.from(shape)), first, 'the same bytes: the same plan');
    assert.notEqual(p.planRowDescription(backend.rowDescription([field('note', 4)])), first);
    assert.deepEqual([...first!.ops], [ColumnOp.Last4, ColumnOp.Scan]);
  });
});

describe('ResultPlanner.planCopy', () => {
  const guardrails = compileSqlGuardrails({});
  const reportOf = (sql: string) =>
    guardrails.check(sql, { level: 'read', groups: [], prepared: new Map() }).statements[0]!.report;

  it('plans nothing for what is not a COPY TO STDOUT', () => {
    const p = planner();
    for (const sql of ['select * from customers', 'copy customers from stdin'])
      assert.equal(p.planCopy(reportOf(sql), 'UTF8'), undefined, sql);
  });

  it('needs no plan when the copied table has no masked column', () => {
    assert.deepEqual(planner().planCopy(reportOf('copy invoices to stdout'), 'UTF8'), { plan: null });
  });

  it('plans a COPY TO of a table with masked columns, in an ASCII-safe encoding only', () => {
    const p = planner();
    const planned = p.planCopy(reportOf('copy customers (id, card) to stdout'), 'UTF8');
    assert.ok(planned && 'plan' in planned && planned.plan);
    assert.equal(planned.plan.rules.length, 2);
    assert.match(
      String((p.planCopy(reportOf('copy customers to stdout'), 'SJIS') as { refusal: string }).refusal),
      /client_encoding SJIS cannot be masked by column: use UTF8/,
    );
  });

  it('refuses a COPY TO of a relation it cannot resolve (fail closed), and reports the table once', () => {
    let unknown = 0;
    const p = planner(COLUMN_RULES, { onUnknownTable: () => unknown++ });
    const first = p.planCopy(reportOf('copy secrets to stdout'), 'UTF8');
    const again = p.planCopy(reportOf('copy secrets to stdout'), 'UTF8');
    assert.ok(first && 'refusal' in first);
    assert.deepEqual(again, first);
    assert.equal(unknown, 1);
  });
});
