/** `warden psql`'s pure core: connection strings, statement gathering, tables and server errors. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type ConnectionSettings,
  formatServerError,
  formatTable,
  MAX_STATEMENT,
  parseConnectionString,
  StatementBuffer,
} from '../../../cli/psql/core.ts';

describe('parseConnectionString', () => {
  const base: ConnectionSettings = {
    host: '127.0.0.1',
    port: 6432,
    database: 'demo',
    user: 'warden_alice_r1',
    password: undefined,
    sslmode: 'prefer',
  };
  const cases: [string, string, Record<string, string>, Partial<ConnectionSettings>][] = [
    ['the DM’s keywords', 'host=127.0.0.1 port=6432 dbname=demo user=warden_alice_r1', {}, {}],
    ['a URI', 'postgres://warden_alice_r1@127.0.0.1:6432/demo', {}, {}],
    [
      'a postgresql:// URI with password and sslmode',
      'postgresql://warden_alice_r1:p%40ss@127.0.0.1:6432/demo?sslmode=require',
      {},
      { password: 'p@ss', sslmode: 'require' },
    ],
    [
      'quoted values',
      "host=127.0.0.1 port=6432 dbname='my demo' user=warden_alice_r1 password='it\\'s'",
      {},
      { database: 'my demo', password: "it's" },
    ],
    [
      'PG* variables fill the gaps',
      'user=warden_alice_r1',
      { PGHOST: '127.0.0.1', PGPORT: '6432', PGDATABASE: 'demo', PGPASSWORD: 'pw' },
      { password: 'pw' },
    ],
    [
      'the database defaults to the user',
      'host=127.0.0.1 port=6432 user=warden_alice_r1',
      {},
      { database: 'warden_alice_r1' },
    ],
    [
      'spaces around =',
      'host= 127.0.0.1 port=6432 dbname=demo user=warden_alice_r1 sslmode=disable',
      {},
      { sslmode: 'disable' },
    ],
  ];
  for (const [name, text, env, diff] of cases) {
    it(`reads ${name}`, () => {
      assert.deepEqual(parseConnectionString(text, env), { ...base, ...diff });
    });
  }
  const bad: [string, string][] = [
    ['no user', 'host=127.0.0.1 port=6432'],
    ['a bad port', 'host=h port=99999 user=u'],
    ['a non-numeric port', 'host=h port=54x user=u'],
    ['an unknown keyword', 'host=h user=u sslrootcert=/x'],
    ['a bad sslmode', 'host=h user=u sslmode=allow-ish'],
    ['an unterminated quote', "host=h user='u"],
    ['a word without =', 'host=h user'],
    ['a broken URI', 'postgres://u@[::1/db'],
    ['an endless string', `user=${'u'.repeat(5000)}`],
  ];
  for (const [name, text] of bad) {
    it(`refuses ${name} with ERR_PSQL_CONNINFO_INVALID`, () => {
      assert.throws(() => parseConnectionString(text, {}), { code: 'ERR_PSQL_CONNINFO_INVALID' });
    });
  }
});

describe('StatementBuffer', () => {
  const run = (lines: string[]) => {
    const buffer = new StatementBuffer();
    return lines.map((l) => buffer.push(l));
  };
  const cases: [string, string[], unknown[]][] = [
    ['one line', ['SELECT 1;'], [{ kind: 'sql', text: 'SELECT 1;' }]],
    ['two lines', ['SELECT', '  1;'], [{ kind: 'more' }, { kind: 'sql', text: 'SELECT\n  1;' }]],
    ['a ; inside quotes', ["SELECT ';", "';"], [{ kind: 'more' }, { kind: 'sql', text: "SELECT ';\n';" }]],
    [
      'a ; inside double quotes',
      ['SELECT 1 AS "a;', '";'],
      [{ kind: 'more' }, { kind: 'sql', text: 'SELECT 1 AS "a;\n";' }],
    ],
    ['text after the ;', ['SELECT 1; SELECT'], [{ kind: 'more' }]],
    ['two statements', ['SELECT 1; SELECT 2;'], [{ kind: 'sql', text: 'SELECT 1; SELECT 2;' }]],
    ['\\q', ['\\q'], [{ kind: 'quit' }]],
    ['quit', ['  quit '], [{ kind: 'quit' }]],
    ['\\?', ['\\?'], [{ kind: 'help' }]],
    ['other backslash commands', ['\\dt'], [{ kind: 'unknown-meta', command: '\\dt' }]],
    ['\\q inside a statement is SQL text', ['SELECT', '\\q'], [{ kind: 'more' }, { kind: 'more' }]],
    ['blank lines', ['', '   '], [{ kind: 'more' }, { kind: 'more' }]],
  ];
  for (const [name, lines, expected] of cases) {
    it(name, () => assert.deepEqual(run(lines), expected));
  }
  it('drops a statement longer than the limit with ERR_PSQL_STATEMENT_TOO_LONG and recovers', () => {
    const buffer = new StatementBuffer();
    assert.throws(() => buffer.push('x'.repeat(MAX_STATEMENT + 1)), { code: 'ERR_PSQL_STATEMENT_TOO_LONG' });
    assert.equal(buffer.pending, false);
    assert.deepEqual(buffer.push('SELECT 1;'), { kind: 'sql', text: 'SELECT 1;' });
  });
});

describe('formatTable', () => {
  it('aligns columns as psql does, numbers on the right, NULL as empty', () => {
    const lines = formatTable(
      [
        { name: 'id', numeric: true },
        { name: 'email', numeric: false },
      ],
      [
        ['1', 'tok_d0f00d0c76cace21'],
        ['10', null],
      ],
    );
    assert.deepEqual(lines, [
      ' id | email',
      '----+----------------------',
      '  1 | tok_d0f00d0c76cace21',
      ' 10 |',
      '(2 rows)',
    ]);
  });
  it('says (1 row) and (0 rows)', () => {
    assert.equal(formatTable([{ name: 'a', numeric: false }], [['x']]).at(-1), '(1 row)');
    assert.deepEqual(formatTable([{ name: 'a', numeric: false }], []), [' a', '---', '(0 rows)']);
  });
});

describe('formatServerError', () => {
  it('shows severity, message, SQLSTATE, detail and hint', () => {
    assert.deepEqual(
      formatServerError({
        severity: 'ERROR',
        code: '42501',
        message: 'Warden blocked this statement (rule drop-table): DROP TABLE is not allowed',
        hint: 'ask for a grant at a level that allows it',
      }),
      [
        'ERROR:  Warden blocked this statement (rule drop-table): DROP TABLE is not allowed (SQLSTATE 42501)',
        'HINT:  ask for a grant at a level that allows it',
      ],
    );
    assert.deepEqual(formatServerError({ severity: 'FATAL', code: '57P01', message: 'bye', detail: 'd' }), [
      'FATAL:  bye (SQLSTATE 57P01)',
      'DETAIL:  d',
    ]);
  });
});
