/**
 * Issue 14, "The CI examples": `npm install --global @warden/cli` named a package that does not
 * exist; the workflow file's name differed from the one its rule pins; DATABASE_URL had no
 * sslmode and no CA. The install step of the examples is run as written (npm packs this
 * repository, a fresh global prefix installs the tarball), then the installed `warden` exchanges
 * a token from the OIDC test issuer with a test broker.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { type CiExchangeFixture, startCiExchangeFixture } from '../helpers/ci-exchange-fixture.ts';
import { type PgCluster, startPgCluster } from '../helpers/pg-cluster.ts';

const run = promisify(execFile);

/** Runs a shell script with stdin closed (npm must never wait for an answer), resolving its output. */
function runScript(script: string, options: { cwd: string; env: NodeJS.ProcessEnv }): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/bash', ['-ec', script], { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => {
      output += d;
    });
    child.stderr.on('data', (d) => {
      output += d;
    });
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(output) : reject(new Error(`exit ${code}: ${output}`)),
    );
  });
}
const root = join(import.meta.dirname, '../..');
const read = (name: string) => readFileSync(join(root, 'manifests/ci', name), 'utf8');

const workflow = parse(read('nightly-report.yaml'));
const steps: { name?: string; run?: string; uses?: string; with?: Record<string, string> }[] =
  workflow.jobs.report.steps;
const gitlab = parse(read('gitlab-ci.yaml'))['nightly-export'];
const rules: { name: string; match: Record<string, string> }[] = parse(read('warden-ci.yaml')).ci.rules;

describe('the workflow file name differs from the one its rule pins (fixed)', () => {
  it('the example is named after the path the rule pins, and says where to save it', () => {
    const pinned = rules.find((r) => r.name === 'nightly-report')!.match.job_workflow_ref!;
    const path = /^[^/]+\/[^/]+\/(.+)@/.exec(pinned)![1]!;
    assert.equal(path, '.github/workflows/nightly-report.yaml');
    assert.equal(basename(path), 'nightly-report.yaml');
    assert.match(read('nightly-report.yaml'), new RegExp(`Save this file as ${path.replaceAll('.', '\\.')}`));
  });
});

describe('npm install --global @warden/cli names a package that does not exist (fixed)', () => {
  let cluster: PgCluster;
  let fx: CiExchangeFixture;
  let dir: string;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    cluster = await startPgCluster();
    fx = await startCiExchangeFixture(cluster);
    dir = mkdtempSync(join(tmpdir(), 'warden-ci-install-'));
    // The job's workspace: Warden checked out in .warden, as the example's checkout step does.
    mkdirSync(join(dir, 'job'));
    symlinkSync(root, join(dir, 'job', '.warden'));
    // A fresh global prefix and npm cache: nothing of this machine's installs is reused, but its
    // npm configuration is (registry, CA): a new prefix would otherwise move the global npmrc.
    // Install scripts are off: `warden ci exchange` needs no native module (the embedded store does).
    const globalconfig = (await run('npm', ['config', 'get', 'globalconfig'])).stdout.trim();
    env = {
      ...process.env,
      PATH: `${join(dir, 'global', 'bin')}:${process.env.PATH}`,
      npm_config_globalconfig: globalconfig,
      npm_config_prefix: join(dir, 'global'),
      npm_config_cache: join(dir, 'npm-cache'),
      npm_config_ignore_scripts: 'true',
      npm_config_audit: 'false',
      npm_config_fund: 'false',
      npm_config_update_notifier: 'false',
    };
  });
  after(async () => {
    await fx?.close();
    await cluster?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('names no package that does not exist, and packs the CLI from a pinned checkout', () => {
    for (const text of [read('nightly-report.yaml'), read('gitlab-ci.yaml')])
      assert.ok(!text.includes('@warden/cli'));
    const checkout = steps.find((s) => s.with?.repository);
    assert.equal(checkout?.with?.path, '.warden');
    assert.match(String(checkout?.with?.ref), /^[0-9a-f]{40}$/, 'pinned to a commit');
    assert.ok(
      (gitlab.script as string[]).some((line) =>
        line.includes(steps.find((s) => s.name === 'Install warden')!.run!),
      ),
    );
  });

  it('the install step, run as written, gives a warden that runs --help and a ci exchange', async () => {
    const install = steps.find((s) => s.name === 'Install warden')!.run!;
    await runScript(install, { cwd: join(dir, 'job'), env });
    const help = await run('warden', ['--help'], { env, cwd: dir });
    assert.match(help.stdout, /^warden: just-in-time privileged access/);

    const tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, await fx.issuer.issue({}));
    const ca = join(dir, 'job', 'db-ca.pem');
    writeFileSync(ca, '-----BEGIN CERTIFICATE-----\n');
    const exchanged = await run(
      'warden',
      [
        'ci',
        'exchange',
        '--target',
        'app-db',
        '--level',
        'read',
        '--ttl',
        '5m',
        '--format',
        'env',
        '--url',
        fx.url,
        '--token-file',
        tokenFile,
        '--ca',
        'db-ca.pem',
      ],
      { env, cwd: join(dir, 'job') },
    );
    const url = /^DATABASE_URL='([^']+)'$/m.exec(exchanged.stdout)?.[1];
    assert.ok(url, exchanged.stdout + exchanged.stderr);
    // DATABASE_URL has no sslmode and no CA (fixed): libpq reads both from it.
    const parsed = new URL(url);
    assert.equal(parsed.searchParams.get('sslmode'), 'verify-full');
    assert.equal(parsed.searchParams.get('sslrootcert'), ca);
    assert.match(exchanged.stdout, /^PGSSLMODE='verify-full'$/m);
    assert.match(exchanged.stdout, new RegExp(`^PGSSLROOTCERT='${ca}'$`, 'm'));
    // A real psql honours it: this test database has no TLS, so the login stops instead of
    // falling back to plaintext (libpq's default, prefer, would have gone on).
    await assert.rejects(run('/usr/bin/psql', [url, '--no-psqlrc', '-tAc', 'select 1'], { env }), /SSL/);
  });
});
