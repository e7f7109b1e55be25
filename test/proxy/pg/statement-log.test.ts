/** The statement log: masked, cut entries; counters; rule hits and sampled rows added to the right statement. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileMasking, createMasker } from '../../../proxy/masking/index.ts';
import { MAX_RECORDED_ROWS, StatementLog } from '../../../proxy/pg/statement-log.ts';
import { backend } from './protocol/test-buffers.ts';

function createLog(inFlight = 0) {
  const entries: { kind: string; data: Record<string, unknown>; at: number }[] = [];
  let now = 1_000;
  const log = new StatementLog({
    masker: createMasker(compileMasking({ detectors: { email: 'redact' } })),
    clock: () => now,
    record: (kind, data, at) => entries.push({ kind, data, at }),
    inFlight: () => inFlight,
  });
  return { log, entries, advance: (ms: number) => (now += ms) };
}

describe('StatementLog', () => {
  it('records a statement masked, with its time, rows and outcome', () => {
    const { log, entries, advance } = createLog();
    const stmt = log.start("select * from people where email = 'ada@example.com'", 'simple', undefined)!;
    stmt.rows = 3;
    advance(25);
    log.record(stmt, 'skipped');
    assert.deepEqual(entries, [
      {
        kind: 'statement',
        data: {
          sql: "select * from people where email = '[REDACTED:email]'",
          protocol: 'simple',
          ms: 25,
          rows: 3,
          outcome: 'skipped',
        },
        at: 1_025,
      },
    ]);
    assert.equal(log.stats.statements, 1);
  });

  it('records a blocked statement as `blocked`, with its rule', () => {
    const { log, entries } = createLog();
    const verdict = { action: 'block' as const, rule: 'drop-table', statements: [] };
    log.record(log.start('drop table t', 'extended', verdict), 'blocked');
    assert.equal(entries[0]!.kind, 'blocked');
    assert.deepEqual(entries[0]!.data.verdict, { action: 'block', rule: 'drop-table' });
  });

  it('cuts long text before masking and keeping it', () => {
    const { log } = createLog();
    const recorded = log.recordedSql(`select '${'x'.repeat(5_000)}'`);
    assert.equal(recorded.length, 4_001);
    assert.ok(recorded.endsWith('…'));
  });

  it('records parameters masked, cut, NULL and binary by size, at most 32', () => {
    const { log } = createLog();
    const values = [Buffer.from('ada@example.com'), null, Buffer.from([1, 2, 3]), Buffer.alloc(300, 0x61)];
    assert.deepEqual(log.maskParams(values, [0, 0, 1, 0]), [
      '[REDACTED:email]',
      'NULL',
      '<binary 3 bytes>',
      'a'.repeat(200),
    ]);
    assert.equal(
      log.maskParams(
        Array.from({ length: 40 }, () => Buffer.from('1')),
        [],
      ).length,
      32,
    );
  });

  it('counts but keeps no details past 100,000 statements awaiting replies (bounded memory)', () => {
    const { log } = createLog(100_000);
    assert.equal(log.start('select 1', 'simple', undefined), undefined);
    assert.equal(log.stats.statements, 1);
  });

  it('adds masking counts to the session and to the statement they belong to', () => {
    const { log, entries } = createLog();
    const stmt = log.start('select 1', 'simple', undefined)!;
    log.count({ email: 2 }, stmt);
    log.count({ email: 1 }, undefined);
    log.record(stmt);
    assert.deepEqual(entries[0]!.data.masked, { email: 2 });
    assert.deepEqual(log.stats.masked, { email: 3 });
  });

  it('adds pending rule hits to the statement recorded next, once', () => {
    const { log, entries } = createLog();
    const plan = {
      ops: new Uint8Array(2),
      rules: [],
      constants: [],
      labels: ['column:customers.card', null],
      hits: Int32Array.from([4, 0]),
      hitCount: 4,
    };
    log.hitPlans.push(plan);
    log.record(log.start('select card from customers', 'simple', undefined));
    log.record(log.start('select 2', 'simple', undefined));
    assert.deepEqual(entries[0]!.data.masked, { 'column:customers.card': 4 });
    assert.equal(entries[1]!.data.masked, undefined);
    assert.deepEqual([...plan.hits], [0, 0]);
    assert.equal(plan.hitCount, 0);
  });

  it(`samples at most ${MAX_RECORDED_ROWS} rows of a statement, as sent`, () => {
    const { log, entries } = createLog();
    const stmt = log.start('select', 'simple', undefined)!;
    const row = backend.dataRow(['[REDACTED:email]', null]);
    let more = true;
    let taken = 0;
    while (more) {
      more = log.sampleRow(stmt, row, 0, row.length);
      taken++;
    }
    assert.equal(taken, MAX_RECORDED_ROWS);
    assert.equal(log.sampleRow(stmt, row, 0, row.length), false);
    log.record(stmt);
    const result = entries[0]!.data.result as string[][];
    assert.equal(result.length, MAX_RECORDED_ROWS);
    assert.deepEqual(result[0], ['[REDACTED:email]', 'NULL']);
  });
});
