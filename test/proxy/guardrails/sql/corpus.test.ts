/**
 * Issue 16's corpus over the analysis API: every dangerous statement is refused or held naming
 * its rule, every ordinary one passes. The relay's part (catalog, function bodies, estimates,
 * session tracking) is played by stand-ins built from the corpus data; phase B runs the same
 * cases through the proxy with real psql.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  advanceSession,
  type CheckContext,
  compileSqlGuardrails,
  type EstimateRequest,
  type RelationCatalog,
  type RoutineResolver,
  type RowEstimator,
  type SqlGuardrails,
} from '../../../../proxy/guardrails/sql/index.ts';
import {
  CORPUS_CATALOG,
  CORPUS_GUARDRAILS,
  CORPUS_LEVEL,
  type CorpusEstimate,
  DANGEROUS,
  ORDINARY,
} from './corpus.ts';

const catalog: RelationCatalog = {
  hasRelation: (schema, name) => CORPUS_CATALOG.relations[schema]?.includes(name) ?? false,
  notNullColumns: (schema, name) => {
    const columns = CORPUS_CATALOG.notNull[`${schema}.${name}`];
    return columns ? new Set(columns) : undefined;
  },
};

const routines: RoutineResolver = {
  lookup: (name, schemas) =>
    CORPUS_CATALOG.routines.filter(
      (r) => r.name === name.name && (name.schema ? r.schema === name.schema : schemas.includes(r.schema)),
    ),
};

/** Plays the relay's EXPLAIN: the case's estimate for every relation the request writes. */
function estimatorFor(estimate: CorpusEstimate | undefined, seen: EstimateRequest[]): RowEstimator {
  return {
    async estimate(request) {
      seen.push(request);
      if (estimate === null) return undefined;
      const { rows, tableRows } = estimate ?? { rows: 1, tableRows: 100 };
      return request.writes.map((w) => ({
        relation: { schema: w.schema ?? 'public', name: w.name },
        rows,
        tableRows,
      }));
    },
  };
}

/** Runs `before` as the relay would (checked, then tracked), and returns the session for `sql`. */
function sessionAfter(guard: SqlGuardrails, before: readonly string[] | undefined): CheckContext {
  let ctx: CheckContext = { level: CORPUS_LEVEL, groups: [], catalog, routines };
  for (const sql of before ?? []) {
    const verdict = guard.check(sql, ctx);
    assert.equal(verdict.action, 'allow', `setup ${sql}: ${verdict.rule}`);
    ctx = {
      ...ctx,
      ...advanceSession(
        ctx,
        verdict.statements.map((s) => s.report),
      ),
    };
  }
  return ctx;
}

describe('issue 16 corpus: dangerous statements are refused or held, naming their rule', () => {
  const guard = compileSqlGuardrails(CORPUS_GUARDRAILS);
  it('has at least 40 cases covering every class', () => {
    assert.ok(DANGEROUS.length >= 40);
    const classes = new Set(DANGEROUS.map((c) => c.class));
    for (const c of [
      'nested',
      'sql-function',
      'no-filter',
      'blast-radius',
      'persistent-object',
      'destructive-ddl',
      'names',
    ]) {
      assert.ok(classes.has(c as never), c);
    }
  });
  for (const c of DANGEROUS) {
    it(`${c.class}: ${c.sql} → ${c.action} (${c.rule})`, async () => {
      const ctx = sessionAfter(guard, c.before);
      const verdict = await guard.checkWithEstimator(c.sql, ctx, estimatorFor(c.estimate, []));
      assert.equal(verdict.rule, c.rule, verdict.message);
      assert.equal(verdict.action, c.action);
      assert.ok(verdict.message);
      assert.equal(verdict.pendingEstimates, undefined);
    });
  }
});

describe('issue 16 corpus: ordinary work passes', () => {
  const guard = compileSqlGuardrails(CORPUS_GUARDRAILS);
  it('has at least 25 cases', () => assert.ok(ORDINARY.length >= 25));
  for (const c of ORDINARY) {
    it(c.sql, async () => {
      const ctx = sessionAfter(guard, c.before);
      const verdict = await guard.checkWithEstimator(c.sql, ctx, estimatorFor(c.estimate, []));
      assert.equal(verdict.action, 'allow', `${verdict.rule}: ${verdict.message}`);
    });
  }
});

describe('blast-radius estimates', () => {
  const guard = compileSqlGuardrails(CORPUS_GUARDRAILS);
  const ctx: CheckContext = { level: CORPUS_LEVEL, groups: [] };
  it('asks for estimates for writes only, EXPLAINing the statement (the inner one of EXPLAIN ANALYZE)', () => {
    assert.equal(guard.check('SELECT * FROM events', ctx).pendingEstimates, undefined);
    const pending = guard.check('DELETE FROM events WHERE id > 10', ctx).pendingEstimates;
    assert.deepEqual(
      pending?.map((r) => r.sql),
      ['DELETE FROM events WHERE id > 10'],
    );
    const explain = guard.check(
      'EXPLAIN ANALYZE UPDATE events SET kind = $$x$$ WHERE id > 10',
      ctx,
    ).pendingEstimates;
    assert.deepEqual(
      explain?.map((r) => r.sql),
      ["UPDATE events SET kind = 'x' WHERE id > 10"],
    );
    const body = guard.check('DO $$ BEGIN DELETE FROM events WHERE id > 10; END $$', ctx).pendingEstimates;
    assert.deepEqual(
      body?.map((r) => r.sql),
      ['DELETE FROM events WHERE id > 10'],
    );
  });
  it('does not estimate what runs later (PREPARE) or what is already refused', () => {
    assert.equal(
      guard.check('PREPARE p AS DELETE FROM events WHERE id > $1', ctx).pendingEstimates,
      undefined,
    );
    assert.equal(guard.check('DELETE FROM events', ctx).pendingEstimates, undefined);
  });
  const limits: [string, { rows: number; tableRows?: number }, string][] = [
    ['over 100,000 rows', { rows: 100_001, tableRows: 10_000_000 }, 'review'],
    ['100,000 rows of a big table', { rows: 100_000, tableRows: 10_000_000 }, 'allow'],
    ['more than half of a 2,000-row table', { rows: 1_001, tableRows: 2_000 }, 'review'],
    [
      'all of a 1,000-row table (small tables are not judged by fraction)',
      { rows: 1_000, tableRows: 1_000 },
      'allow',
    ],
    ['half of an unknown-size table', { rows: 500 }, 'allow'],
  ];
  for (const [label, estimate, action] of limits) {
    it(`default limit: ${label} → ${action}`, () => {
      const verdict = guard.check('UPDATE events SET kind = $$x$$ WHERE id > 10', ctx);
      const settled = guard.applyEstimates(
        verdict,
        new Map([[0, [{ relation: { schema: 'public', name: 'events' }, ...estimate }]]]),
      );
      assert.equal(settled.action, action);
      if (action === 'review') assert.match(settled.message!, /estimated \d+ rows/);
    });
  }
  it('a failed estimate is held (unestimated: match) unless the rule skips it', () => {
    const verdict = guard.check('DELETE FROM events WHERE id > 10', ctx);
    assert.equal(guard.applyEstimates(verdict, new Map()).rule, 'blast-radius');
    const lenient = compileSqlGuardrails({ adjust: [{ rule: 'blast-radius', unestimated: 'skip' }] });
    const v2 = lenient.check('DELETE FROM events WHERE id > 10', ctx);
    assert.equal(lenient.applyEstimates(v2, new Map()).action, 'allow');
  });
  it('a level can raise the limit, turn it into a block, or disable it', () => {
    const guardrails = compileSqlGuardrails({
      adjust: [
        { rule: 'blast-radius', levels: ['owner'], max_rows: { rows: 1_000_000 } },
        { rule: 'blast-radius', levels: ['write'], action: 'block' },
      ],
      disable: [{ rule: 'blast-radius', levels: ['migrate'] }],
    });
    const big = [{ relation: { name: 'events' }, rows: 200_000, tableRows: 10_000_000 }];
    const settle = (level: string) => {
      const v = guardrails.check('DELETE FROM events WHERE id > 10', { level, groups: [] });
      return guardrails.applyEstimates(v, new Map([[0, big]])).action;
    };
    assert.equal(settle('owner'), 'allow');
    assert.equal(settle('write'), 'block');
    assert.equal(settle('read'), 'review');
    assert.equal(settle('migrate'), 'allow');
  });
  it('custom rules take max_rows as a number or {rows, fraction, min_table_rows}', () => {
    const guardrails = compileSqlGuardrails({
      disable: ['blast-radius'],
      rules: [
        {
          name: 'few-invoices',
          match: { kinds: ['delete'], relations: ['invoices'] },
          action: 'block',
          max_rows: 10,
        },
        {
          name: 'tenth-of-notes',
          match: { kinds: ['update'], relations: ['notes'] },
          action: 'block',
          max_rows: { fraction: 0.1, min_table_rows: 100 },
        },
      ],
    });
    const run = (sql: string, relation: string, rows: number, tableRows: number) =>
      guardrails.applyEstimates(
        guardrails.check(sql, ctx),
        new Map([[0, [{ relation: { name: relation }, rows, tableRows }]]]),
      );
    assert.equal(run('DELETE FROM invoices WHERE id > 1', 'invoices', 11, 1e6).rule, 'few-invoices');
    assert.equal(run('DELETE FROM invoices WHERE id > 1', 'invoices', 10, 1e6).action, 'allow');
    assert.equal(run("UPDATE notes SET body = 'x' WHERE id > 1", 'notes', 11, 100).action, 'allow');
    assert.equal(run("UPDATE notes SET body = 'x' WHERE id > 1", 'notes', 12, 101).rule, 'tenth-of-notes');
  });
});
