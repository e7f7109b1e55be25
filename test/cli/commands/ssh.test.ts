import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse, stringify } from 'yaml';
import { openEmbeddedStore } from '../../../broker/store/sql-store.ts';
import { runSshCommand } from '../../../cli/commands/ssh.ts';
import { ExitCode } from '../../../cli/output.ts';
import { formatCaPublicKeyLine } from '../../../lib/ssh/keys.ts';
import { captureIo, type SshCliFixture, startSshCliFixture } from '../../helpers/ssh-cli-fixture.ts';
import { CA_ENV } from '../../helpers/ssh-proxy-fixture.ts';
import { runSsh, TEST_USER } from '../../helpers/sshd.ts';
import { startVaultStandin } from '../../helpers/vault-standin.ts';

describe('warden ssh ca and krl', () => {
  let cli: SshCliFixture;
  before(async () => {
    cli = await startSshCliFixture();
  });
  after(async () => {
    await cli?.close();
  });

  it('ssh ca prints the CA public key line for TrustedUserCAKeys', async () => {
    const result = await cli.warden(['ssh', 'ca', '--config', cli.configFile]);
    assert.equal(result.code, ExitCode.Ok, result.err);
    assert.equal(result.out, `${formatCaPublicKeyLine(cli.fx.ca)}\n`);
    assert.match(result.out, /^ssh-ed25519 AAAA[A-Za-z0-9+/=]+ warden-test-ca\n$/);
  });

  for (const [name, env, code, pattern] of [
    ['the CA secret is not set', { [CA_ENV]: undefined }, 'ERR_CONFIG_SECRET', /ssh\.ca_key/],
    ['the CA secret is not a key', { [CA_ENV]: 'not a key' }, 'ERR_CONFIG_INVALID', /ssh\.ca_key/],
  ] as const) {
    it(`ssh ca exits 3 when ${name}`, async () => {
      const result = await cli.warden(['ssh', 'ca', '--config', cli.configFile], env);
      assert.equal(result.code, ExitCode.Config);
      assert.match(result.err, new RegExp(`\\(${code}\\)`));
      assert.match(result.err, pattern);
    });
  }

  it('ssh krl: sshd re-reads the written KRL and refuses the revoked grant, accepts the live one', async () => {
    const live = await cli.fx.grant();
    const revoked = await cli.fx.grant();
    const login = (c: typeof live) =>
      runSsh({
        port: cli.fx.sshd.port,
        privateKey: c.credential.privateKey!.reveal(),
        certificate: c.credential.certificate,
        command: 'id -un',
      });
    // Before: the empty KRL file revokes nothing.
    assert.equal((await login(revoked)).code, 0);
    await cli.fx.app.broker.revoke(revoked.grant.id, { id: 'alice', admin: false }, 'done early');

    const result = await cli.warden(['ssh', 'krl', '--out', cli.krlFile, '--config', cli.configFile]);
    assert.equal(result.code, ExitCode.Ok, result.err);
    assert.match(result.out, /: 1 revoked grant\n$/);
    assert.equal(readFileSync(cli.krlFile).subarray(0, 8).toString('latin1'), 'SSHKRL\n\0');
    assert.equal(statSync(cli.krlFile).mode & 0o777, 0o644);
    assert.deepEqual(
      readdirSync(join(cli.krlFile, '..')).filter((f) => f.endsWith('.tmp')),
      [],
      'a temporary file was left behind',
    );

    // The same sshd, not restarted: RevokedKeys is read on each connection.
    const mark = cli.fx.sshd.logs().length;
    const refused = await login(revoked);
    assert.equal(refused.code, 255, refused.stdout);
    await cli.fx.sshd.waitForLog(/revoked/i, mark);
    const accepted = await login(live);
    assert.equal(accepted.code, 0, accepted.stderr);
    assert.equal(accepted.stdout.trim(), TEST_USER);
  });

  it('the KRL names grants revoked before their expiry only: not live, expired or extension requests', async () => {
    const { grant } = await cli.fx.grant();
    const now = Date.now();
    const rows = [
      { id: 'rkrlrevoked1', state: 'revoked', expiresAt: now + 60_000 },
      { id: 'rkrlexpired1', state: 'revoked', expiresAt: now - 60_000 },
      { id: 'rkrlactive01', state: 'active', expiresAt: now + 60_000 },
      { id: 'rkrlended001', state: 'expired', expiresAt: now - 1 },
      { id: 'rkrlextend01', state: 'revoked', expiresAt: now + 60_000, kind: 'extension' },
    ] as const;
    for (const row of rows) await cli.fx.store.insertRequest({ ...grant, ...row });
    const ids = (await cli.fx.store.listRevokedUnexpired(now)).map((g) => g.id);
    assert.ok(ids.includes('rkrlrevoked1'));
    for (const id of ['rkrlexpired1', 'rkrlactive01', 'rkrlended001', 'rkrlextend01', grant.id]) {
      assert.ok(!ids.includes(id), `${id} is in the KRL`);
    }
  });

  for (const [name, args, code, pattern] of [
    ['without --out', [], ExitCode.Usage, /usage: warden ssh krl --out FILE/],
    [
      'into a missing directory',
      ['--out', '/nonexistent-warden-dir/krl'],
      ExitCode.Refused,
      /\(ERR_SSH_CLI_WRITE_FAILED\)/,
    ],
  ] as const) {
    it(`ssh krl ${name}: exit ${code}`, async () => {
      const result = await cli.warden(['ssh', 'krl', ...args, '--config', cli.configFile]);
      assert.equal(result.code, code);
      assert.match(result.err, pattern);
    });
  }

  it('ssh krl writes an empty file when nothing is revoked (sshd reads it as nothing revoked)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-krl-'));
    const store = openEmbeddedStore(join(dir, 'empty.db'));
    await store.migrate();
    try {
      const file = join(dir, 'krl');
      writeFileSync(file, 'old content');
      const io = captureIo(cli.env);
      const code = await runSshCommand(['krl'], { out: file, config: cli.configFile }, io, { store });
      assert.equal(code, ExitCode.Ok, io.errText());
      assert.equal(readFileSync(file).length, 0);
      assert.match(io.outText(), /: 0 revoked grants\n$/);
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('ssh ca and ssh krl read a CA key kept in Vault (the stand-in) as serve does; a missing field exits 3 naming ssh.ca_key', async () => {
    const vault = await startVaultStandin();
    const dir = mkdtempSync(join(tmpdir(), 'warden-ssh-vault-'));
    try {
      const caKey = cli.env[CA_ENV]!;
      vault.kvPut('warden', { ssh_ca: caKey });
      vault.addPolicy('warden', { 'kv/data/warden': ['read'] });
      const token = vault.addToken(['warden']);
      const configOf = (field: string) => {
        const config = parse(readFileSync(cli.configFile, 'utf8'));
        config.ssh = { ca_key: { vault: `kv/data/warden#${field}` } };
        config.vault = { address: vault.address, auth: { method: 'token', token: { env: 'VT' } } };
        const file = join(dir, `${field}.yaml`);
        writeFileSync(file, stringify(config));
        return file;
      };
      const env = { [CA_ENV]: undefined, VT: token };
      const ca = await cli.warden(['ssh', 'ca', '--config', configOf('ssh_ca')], env);
      assert.equal(ca.code, ExitCode.Ok, ca.err);
      assert.equal(ca.out, `${formatCaPublicKeyLine(cli.fx.ca)}\n`);
      const krlFile = join(dir, 'krl');
      const krl = await cli.warden(['ssh', 'krl', '--out', krlFile, '--config', configOf('ssh_ca')], env);
      assert.equal(krl.code, ExitCode.Ok, krl.err);
      assert.match(krl.out, /revoked grant/);
      const missing = await cli.warden(['ssh', 'ca', '--config', configOf('nope')], env);
      assert.equal(missing.code, ExitCode.Config);
      assert.match(
        missing.err,
        /ssh\.ca_key: the Vault secret kv\/data\/warden has no field "nope" \(its fields: ssh_ca\) \(ERR_CONFIG_SECRET\)/,
      );
      assert.ok(!`${ca.out}${ca.err}${krl.out}${krl.err}${missing.err}`.includes(caKey.split('\n')[1]!));
    } finally {
      await vault.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('an unknown ssh verb is a usage error', async () => {
    const result = await cli.warden(['ssh', 'frobnicate']);
    assert.equal(result.code, ExitCode.Usage);
    assert.match(result.err, /usage: warden ssh ca/);
  });
});
