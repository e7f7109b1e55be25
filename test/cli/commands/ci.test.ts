import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { CiExitCode } from '../../../cli/commands/ci.ts';
import { type CiExchangeFixture, startCiExchangeFixture } from '../../helpers/ci-exchange-fixture.ts';
import { freePort, type PgCluster, startPgCluster } from '../../helpers/pg-cluster.ts';

const run = promisify(execFile);

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the real `warden` entry point in a clean environment (no CI variables leak in). */
async function warden(args: string[], env: Record<string, string> = {}): Promise<Result> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['cli/warden.js', ...args], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: tmpdir(), ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('warden ci exchange', () => {
  let cluster: PgCluster;
  let fx: CiExchangeFixture;
  let dir: string;

  const tokenFile = async (claims: Record<string, unknown> = {}) => {
    const path = join(dir, `token-${Math.random().toString(36).slice(2)}`);
    writeFileSync(path, `${await fx.issuer.issue(claims)}\n`);
    return path;
  };
  const exchange = async (extra: string[], claims: Record<string, unknown> = {}, env = {}) =>
    warden(
      [
        'ci',
        'exchange',
        '--target',
        'app-db',
        '--url',
        fx.url,
        '--token-file',
        await tokenFile(claims),
        ...extra,
      ],
      env,
    );

  before(async () => {
    cluster = await startPgCluster();
    fx = await startCiExchangeFixture(cluster);
    dir = mkdtempSync(join(tmpdir(), 'warden-ci-cli-'));
  });
  after(async () => {
    await fx?.close();
    await cluster?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('--format env prints assignments that psql logs in with', async () => {
    const result = await exchange(['--level', 'read', '--ttl', '15m', '--format', 'env']);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^PGHOST='127\.0\.0\.1'$/m);
    assert.match(result.stdout, /^PGPASSWORD='[^']+'$/m);
    assert.match(result.stdout, /^DATABASE_URL='postgresql:\/\/[^']+'$/m);
    const envFile = join(dir, 'credential.env');
    writeFileSync(envFile, result.stdout);
    // As the GitLab example does: export the assignments, then run psql with nothing else.
    const { stdout } = await run('/bin/bash', [
      '-c',
      `set -a; . '${envFile}'; set +a; /usr/bin/psql --no-psqlrc -tAc 'SELECT count(*) FROM invoices'`,
    ]);
    assert.equal(stdout.trim(), '2');
    await assert.rejects(
      run('/bin/bash', [
        '-c',
        `set -a; . '${envFile}'; set +a; /usr/bin/psql --no-psqlrc -v ON_ERROR_STOP=1 -tAc "INSERT INTO invoices (customer, amount) VALUES ('x', 1)"`,
      ]),
      /permission denied/,
    );
  });

  it('--format github appends to $GITHUB_ENV and masks the secrets', async () => {
    const githubEnv = join(dir, 'github_env');
    writeFileSync(githubEnv, '');
    const result = await exchange(['--level', 'read', '--format', 'github'], {}, { GITHUB_ENV: githubEnv });
    assert.equal(result.code, 0, result.stderr);
    const written = readFileSync(githubEnv, 'utf8');
    const password = /^PGPASSWORD<<(\S+)\n(.*)\n\1$/m.exec(written)?.[2];
    assert.ok(password, 'PGPASSWORD entry in $GITHUB_ENV');
    assert.ok(result.stdout.includes(`::add-mask::${password}`));
    const unmasked = result.stdout.split('\n').filter((line) => !line.startsWith('::add-mask::'));
    assert.ok(!unmasked.join('\n').includes(password), 'the password is printed only in mask commands');
  });

  it('--format json prints the credential', async () => {
    const result = await exchange(['--level', 'read', '--ttl', '1m', '--format', 'json']);
    assert.equal(result.code, 0, result.stderr);
    const parsed = JSON.parse(result.stdout) as { uri: string; expiresAt: string; user: string };
    assert.match(parsed.user, /^warden_ci_github_/);
    assert.ok(Date.parse(parsed.expiresAt) - Date.now() <= 60_000);
  });

  const failures: [string, () => Promise<Result>, CiExitCode, RegExp][] = [
    [
      'a refused job',
      () => exchange(['--level', 'read'], { repository: 'octo-org/other' }),
      CiExitCode.Refused,
      /ERR_CI_NO_RULE/,
    ],
    [
      'a replayed token',
      async () => {
        const file = await tokenFile();
        const args = [
          'ci',
          'exchange',
          '--target',
          'app-db',
          '--level',
          'read',
          '--url',
          fx.url,
          '--token-file',
          file,
        ];
        await warden(args);
        return warden(args);
      },
      CiExitCode.Refused,
      /ERR_CI_TOKEN_REPLAYED/,
    ],
    [
      'no token anywhere',
      () => warden(['ci', 'exchange', '--target', 'app-db', '--level', 'read', '--url', fx.url]),
      CiExitCode.NoToken,
      /ERR_CI_TOKEN_SOURCE_MISSING/,
    ],
    [
      'an unreachable broker',
      async () => exchange(['--level', 'read', '--url', `http://127.0.0.1:${await freePort()}`]),
      CiExitCode.Unavailable,
      /cannot reach the broker/,
    ],
    ['a missing --level', () => exchange([]), CiExitCode.Usage, /usage: warden ci exchange/],
    [
      'an unknown format',
      () => exchange(['--level', 'read', '--format', 'yaml']),
      CiExitCode.Usage,
      /unknown format/,
    ],
    [
      '--format github outside GitHub Actions',
      () => exchange(['--level', 'read', '--format', 'github']),
      CiExitCode.Usage,
      /GITHUB_ENV/,
    ],
    [
      'an approval that does not come within --max-wait',
      () => exchange(['--level', 'write', '--max-wait', '1s']),
      CiExitCode.StillPending,
      /approval still pending/,
    ],
  ];
  for (const [name, make, code, stderr] of failures) {
    it(`exits ${code} on ${name}`, async () => {
      const result = await make();
      assert.equal(result.code, code, `${result.stdout}\n${result.stderr}`);
      assert.match(result.stderr, stderr);
      assert.doesNotMatch(result.stdout, /PGPASSWORD/);
    });
  }
});
