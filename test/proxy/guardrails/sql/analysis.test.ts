/**
 * The analysis behind the guardrails: operations found in nested statements, filters that keep
 * every row (and those that do not), names resolved with the session's search_path, temporary
 * objects and catalog, search_path changes reported, and the configuration of the new options.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  advanceSession,
  type CheckContext,
  classify,
  compileSqlGuardrails,
  parseQualifiedName,
  parseSearchPathValue,
  SqlGuardError,
} from '../../../../proxy/guardrails/sql/index.ts';

const ctx: CheckContext = { level: 'write', groups: [] };

describe('operations', () => {
  it('lists every statement a query executes, with what it writes and reads', () => {
    const [report] = classify(
      'WITH d AS (DELETE FROM sessions USING customers WHERE sessions.owner = customers.id RETURNING 1) SELECT * FROM d',
    );
    const ops = report!.operations.map((op) => [
      op.kind,
      op.origin,
      op.writes.map((w) => w.name),
      op.reads.map((r) => r.name),
    ]);
    assert.deepEqual(ops, [
      ['select', 'statement', [], ['d']],
      ['delete', 'cte', ['sessions'], ['customers']],
    ]);
  });
  it('gives each MERGE action its own operation and filter', () => {
    const [report] = classify(
      'MERGE INTO t USING s ON t.id = s.id WHEN MATCHED AND t.x > 1 THEN DELETE WHEN MATCHED THEN UPDATE SET x = 1 WHEN NOT MATCHED THEN INSERT VALUES (1)',
    );
    assert.deepEqual(
      report!.operations.map((op) => [op.kind, op.filter?.kind]),
      [
        ['merge', undefined],
        ['delete', 'filtered'],
        ['update', 'filtered'],
        ['insert', undefined],
      ],
    );
  });
  it('does not run what plain EXPLAIN plans', () => {
    assert.deepEqual(
      classify('EXPLAIN DELETE FROM t')[0]!.operations.map((op) => op.kind),
      ['explain'],
    );
  });
});

describe('filters', () => {
  const keepsAll = [
    'DELETE FROM t',
    'DELETE FROM t WHERE true',
    "DELETE FROM t WHERE 'a' = 'a'",
    'DELETE FROM t WHERE x = x AND y >= y',
    'DELETE FROM t WHERE x IS NOT DISTINCT FROM x',
    'DELETE FROM t WHERE NOT (1 = 2)',
    'DELETE FROM t WHERE (SELECT count(*) FROM u) > 0',
    'DELETE FROM t WHERE EXISTS (SELECT 1 FROM u WHERE u.a = 1)',
    'DELETE FROM t a USING u b WHERE b.x = b.y',
    'UPDATE t SET x = 1 FROM u WHERE u.id = 7',
    'DELETE FROM t WHERE $1',
  ];
  for (const sql of keepsAll) {
    it(`no filter: ${sql}`, () =>
      assert.equal(classify(sql)[0]!.operations.at(-1)!.filter?.kind, 'unfiltered'));
  }
  const filtered = [
    'DELETE FROM t WHERE id = 1',
    'DELETE FROM t WHERE false',
    'DELETE FROM t WHERE 1 = 0 OR false',
    'DELETE FROM t WHERE random() < 0.5',
    'DELETE FROM t WHERE EXISTS (SELECT 1 FROM u WHERE u.t_id = t.id)',
    'DELETE FROM t WHERE id IN (SELECT t_id FROM u)',
    'DELETE FROM t x USING u WHERE x.id = u.id',
    'UPDATE t SET a = 1 WHERE CURRENT OF c',
  ];
  for (const sql of filtered) {
    it(`real filter: ${sql}`, () =>
      assert.equal(classify(sql)[0]!.operations.at(-1)!.filter?.kind, 'filtered'));
  }
  it('IS NOT NULL keeps every row only on a NOT NULL column (catalog)', () => {
    const guard = compileSqlGuardrails({});
    const catalog = {
      notNullColumns: (s: string, n: string) => (s === 'public' && n === 't' ? new Set(['id']) : undefined),
    };
    assert.equal(
      guard.check('DELETE FROM t WHERE id IS NOT NULL', { ...ctx, catalog }).rule,
      'delete-without-where',
    );
    assert.equal(guard.check('DELETE FROM t WHERE note IS NOT NULL', { ...ctx, catalog }).action, 'allow');
    assert.equal(guard.check('DELETE FROM t WHERE id IS NOT NULL', ctx).action, 'allow');
  });
});

describe('names', () => {
  const guard = compileSqlGuardrails({
    rules: [
      { name: 'no-salaries', match: { relations: ['payroll.salaries'] }, action: 'block' },
      { name: 'no-quoted', match: { relations: ['"Audit"."Log"'] }, action: 'block' },
      { name: 'no-now', match: { functions: ['pg_catalog.now'] }, action: 'block' },
    ],
  });
  it('reads rule names as SQL identifiers', () => {
    assert.equal(guard.check('SELECT * FROM "Audit"."Log"', ctx).rule, 'no-quoted');
    assert.equal(guard.check('SELECT * FROM audit.log', ctx).action, 'allow');
    assert.deepEqual(parseQualifiedName('Payroll."Salaries"'), { schema: 'payroll', name: 'Salaries' });
    assert.equal(parseQualifiedName('a.'), undefined);
  });
  it('resolves unqualified names in the session search_path', () => {
    assert.equal(guard.check('SELECT * FROM salaries', ctx).action, 'allow');
    assert.equal(
      guard.check('SELECT * FROM salaries', { ...ctx, searchPath: ['payroll'] }).rule,
      'no-salaries',
    );
    assert.equal(
      guard.check('SELECT * FROM salaries', { ...ctx, searchPath: 'unknown' }).rule,
      'no-salaries',
    );
    const catalog = { hasRelation: (s: string, n: string) => s === 'public' && n === 'salaries' };
    assert.equal(
      guard.check('SELECT * FROM salaries', { ...ctx, searchPath: ['public', 'payroll'], catalog }).action,
      'allow',
    );
  });
  it('searches pg_catalog first for unqualified functions unless the path lists it later', () => {
    assert.equal(guard.check('SELECT now()', ctx).rule, 'no-now');
    assert.equal(guard.check('SELECT now()', { ...ctx, searchPath: ['app', 'pg_catalog'] }).rule, 'no-now');
    assert.equal(guard.check('SELECT app.now()', ctx).action, 'allow');
  });
  it('reports search_path changes with their value when constant', () => {
    const change = (sql: string) => classify(sql).at(-1)!.searchPath;
    assert.deepEqual(change('SET search_path = payroll, "Public"'), {
      value: ['payroll', 'Public'],
      local: false,
    });
    assert.deepEqual(change('SET LOCAL search_path TO DEFAULT'), { value: 'default', local: true });
    assert.deepEqual(change('RESET search_path'), { value: 'default', local: false });
    assert.deepEqual(change("SELECT set_config('search_path', 'a, \"B\"', true)"), {
      value: ['a', 'B'],
      local: true,
    });
    assert.deepEqual(change("SELECT set_config('search_path', current_user, false)"), {
      value: 'unknown',
      local: false,
    });
    assert.deepEqual(change('DISCARD ALL'), { value: 'default', local: false });
    assert.equal(change('SET work_mem = 1'), undefined);
    assert.deepEqual(parseSearchPathValue('"$user", public'), ['$user', 'public']);
  });
  it('tracks the session: search_path, temporary relations, prepared statements', () => {
    const verdict = compileSqlGuardrails({}).check(
      'SET search_path = app; CREATE TEMP TABLE t1 (a int); CREATE TEMP VIEW v1 AS SELECT 1; PREPARE p AS SELECT 1',
      ctx,
    );
    const next = advanceSession(
      ctx,
      verdict.statements.map((s) => s.report),
    );
    assert.deepEqual(next.searchPath, ['app']);
    assert.deepEqual([...next.tempRelations].sort(), ['t1', 'v1']);
    assert.ok(next.prepared.has('p'));
    const after = advanceSession(next, classify('DISCARD ALL; RESET search_path'));
    assert.equal(after.tempRelations.size, 0);
    assert.deepEqual(after.searchPath, ['$user', 'public']);
  });
});

describe('temporary objects', () => {
  const guard = compileSqlGuardrails({});
  it("lets the session drop and alter its own temporary objects, nobody else's", () => {
    const temp = { ...ctx, tempRelations: new Set(['scratch']) };
    assert.equal(guard.check('DROP TABLE scratch', temp).action, 'allow');
    assert.equal(guard.check('DROP TABLE pg_temp.anything', ctx).action, 'allow');
    assert.equal(guard.check('DROP TABLE public.scratch', temp).rule, 'drop-table');
    assert.equal(guard.check('DROP TABLE scratch, customers', temp).rule, 'drop-table');
    assert.equal(
      guard.check('DROP TABLE scratch', { ...temp, searchPath: ['public', 'pg_temp'] }).rule,
      'drop-table',
    );
    assert.equal(guard.check('ALTER TABLE scratch DROP COLUMN a', temp).action, 'allow');
    assert.equal(
      guard.check('CREATE TRIGGER x BEFORE INSERT ON scratch FOR EACH ROW EXECUTE FUNCTION f()', temp).action,
      'allow',
    );
    assert.equal(
      guard.check('CREATE TRIGGER x BEFORE INSERT ON customers FOR EACH ROW EXECUTE FUNCTION f()', temp).rule,
      'persistent-object',
    );
  });
});

describe('configuration of the new options', () => {
  const bad: [unknown, string][] = [
    [{ adjust: [{ rule: 'no-such' }] }, 'guardrails.adjust.0.rule'],
    [{ adjust: [{ rule: 'truncate', max_rows: 5 }] }, 'guardrails.adjust.0'],
    [{ adjust: [{ rule: 'truncate', action: 'block', timeout: '1m' }] }, 'guardrails.adjust.0.timeout'],
    [
      { rules: [{ name: 'x', match: { kinds: ['delete'] }, action: 'block', unestimated: 'skip' }] },
      'guardrails.rules.0.unestimated',
    ],
    [
      {
        rules: [
          { name: 'x', match: { kinds: ['delete'] }, action: 'block', max_rows: { min_table_rows: 3 } },
        ],
      },
      'guardrails.rules.0.max_rows',
    ],
    [
      { rules: [{ name: 'x', match: { kinds: ['delete'] }, action: 'block', max_rows: { fraction: 2 } }] },
      'guardrails.rules.0.max_rows',
    ],
    [
      { rules: [{ name: 'x', match: { relations: ['a b'] }, action: 'block' }] },
      'guardrails.rules.0.match.relations.0',
    ],
  ];
  for (const [config, path] of bad) {
    it(`refuses ${JSON.stringify(config)} at ${path}`, () => {
      assert.throws(
        () => compileSqlGuardrails(config),
        (e: unknown) =>
          e instanceof SqlGuardError &&
          e.code === 'ERR_SQLGUARD_CONFIG_INVALID' &&
          e.message.startsWith(path),
      );
    });
  }
  it('lets a level hold a persistent object for review instead of refusing it', () => {
    const guard = compileSqlGuardrails({
      adjust: [{ rule: 'persistent-object', levels: ['owner'], action: 'review', timeout: '10m' }],
    });
    const sql = 'CREATE PUBLICATION p FOR TABLE t';
    const held = guard.check(sql, { level: 'owner', groups: [] });
    assert.deepEqual([held.action, held.rule, held.timeoutMs], ['review', 'persistent-object', 600_000]);
    assert.equal(guard.check(sql, ctx).action, 'block');
  });
});
