import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { CiCliError } from '../../../cli/ci/errors.ts';
import {
  type CiCredential,
  escapeWorkflowCommand,
  parseOutputFormat,
  quoteShell,
  renderCredential,
} from '../../../cli/ci/format.ts';

const nasty = `it's $(touch /tmp/pwned) "x" \`id\` %0A\nline2`;
const credential: CiCredential = {
  uri: `postgresql://ci_reports_1:${encodeURIComponent(nasty)}@127.0.0.1:6432/reporting`,
  host: '127.0.0.1',
  port: 6432,
  database: 'reporting',
  user: 'ci_reports_1',
  password: nasty,
  expiresAt: new Date('2025-03-01T02:15:00Z'),
};

/** Parses `$GITHUB_ENV` the way the Actions runner does: `NAME=value` or `NAME<<DELIM` blocks. */
function parseGitHubEnv(text: string): Record<string, string> {
  const lines = text.split('\n');
  const out: Record<string, string> = {};
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line === '') continue;
    const heredoc = /^([A-Z_]+)<<(.+)$/.exec(line);
    assert.ok(heredoc, `unexpected line ${line}`);
    const [, name, delimiter] = heredoc;
    const value: string[] = [];
    for (i++; lines[i] !== delimiter; i++) {
      assert.ok(i < lines.length, `unterminated ${name}`);
      value.push(lines[i]!);
    }
    out[name!] = value.join('\n');
  }
  return out;
}

describe('renderCredential', () => {
  it('env: lines a POSIX shell reads back exactly, running nothing', () => {
    const { stdout, githubEnv } = renderCredential(credential, 'env');
    assert.equal(githubEnv, undefined);
    assert.match(stdout, /^PGHOST='127.0.0.1'\n/m);
    const script =
      'set -a; eval "$OUT"; printf "%s|%s|%s|%s" "$PGPASSWORD" "$DATABASE_URL" "$PGPORT" "$WARDEN_EXPIRES_AT"';
    const echoed = execFileSync('sh', ['-c', script], {
      env: { OUT: stdout, PATH: process.env.PATH },
    }).toString();
    assert.equal(echoed, `${nasty}|${credential.uri}|6432|2025-03-01T02:15:00.000Z`);
  });

  it('github: environment file entries the runner parses back, and masks on stdout', () => {
    const { stdout, githubEnv } = renderCredential(credential, 'github');
    const parsed = parseGitHubEnv(githubEnv!);
    assert.equal(parsed.PGPASSWORD, nasty);
    assert.equal(parsed.DATABASE_URL, credential.uri);
    assert.equal(parsed.PGUSER, 'ci_reports_1');
    assert.deepEqual(stdout.split('\n'), [
      `::add-mask::${escapeWorkflowCommand(nasty)}`,
      `::add-mask::${escapeWorkflowCommand(credential.uri)}`,
      '',
    ]);
    assert.doesNotMatch(stdout, /\nline2/);
    assert.ok(!githubEnv!.includes('::add-mask::'));
  });

  it('github: redraws a delimiter that occurs in a value', () => {
    const draws = ['EOF', 'EOF', 'SAFE_1'];
    const withEof = { ...credential, password: 'a\nEOF\nPGUSER=postgres' };
    const { githubEnv } = renderCredential(withEof, 'github', () => draws.shift() ?? 'SAFE_2');
    const parsed = parseGitHubEnv(githubEnv!);
    assert.equal(parsed.PGPASSWORD, withEof.password);
    assert.equal(parsed.PGUSER, 'ci_reports_1');
  });

  it('github: gives up with a code when no safe delimiter is drawn', () => {
    assert.throws(
      () => renderCredential({ ...credential, password: 'X' }, 'github', () => 'X'),
      (e: unknown) => e instanceof CiCliError && e.code === 'ERR_CI_FORMAT_INVALID',
    );
  });

  it('json: the credential with an ISO expiry', () => {
    const { stdout } = renderCredential(credential, 'json');
    assert.deepEqual(JSON.parse(stdout), { ...credential, expiresAt: '2025-03-01T02:15:00.000Z' });
  });
});

describe('format helpers', () => {
  const quotes: [string, string][] = [
    ['plain', "'plain'"],
    ["it's", "'it'\\''s'"],
    ['', "''"],
  ];
  for (const [value, quoted] of quotes)
    it(`quotes ${JSON.stringify(value)}`, () => assert.equal(quoteShell(value), quoted));

  it('escapes workflow command data', () => assert.equal(escapeWorkflowCommand('a%b\r\nc'), 'a%25b%0D%0Ac'));

  for (const text of ['env', 'github', 'json'])
    it(`reads --format ${text}`, () => assert.equal(parseOutputFormat(text), text));
  for (const text of ['yaml', '', 'ENV']) {
    it(`refuses --format ${JSON.stringify(text)}`, () => {
      assert.throws(
        () => parseOutputFormat(text),
        (e: unknown) => e instanceof CiCliError && e.code === 'ERR_CI_FORMAT_INVALID',
      );
    });
  }
});
