/**
 * The lifecycle log covers SSH sessions too (issue 14, "Logs and reload"): a session through the
 * SSH proxy with a Warden certificate is logged at its start and end, by ids and account, with no
 * certificate, private key, token or command text in the log.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { waitFor } from '../../helpers/broker-fixture.ts';
import {
  clientOptions,
  run,
  type SshProxyFixture,
  startSshProxyFixture,
  writeIdentity,
} from '../../helpers/ssh-proxy-fixture.ts';
import { TEST_USER } from '../../helpers/sshd.ts';

const COMMAND_SECRET = 'ghp_commandline0123456789abcdef';

describe('SSH sessions in the lifecycle log', () => {
  let fx: SshProxyFixture;
  before(async () => {
    fx = await startSshProxyFixture();
  });
  after(async () => {
    await fx?.close();
  });

  it('the SSH proxy logged no session start or end: both are info lines, without secrets', async () => {
    const { grant, credential } = await fx.grant();
    const key = writeIdentity(fx.dir, credential.privateKey!.reveal(), credential.certificate);
    const result = await run('ssh', [
      ...clientOptions(fx.proxyPort, key),
      `${TEST_USER}+web-1@127.0.0.1`,
      `echo ${COMMAND_SECRET} > /dev/null; exit 3`,
    ]);
    assert.equal(result.code, 3, result.stderr);
    const lines = () => fx.logs.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const ended = (await waitFor(
      () => lines().find((l) => l.msg === 'session ended' && l.grant === grant.id),
      10_000,
      'the session end line',
    ))!;
    const started = lines().find((l) => l.msg === 'session started' && l.grant === grant.id)!;
    assert.equal(started.level, 'info');
    assert.equal(started.protocol, 'ssh');
    assert.equal(started.via, 'proxy:ssh');
    assert.equal(started.requester, 'alice');
    assert.equal(started.target, 'web-1');
    assert.equal(started.access_level, 'shell');
    assert.equal(started.login, TEST_USER);
    assert.equal(ended.level, 'info');
    assert.equal(ended.session, started.session);
    assert.equal(typeof ended.duration_ms, 'number');
    assert.equal(ended.exit, 3);
    const active = lines().find((l) => l.msg === 'grant active' && l.request === grant.id)!;
    assert.equal(active.login, credential.login);

    const all = fx.logs.lines.join('\n');
    const certificateBody = credential.certificate.split(' ')[1]!;
    for (const secret of [
      certificateBody.slice(0, 40),
      credential.privateKey!.reveal().split('\n')[1]!,
      credential.password!.reveal(),
      COMMAND_SECRET,
    ]) {
      assert.equal(all.includes(secret), false, `a secret in the log: ${secret.slice(0, 6)}…`);
    }
  });
});
