import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { grantIdFromKeyId } from '../../../../lib/ssh/certificate.ts';
import { verifyProxyToken } from '../../../../lib/ssh/proxy-token.ts';
import {
  run,
  type SshProxyFixture,
  startSshProxyFixture,
  writeIdentity,
} from '../../../helpers/ssh-proxy-fixture.ts';
import { runSsh, TEST_USER } from '../../../helpers/sshd.ts';

describe('SSH CA provider: certificates per grant against a real sshd', () => {
  let fx: SshProxyFixture;
  before(async () => {
    fx = await startSshProxyFixture();
  });
  after(async () => {
    await fx?.close();
  });

  it('a grant mints a certificate that logs in directly; sshd logs the grant in the key id', async () => {
    const { grant, credential } = await fx.grant();
    assert.equal(credential.kind, 'ssh');
    assert.deepEqual(credential.principals, [TEST_USER]);
    assert.equal(grantIdFromKeyId(credential.keyId), grant.id);
    assert.equal(verifyProxyToken(fx.ca, credential.password!.reveal()), grant.id);
    const mark = fx.sshd.logs().length;
    const result = await runSsh({
      port: fx.sshd.port,
      privateKey: credential.privateKey!.reveal(),
      certificate: credential.certificate,
      command: 'id -un',
    });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout.trim(), TEST_USER);
    await fx.sshd.waitForLog(
      new RegExp(`Accepted certificate ID "warden:grant=${grant.id}:user=alice"`),
      mark,
    );
    const [stored] = await fx.store.listCredentials({ requestId: grant.id });
    assert.equal(stored?.provider, 'ssh-ca');
    assert.equal(stored?.handle, `serial:${credential.serial}`);
  });

  it('ssh-keygen -L shows the principals, validity and options of the rule', async () => {
    const { grant, credential } = await fx.grant('deploy');
    const key = writeIdentity(fx.dir, credential.privateKey!.reveal(), credential.certificate);
    const shown = await run('ssh-keygen', ['-L', '-f', `${key}-cert.pub`]);
    assert.equal(shown.code, 0, shown.stderr);
    const text = shown.stdout;
    assert.match(text, new RegExp(`Key ID: "warden:grant=${grant.id}:user=alice"`));
    assert.match(text, new RegExp(`Serial: ${credential.serial}`));
    assert.match(text, new RegExp(`Principals: \\n\\s+${TEST_USER}\\n`));
    assert.match(text, /Critical Options: \n\s+force-command echo deployed\n/);
    assert.match(text, /Extensions: \(none\)/, 'deploy has no pty, agent or port forwarding');
    const validity = /Valid: from (\S+) to (\S+)/.exec(text);
    assert.ok(validity, text);
    const to = new Date(`${validity[2]}Z`).getTime();
    const from = new Date(`${validity[1]}Z`).getTime();
    // ssh-keygen prints local time; the test machine runs in UTC, and the checks allow for rounding.
    assert.ok(
      Math.abs(to - grant.expiresAt!) < 1_000,
      `valid to ${validity[2]} vs ${new Date(grant.expiresAt!).toISOString()}`,
    );
    assert.ok(Math.abs(from - (grant.activatedAt! - 30_000)) < 1_000, 'backdated 30 s');
    const result = await runSsh({
      port: fx.sshd.port,
      privateKey: credential.privateKey!.reveal(),
      certificate: credential.certificate,
      command: 'id',
    });
    assert.equal(result.stdout.trim(), 'deployed', 'force-command replaced the command');

    const shell = await fx.grant('shell');
    const shellKey = writeIdentity(
      fx.dir,
      shell.credential.privateKey!.reveal(),
      shell.credential.certificate,
    );
    const shellText = (await run('ssh-keygen', ['-L', '-f', `${shellKey}-cert.pub`])).stdout;
    assert.match(shellText, /Extensions: \n\s+permit-pty\n/);
    assert.doesNotMatch(shellText, /permit-agent-forwarding|permit-port-forwarding|force-command/);
  });

  it('sshd refuses the certificate once the grant has expired', async () => {
    const { credential } = await fx.grant('shell', '3s');
    const first = await runSsh({
      port: fx.sshd.port,
      privateKey: credential.privateKey!.reveal(),
      certificate: credential.certificate,
      command: 'true',
    });
    assert.equal(first.code, 0, first.stderr);
    await new Promise((resolve) => setTimeout(resolve, credential.expiresAt - Date.now() + 1_100));
    const mark = fx.sshd.logs().length;
    const second = await runSsh({
      port: fx.sshd.port,
      privateKey: credential.privateKey!.reveal(),
      certificate: credential.certificate,
      command: 'true',
    });
    assert.equal(second.code, 255, 'sshd accepted an expired certificate');
    await fx.sshd.waitForLog(/Certificate invalid: expired/, mark);
  });
});
