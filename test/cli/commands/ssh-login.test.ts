import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { main } from '../../../cli/main.ts';
import { ExitCode } from '../../../cli/output.ts';
import { formatCaPublicKeyLine, formatOpenSshPrivateKey, generateCa } from '../../../lib/ssh/keys.ts';
import { waitForHealth } from '../../helpers/broker-fixture.ts';
import { freePort } from '../../helpers/pg-cluster.ts';
import {
  ADMIN_TOKEN,
  captureIo,
  SERVICE_TOKEN,
  type SshCliFixture,
  startSshCliFixture,
} from '../../helpers/ssh-cli-fixture.ts';
import { buildSshConfig, CA_ENV, clientOptions, run } from '../../helpers/ssh-proxy-fixture.ts';
import { type Sshd, startSshd, TEST_USER } from '../../helpers/sshd.ts';

/** The arguments of a printed `ssh ...` command (paths here have no spaces or quotes). */
function printedCommand(out: string, label: string): string[] {
  const line = out.split('\n').find((l) => l.trimStart().startsWith(label));
  assert.ok(line, `no "${label}" line in:\n${out}`);
  const args = line.slice(line.indexOf('ssh ') + 4).split(' ');
  return args;
}

describe('warden ssh login', () => {
  let cli: SshCliFixture;
  let dir: string;
  before(async () => {
    cli = await startSshCliFixture();
    dir = mkdtempSync(join(tmpdir(), 'warden-login-'));
  });
  after(async () => {
    await cli?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes a key pair and a certificate that log in directly and through the proxy', async () => {
    const { grant } = await cli.fx.grant();
    const keys = join(dir, 'keys');
    const result = await cli.warden(['ssh', 'login', grant.id, '--dir', keys, '--as', 'alice']);
    assert.equal(result.code, ExitCode.Ok, result.err);
    const key = join(keys, grant.id);
    const cert = join(keys, `${grant.id}-cert.pub`);
    assert.equal(statSync(keys).mode & 0o777, 0o700);
    assert.equal(statSync(key).mode & 0o777, 0o600);
    assert.match(readFileSync(key, 'utf8'), /^-----BEGIN OPENSSH PRIVATE KEY-----\n/);
    assert.match(readFileSync(cert, 'utf8'), /^ssh-ed25519-cert-v01@openssh\.com AAAA\S+ warden:grant=/);
    // ssh-keygen reads the certificate as sshd will: principal, key id, validity.
    const shown = execFileSync('ssh-keygen', ['-L', '-f', cert], { encoding: 'utf8' });
    assert.match(shown, new RegExp(`Key ID: "warden:grant=${grant.id}:user=alice"`));
    assert.match(shown, new RegExp(`Principals: \\n\\s+${TEST_USER}\\n`));

    const direct = printedCommand(result.out, 'direct:');
    assert.deepEqual(direct.slice(0, 4), ['-i', key, '-o', `CertificateFile=${cert}`]);
    const viaDirect = await run('ssh', [...clientOptions(0), ...direct, 'id -un']);
    assert.equal(viaDirect.code, 0, viaDirect.stderr);
    assert.equal(viaDirect.stdout, `${TEST_USER}\n`);

    const proxied = printedCommand(result.out, 'through Warden:');
    assert.ok(proxied.includes(`${TEST_USER}+web-1@127.0.0.1`), proxied.join(' '));
    const viaProxy = await run('ssh', [...clientOptions(0), ...proxied, 'id -un']);
    assert.equal(viaProxy.code, 0, viaProxy.stderr);
    assert.equal(viaProxy.stdout, `${TEST_USER}\n`);
  });

  it('--key certifies an existing key (only its public half is read) and defaults WARDEN_USER and ~/.ssh/warden', async () => {
    const { grant } = await cli.fx.grant();
    const own = join(dir, 'id_ed25519');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'alice@laptop', '-f', own]);
    const result = await cli.warden(['ssh', 'login', grant.id, '--key', own], { WARDEN_USER: 'alice' });
    assert.equal(result.code, ExitCode.Ok, result.err);
    const cert = join(cli.env.HOME!, '.ssh', 'warden', `${grant.id}-cert.pub`);
    assert.ok(existsSync(cert));
    assert.ok(!existsSync(join(cli.env.HOME!, '.ssh', 'warden', grant.id)), 'wrote a private key');
    const direct = printedCommand(result.out, 'direct:');
    assert.deepEqual(direct.slice(0, 4), ['-i', own, '-o', `CertificateFile=${cert}`]);
    const login = await run('ssh', [...clientOptions(0), ...direct, 'id -un']);
    assert.equal(login.code, 0, login.stderr);
    assert.equal(login.stdout, `${TEST_USER}\n`);
  });

  it('refuses, with a code and exit 1 or 2, and writes nothing', async () => {
    const { grant } = await cli.fx.grant();
    const revoked = await cli.fx.grant();
    await cli.fx.app.broker.revoke(revoked.grant.id, { id: 'alice', admin: false });
    const notAKey = join(dir, 'not-a-key.pub');
    writeFileSync(notAKey, 'hello world\n');
    const lonePrivate = join(dir, 'lone');
    writeFileSync(
      lonePrivate,
      '-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n',
    );
    const out = join(dir, 'refused');
    const cases: [string, string[], Record<string, string | undefined>, number, RegExp][] = [
      [
        'another person',
        [grant.id, '--as', 'maria'],
        {},
        ExitCode.Refused,
        /this call acts for "maria" \(ERR_FORBIDDEN\)/,
      ],
      [
        'a revoked grant',
        [revoked.grant.id, '--as', 'alice'],
        {},
        ExitCode.Refused,
        /\(ERR_STATE_CONFLICT\)/,
      ],
      ['an unknown grant', ['rnosuchgrant', '--as', 'alice'], {}, ExitCode.Refused, /\(ERR_NOT_FOUND\)/],
      [
        'a grant id with a path',
        ['../../etc', '--as', 'alice'],
        {},
        ExitCode.Refused,
        /\(ERR_SSH_CLI_GRANT_ID\)/,
      ],
      ['no grant', ['--as', 'alice'], {}, ExitCode.Usage, /usage: warden ssh login/],
      ['no token', [grant.id, '--as', 'alice'], { WARDEN_TOKEN: undefined }, ExitCode.Usage, /no API token/],
      // Issue 14: this used to reach the broker and say only ERR_FORBIDDEN.
      [
        'an admin acting for nobody',
        [grant.id],
        { WARDEN_TOKEN: ADMIN_TOKEN },
        ExitCode.Usage,
        /--as <you> \(or WARDEN_USER\); only the grant's requester gets a certificate/,
      ],
      [
        'a key file that is no key',
        [grant.id, '--as', 'alice', '--key', notAKey],
        {},
        ExitCode.Refused,
        /\(ERR_SSH_CLI_KEY_FILE\)/,
      ],
      [
        'a missing key file',
        [grant.id, '--as', 'alice', '--key', join(dir, 'nope')],
        {},
        ExitCode.Refused,
        /ENOENT.*\(ERR_SSH_CLI_KEY_FILE\)/,
      ],
      [
        'a private key without .pub',
        [grant.id, '--as', 'alice', '--key', lonePrivate],
        {},
        ExitCode.Refused,
        /\(ERR_SSH_CLI_KEY_FILE\)/,
      ],
      [
        'an unreachable broker',
        [grant.id, '--as', 'alice'],
        { WARDEN_URL: 'http://127.0.0.1:1' },
        ExitCode.Refused,
        /cannot reach the broker/,
      ],
    ];
    for (const [name, args, env, code, pattern] of cases) {
      const result = await cli.warden(['ssh', 'login', ...args, '--dir', out], env);
      assert.equal(result.code, code, `${name}: ${result.err}`);
      assert.match(result.err, pattern, name);
    }
    assert.ok(!existsSync(out), 'a refused login wrote files');
  });
});

describe('warden ssh login against warden serve', () => {
  let sshd: Sshd;
  let dir: string;
  let child: ChildProcess | undefined;
  let url: string;
  const ca = generateCa('warden-serve-ca');
  const env = {
    [CA_ENV]: formatOpenSshPrivateKey(ca.privateKey, 'warden-serve-ca'),
    WARDEN_BOT_TOKEN: SERVICE_TOKEN,
  };

  before(async () => {
    sshd = await startSshd({ trustedUserCaKeys: [formatCaPublicKeyLine(ca)] });
    dir = mkdtempSync(join(tmpdir(), 'warden-login-serve-'));
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    const config = buildSshConfig(sshd.port, join(dir, 'warden.db'), {
      broker: {
        listen: `127.0.0.1:${port}`,
        store: { kind: 'embedded', path: join(dir, 'warden.db') },
        tokens: [{ name: 'bot', role: 'service', secret: { env: 'WARDEN_BOT_TOKEN' } }],
      },
    });
    const configFile = join(dir, 'warden.yaml');
    writeFileSync(configFile, stringify(config));
    child = spawn(process.execPath, ['cli/warden.js', 'serve', '--config', configFile], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
      stdio: ['ignore', 'ignore', 'ignore'],
    });
    await waitForHealth(url);
  });
  after(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((resolve) => child!.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    await sshd?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serve mounts the certificate route: the certificate it signs logs in to sshd', async () => {
    const res = await fetch(`${url}/v1/requests`, {
      method: 'POST',
      headers: { authorization: `Bearer ${SERVICE_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ actor: 'alice', target: 'web-1', level: 'shell', duration: '30m' }),
    });
    const { request } = (await res.json()) as { request: { id: string; state: string } };
    assert.equal(request.state, 'active');
    const io = captureIo({ WARDEN_URL: url, WARDEN_TOKEN: SERVICE_TOKEN, WARDEN_USER: 'alice' });
    const code = await main(['ssh', 'login', request.id, '--dir', join(dir, 'keys')], io);
    assert.equal(code, ExitCode.Ok, io.errText());
    assert.doesNotMatch(io.outText(), /through Warden/, 'no proxy is configured');
    const direct = printedCommand(io.outText(), 'direct:');
    const login = await run('ssh', [...clientOptions(0), ...direct, 'id -un']);
    assert.equal(login.code, 0, login.stderr);
    assert.equal(login.stdout, `${TEST_USER}\n`);
  });
});
