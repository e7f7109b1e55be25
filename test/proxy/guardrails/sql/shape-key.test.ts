import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { scanSync } from '@libpg-query/parser';
import { compileSqlGuardrails } from '../../../../proxy/guardrails/sql/guardrails.ts';
import { computeSqlShape } from '../../../../proxy/guardrails/sql/shape-key.ts';

const ctx = { level: 'write', groups: [] };
const LITERAL_TOKENS = new Set(['SCONST', 'USCONST', 'ICONST', 'FCONST', 'BCONST', 'XCONST']);

describe('computeSqlShape', () => {
  const same: [string, string][] = [
    ['SELECT * FROM t WHERE id = 1', 'select *   from t\nwhere id = 2 -- c'],
    ["SELECT 'a'", 'SELECT /* x /* nested */ */ $q$b$q$'],
    ["SELECT E'\\''", "SELECT 'it''s'"],
    ['SELECT Ärger FROM T', 'select Ärger from t'],
    ['SELECT ÄRGER', 'select Ärger'],
  ];
  for (const [a, b] of same) {
    it(`same shape: ${JSON.stringify(a)} ~ ${JSON.stringify(b)}`, () => {
      assert.equal(computeSqlShape(a)?.key, computeSqlShape(b)?.key);
    });
  }
  const different: [string, string][] = [
    ['SELECT "PG_READ_FILE"(1)', 'SELECT pg_read_file(1)'],
    ['SELECT a::int', 'SELECT a: :int'],
    ["SELECT N'x'", "SELECT n 'x'"],
    ["SELECT E'x'", "SELECT e 'x'"],
    ['SELECT 1', 'SELECT 1.0'],
    ['SELECT a ? b', "SELECT a 'x' b"],
    // PostgreSQL folds only A-Z in UTF-8 identifiers: Ä and ä are different names.
    ['SELECT Ärger', 'SELECT ärger'],
    ['SELECT ǅx', 'SELECT ǆx'],
  ];
  for (const [a, b] of different) {
    it(`different shapes: ${JSON.stringify(a)} / ${JSON.stringify(b)}`, () => {
      assert.notEqual(computeSqlShape(a)?.key, computeSqlShape(b)?.key);
    });
  }
  const refused = [
    "SELECT 'a'\n'b'",
    "SELECT 'a' -- c\n'b'",
    "SELECT U&'x'",
    'SELECT 0x1F',
    'SELECT 1_000',
    'SELECT $x',
    "SELECT 'open",
    'SELECT 1\0',
  ];
  for (const sql of refused) {
    it(`gives up on ${JSON.stringify(sql)}`, () => assert.equal(computeSqlShape(sql), undefined));
  }

  // Regression: a number followed by a newline and a quote made the lexer loop forever, hanging the
  // proxy's event loop (before the fix this test never returned).
  for (const sql of ["SELECT 1\n'x'", "SELECT 1.5 -- c\n 'x'", "SELECT $$a$$\n'x'"]) {
    it(`does not hang on a literal followed by a newline and a quote: ${JSON.stringify(sql)}`, () => {
      const shape = computeSqlShape(sql);
      if (shape) assert.equal(shape.literals.length, 2);
      const guard = compileSqlGuardrails({});
      assert.notEqual(guard.check(sql, ctx).action, undefined);
    });
  }

  it('finds the same literals as PostgreSQL scanner on random tricky text', () => {
    const alphabet = [
      "'",
      '"',
      '$',
      'e',
      'E',
      'b',
      'x',
      'n',
      'u',
      '&',
      '\\',
      '-',
      '/',
      '*',
      ' ',
      '\n',
      '1',
      '.',
      'a',
      'q',
      ':',
      ';',
      '=',
      '(',
    ];
    let seed = 12345;
    const random = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed;
    };
    let compared = 0;
    for (let n = 0; n < 4000; n++) {
      let sql = 'SELECT ';
      const length = 1 + (random() % 24);
      for (let i = 0; i < length; i++) sql += alphabet[random() % alphabet.length];
      const shape = computeSqlShape(sql);
      if (!shape) continue;
      let tokens: { start: number; end: number; tokenName: string }[];
      try {
        tokens = scanSync(sql).tokens;
      } catch {
        continue; // PostgreSQL rejects the text: the server would too
      }
      const expected = tokens
        .filter((t) => LITERAL_TOKENS.has(t.tokenName))
        .map((t) => sql.slice(t.start, t.end));
      assert.deepEqual(shape.literals, expected, `literals of ${JSON.stringify(sql)}`);
      compared++;
    }
    assert.ok(compared > 500, `only ${compared} texts compared`);
  });
});

describe('verdict cache', () => {
  it('reuses the verdict for the same shape with other literals', () => {
    const guard = compileSqlGuardrails({});
    assert.equal(guard.check('SELECT * FROM t WHERE id = 1', ctx).action, 'allow');
    assert.equal(guard.check('select * from t where id = 2 /* other */', ctx).action, 'allow');
    assert.deepEqual(
      [guard.cacheStats().hits, guard.cacheStats().misses, guard.cacheStats().size],
      [1, 1, 1],
    );
  });

  const fn = (language: string, body: string) =>
    `CREATE FUNCTION f() RETURNS void LANGUAGE ${language} AS ${body}`;
  /** [safe first, dangerous second]: the pair differs only where a fingerprint may not look. */
  const pairs: [string, string, string][] = [
    ["SELECT set_config('search_path','x',false)", "SELECT set_config('role','x',false)", 'session-identity'],
    ['DO $$ BEGIN NULL; END $$', 'DO $$ BEGIN DROP TABLE t; END $$', 'drop-table'],
    ["DO $$ BEGIN EXECUTE 'SELECT 1'; END $$", "DO $$ BEGIN EXECUTE 'DROP TABLE t'; END $$", 'drop-table'],
    ["SET standard_conforming_strings = 'on'", "SET standard_conforming_strings = 'off'", 'unsafe-setting'],
    ["SET client_encoding = 'UTF8'", "SET client_encoding = 'SJIS'", 'unsafe-setting'],
    ["SET ROLE 'none'", "SET ROLE 'postgres'", 'session-identity'],
    ['COPY t TO STDOUT', "COPY t TO '/tmp/x'", 'copy-server-file'],
    ["COPY (SELECT abs('1')) TO STDOUT", "COPY (SELECT pg_read_file('1')) TO STDOUT", 'dangerous-function'],
    ['SELECT "PG_READ_FILE"(\'x\')', "SELECT pg_read_file('x')", 'dangerous-function'],
    [fn('sql', "'SELECT 1'"), fn('sql', "'DELETE FROM t'"), 'delete-without-where'],
    [fn("'sql'", "'SELECT 1'"), fn("'plperlu'", "'SELECT 1'"), 'opaque-code'],
    ["SELECT 'a' -- x\n, 1", "SELECT 'a'\n'; DROP TABLE t; --', 1", 'unparseable'],
    ["SELECT E'a', 1", "SELECT E'\\'; DROP TABLE t; --', 1", 'unparseable'],
    ['DELETE FROM t WHERE id = 1', 'DELETE FROM t WHERE 1 = 1', 'delete-without-where'],
  ];
  for (const [safe, dangerous, rule] of pairs) {
    it(`does not let ${JSON.stringify(dangerous)} reuse the verdict of ${JSON.stringify(safe)}`, () => {
      const guard = compileSqlGuardrails({});
      assert.equal(guard.check(safe, ctx).action, 'allow');
      const verdict = guard.check(dangerous, ctx);
      if (rule === 'unparseable') {
        // Not dangerous to PostgreSQL either: the point is only that no stale verdict leaks.
        assert.notEqual(verdict.rule, 'drop-table');
        return;
      }
      assert.equal(verdict.action, 'block');
      assert.equal(verdict.rule, rule);
    });
  }

  it('stays within its capacity (LRU)', () => {
    const guard = compileSqlGuardrails({ cacheSize: 2 });
    const texts = ['SELECT 1', "SELECT a FROM t WHERE k = 'x'", "SELECT b FROM t WHERE k = 'x'", 'SELECT 2'];
    for (const sql of texts) guard.check(sql, ctx);
    assert.equal(guard.cacheStats().size, 2);
    assert.equal(guard.cacheStats().hits, 0);
    guard.check("SELECT b FROM t WHERE k = 'y'", ctx); // still cached
    guard.check("SELECT a FROM t WHERE k = 'y'", ctx); // evicted
    assert.deepEqual([guard.cacheStats().hits, guard.cacheStats().misses], [1, 5]);
  });

  it('keeps the exact-text cache within its capacity (LRU)', () => {
    const guard = compileSqlGuardrails({ cacheSize: 2 });
    for (const sql of ['SELECT a FROM t', 'SELECT b FROM t', 'SELECT c FROM t']) guard.check(sql, ctx);
    guard.check('SELECT c FROM t', ctx); // still cached
    guard.check('SELECT a FROM t', ctx); // evicted from both caches
    assert.deepEqual([guard.cacheStats().hits, guard.cacheStats().misses], [1, 4]);
  });

  it('answers a repeated text from the exact-text cache, still applying the rules each time', () => {
    const guard = compileSqlGuardrails({ disable: [{ rule: 'delete-without-where', levels: ['admin'] }] });
    const sql = 'DELETE FROM t';
    assert.equal(guard.check(sql, ctx).rule, 'delete-without-where');
    assert.equal(guard.check(sql, ctx).rule, 'delete-without-where');
    assert.equal(guard.check(sql, { ...ctx, level: 'admin' }).action, 'allow');
    assert.deepEqual(
      [guard.cacheStats().hits, guard.cacheStats().misses, guard.cacheStats().size],
      [2, 1, 1],
    );
  });

  it('can be disabled', () => {
    const guard = compileSqlGuardrails({ cacheSize: 0 });
    guard.check('SELECT 1', ctx);
    guard.check('SELECT 1', ctx);
    assert.equal(guard.cacheStats().hits, 0);
  });
});
