import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileSqlGuardrails } from '../../../proxy/guardrails/sql/index.ts';
import { isPgProxyError } from '../../../proxy/pg/errors.ts';
import {
  checkStartupParameters,
  formatOptionsParameter,
  parseOptionsParameter,
  settingAsStatement,
} from '../../../proxy/pg/startup-parameters.ts';

const guard = compileSqlGuardrails({});
const check = (sql: string) => guard.check(sql, { level: 'read', groups: [] });
const params = (entries: Record<string, string>) => new Map(Object.entries(entries));

function refusal(entries: Record<string, string>): string {
  try {
    checkStartupParameters(params(entries), check);
  } catch (error) {
    assert.ok(isPgProxyError(error));
    assert.equal(error.code, 'ERR_PGPROXY_STARTUP_PARAMETER');
    assert.equal(error.sqlState, '42501');
    return error.message;
  }
  assert.fail(`accepted ${JSON.stringify(entries)}`);
}

describe('parseOptionsParameter', () => {
  const cases: [string, [string, string][]][] = [
    ['-c search_path=app', [['search_path', 'app']]],
    ['-csearch_path=app', [['search_path', 'app']]],
    ['--search-path=app', [['search_path', 'app']]],
    [
      '  -c a=1   -c b=2 ',
      [
        ['a', '1'],
        ['b', '2'],
      ],
    ],
    ['-c application_name=with\\ space', [['application_name', 'with space']]],
    ['-c x=back\\\\slash', [['x', 'back\\slash']]],
    ['', []],
  ];
  for (const [options, expected] of cases) {
    it(JSON.stringify(options), () => assert.deepEqual(parseOptionsParameter(options), expected));
  }

  for (const bad of ['-d 5', '-B 100', 'role=admin', '-c', '-c role', '--role', `-c a=${'x'.repeat(5000)}`]) {
    it(`refuses ${JSON.stringify(bad.slice(0, 20))}`, () =>
      assert.throws(() => parseOptionsParameter(bad), { code: 'ERR_PGPROXY_STARTUP_PARAMETER' }));
  }

  it('round-trips through formatOptionsParameter', () => {
    const settings: [string, string][] = [
      ['application_name', 'a b\\c\td'],
      ['search_path', '"$user", public'],
    ];
    assert.deepEqual(parseOptionsParameter(formatOptionsParameter(settings)), settings);
  });
});

describe('settingAsStatement', () => {
  it('quotes names and values so the parser reads exactly them', () => {
    assert.equal(settingAsStatement('a"b', "it's"), `SET "a""b" TO 'it''s'`);
    const verdict = check(settingAsStatement("x'; DROP TABLE t; --", "'; DROP TABLE t; --"));
    assert.equal(verdict.statements.length, 1);
  });
});

describe('checkStartupParameters', () => {
  it('passes what clients usually send, and rebuilds options from what was checked', () => {
    const forwarded = checkStartupParameters(
      params({
        user: 'alice',
        database: 'app',
        application_name: 'psql',
        client_encoding: 'UTF8',
        DateStyle: 'ISO',
        TimeZone: 'UTC',
        extra_float_digits: '3',
        options: '-c  search_path=app   --statement-timeout=5s',
      }),
      check,
    );
    assert.equal(forwarded.get('user'), 'alice');
    assert.equal(forwarded.get('database'), 'app');
    assert.equal(forwarded.get('application_name'), 'psql');
    assert.equal(forwarded.get('options'), '-c search_path=app -c statement_timeout=5s');
  });

  it('accepts ASCII-safe client encodings (what psql sends in the C locale)', () => {
    for (const encoding of ['SQL_ASCII', 'LATIN1', 'EUC_JP', 'WIN1252'])
      checkStartupParameters(params({ client_encoding: encoding }), check);
  });

  const refused: [string, Record<string, string>, RegExp][] = [
    ['role as a parameter', { role: 'postgres' }, /startup parameter "role".*session-identity/],
    ['role in options', { options: '-c role=postgres' }, /setting "role" in the options parameter/],
    ['session_authorization', { session_authorization: 'postgres' }, /session-identity/],
    ['quoted casing of role', { options: '--ROLE=postgres' }, /session-identity/],
    ['standard_conforming_strings off', { standard_conforming_strings: 'off' }, /unsafe-setting/],
    ['the same in options', { options: '-c standard_conforming_strings=off' }, /unsafe-setting/],
    ['Shift-JIS', { client_encoding: 'SJIS' }, /unsafe-setting/],
    ['GBK in options', { options: '-c client_encoding=GBK' }, /unsafe-setting/],
    ['an unreadable options value', { options: '-o junk' }, /only -c name=value/],
  ];
  for (const [name, entries, message] of refused) {
    it(`refuses ${name}`, () => assert.match(refusal(entries), message));
  }

  it("applies the session's own rules (a rule that blocks a setting)", () => {
    const strict = compileSqlGuardrails({
      rules: [{ name: 'no-search-path', action: 'block', match: { effects: ['session'] } }],
    });
    assert.throws(
      () =>
        checkStartupParameters(params({ search_path: 'x' }), (sql) =>
          strict.check(sql, { level: 'read', groups: [] }),
        ),
      { code: 'ERR_PGPROXY_STARTUP_PARAMETER' },
    );
  });
});
