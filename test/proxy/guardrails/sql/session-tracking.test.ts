/**
 * The session tracking the relay applies after a text ran (advanceSession) and the threading of a
 * text's own changes into its later statements: transaction blocks (SET LOCAL undone at the end,
 * plain SET and temporary tables undone by ROLLBACK, ROLLBACK TO SAVEPOINT making a changed path
 * unknown), dropped and renamed temporary relations, ON COMMIT DROP, DEALLOCATE, and what a text
 * changes besides rows (Verdict.impact). Also the texts EXPLAINed for EXECUTE.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  advanceSession,
  type CheckContext,
  classify,
  compileSqlGuardrails,
  type TrackedSession,
} from '../../../../proxy/guardrails/sql/index.ts';

const ctx: CheckContext = { level: 'write', groups: [] };

/** Runs texts one after another as the relay does, returning the session after the last. */
function run(...texts: string[]): TrackedSession & CheckContext {
  let session: CheckContext = ctx;
  for (const text of texts) {
    const { transaction: _, ...rest } = session;
    session = { ...rest, ...advanceSession(session, classify(text)) };
  }
  return session as TrackedSession & CheckContext;
}

describe('transaction blocks', () => {
  it('SET LOCAL lasts until the block ends; plain SET survives COMMIT', () => {
    const inside = run('BEGIN', 'SET LOCAL search_path = payroll');
    assert.deepEqual(inside.searchPath, ['payroll']);
    assert.ok(inside.transaction);
    assert.deepEqual(run('BEGIN', 'SET LOCAL search_path = payroll', 'COMMIT').searchPath, [
      '$user',
      'public',
    ]);
    assert.deepEqual(run('BEGIN', 'SET search_path = payroll', 'COMMIT').searchPath, ['payroll']);
    assert.equal(run('BEGIN', 'COMMIT').transaction, undefined);
  });
  it('SET LOCAL in a multi-statement text outside a block lasts until the text ends', () => {
    const guard = compileSqlGuardrails({
      rules: [{ name: 'no-pay', match: { relations: ['payroll.salaries'] }, action: 'block' }],
    });
    assert.equal(guard.check('SET LOCAL search_path = payroll; SELECT * FROM salaries', ctx).rule, 'no-pay');
    assert.deepEqual(run("SELECT set_config('search_path', 'payroll', true); SELECT 1").searchPath, [
      '$user',
      'public',
    ]);
  });
  it('ROLLBACK undoes plain SET and the temporary relations created in the block, restores dropped ones', () => {
    const before = run('CREATE TEMP TABLE kept (a int)');
    const after = run(
      'CREATE TEMP TABLE kept (a int)',
      'BEGIN',
      'SET search_path = payroll',
      'CREATE TEMP TABLE gone (a int)',
      'DROP TABLE kept',
      'ROLLBACK',
    );
    assert.deepEqual(after.searchPath, before.searchPath);
    assert.deepEqual([...after.tempRelations], ['kept']);
    assert.equal(after.transaction, undefined);
  });
  it('ROLLBACK in the same text as the changes is followed too', () => {
    const guard = compileSqlGuardrails({});
    const verdict = guard.check('BEGIN; CREATE TEMP TABLE t (a int); ROLLBACK; DROP TABLE t', ctx);
    assert.equal(verdict.rule, 'drop-table', 'after ROLLBACK, t is no temporary table of the session');
    assert.equal(
      guard.check('BEGIN; CREATE TEMP TABLE t (a int); COMMIT; DROP TABLE t', ctx).action,
      'allow',
    );
  });
  it('ROLLBACK TO SAVEPOINT makes a path changed in the block unknown and forgets relations created in it', () => {
    const after = run(
      'CREATE TEMP TABLE kept (a int)',
      'BEGIN',
      'SAVEPOINT s',
      'SET search_path = payroll',
      'CREATE TEMP TABLE maybe (a int)',
      'ROLLBACK TO SAVEPOINT s',
    );
    assert.equal(after.searchPath, 'unknown');
    assert.deepEqual([...after.tempRelations], ['kept']);
    const unchanged = run('BEGIN', 'SAVEPOINT s', 'SELECT 1', 'ROLLBACK TO s');
    assert.deepEqual(unchanged.searchPath, ['$user', 'public']);
  });
  it('COMMIT AND CHAIN opens the next block at once', () => {
    const after = run('BEGIN', 'SET LOCAL search_path = x', 'COMMIT AND CHAIN');
    assert.ok(after.transaction);
    assert.deepEqual(after.searchPath, ['$user', 'public']);
  });
});

describe('temporary relations', () => {
  it('a dropped or renamed temporary relation leaves the set (DROP TABLE x must not reach a permanent x)', () => {
    const guard = compileSqlGuardrails({});
    const dropped = run('CREATE TEMP TABLE x (a int)', 'DROP TABLE x');
    assert.equal(dropped.tempRelations.size, 0);
    assert.equal(guard.check('DROP TABLE x', { ...ctx, ...dropped }).rule, 'drop-table');
    const renamed = run('CREATE TEMP TABLE x (a int)', 'ALTER TABLE x RENAME TO y');
    assert.deepEqual([...renamed.tempRelations], ['y']);
    assert.equal(guard.check('DROP TABLE x', { ...ctx, ...renamed }).rule, 'drop-table');
    assert.equal(guard.check('DROP TABLE y', { ...ctx, ...renamed }).action, 'allow');
    // Dropping a permanent relation of the same name leaves the temporary one alone.
    assert.deepEqual([...run('CREATE TEMP TABLE z (a int)', 'DROP TABLE public.z').tempRelations], ['z']);
  });
  it('tables created ON COMMIT DROP are not kept', () => {
    assert.equal(run('CREATE TEMP TABLE x (a int) ON COMMIT DROP').tempRelations.size, 0);
    assert.equal(run('CREATE TEMP TABLE y ON COMMIT DROP AS SELECT 1').tempRelations.size, 0);
    assert.equal(run('CREATE TEMP TABLE w AS SELECT 1').tempRelations.size, 1);
  });
});

describe('prepared statements', () => {
  it('DEALLOCATE forgets one or all', () => {
    const prepared = run('PREPARE a AS SELECT 1', 'PREPARE b AS SELECT 2');
    assert.deepEqual(
      [...run('PREPARE a AS SELECT 1', 'PREPARE b AS SELECT 2', 'DEALLOCATE a').prepared.keys()],
      ['b'],
    );
    assert.equal(prepared.prepared.size, 2);
    assert.equal(run('PREPARE a AS SELECT 1', 'DEALLOCATE ALL').prepared.size, 0);
  });
  it('EXECUTE is estimated with EXPLAIN EXECUTE, or with the body when prepared in the same text', () => {
    const guard = compileSqlGuardrails({});
    const session = run('PREPARE del(int) AS DELETE FROM events WHERE id > $1');
    const later = guard.check('EXECUTE del(10)', { ...ctx, ...session });
    assert.deepEqual(
      later.pendingEstimates?.map((r) => r.sql),
      ['EXECUTE del(10)'],
    );
    const same = guard.check(
      "PREPARE d2(int, text) AS DELETE FROM events WHERE id > $1 AND kind = $2; EXECUTE d2(10, 'x')",
      ctx,
    );
    assert.deepEqual(
      same.pendingEstimates?.map((r) => r.sql),
      ["DELETE FROM events WHERE id > 10::int AND kind = 'x'::text"],
    );
  });
});

describe('impact', () => {
  const guard = compileSqlGuardrails({});
  it('says which texts change the session or the schema; reads change neither', () => {
    assert.equal(guard.check('SELECT * FROM t WHERE id = 1', ctx).impact, undefined);
    assert.equal(guard.check('UPDATE t SET a = 1 WHERE id = 1', ctx).impact, undefined);
    assert.deepEqual(guard.check('SET search_path = x', ctx).impact, {
      session: true,
      schema: false,
      opaque: false,
    });
    assert.equal(guard.check('BEGIN', ctx).impact?.session, true);
    assert.equal(guard.check('CREATE TABLE n (a int)', ctx).impact?.schema, true);
    assert.equal(guard.check('CREATE INDEX ON t (a)', ctx).impact?.schema, true);
  });
  it('a called function whose body sets search_path is an opaque change', () => {
    const routines = {
      lookup: (name: { name: string }) =>
        name.name === 'sneaky'
          ? [
              {
                schema: 'public',
                name: 'sneaky',
                language: 'plpgsql',
                body: "BEGIN PERFORM set_config('search_path', 'payroll', false); END",
              },
            ]
          : [],
    };
    assert.equal(guard.check('SELECT sneaky()', { ...ctx, routines }).impact?.opaque, true);
    assert.equal(guard.check('SELECT now()', { ...ctx, routines }).impact, undefined);
  });
});
