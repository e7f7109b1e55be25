import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseAsciicast } from '../../../proxy/ssh/recording/asciicast-reader.ts';
import { waitFor } from '../../helpers/broker-fixture.ts';
import {
  clientOptions,
  generateEd25519,
  run,
  type SshProxyFixture,
  startSshProxyFixture,
  writeIdentity,
} from '../../helpers/ssh-proxy-fixture.ts';
import { TEST_USER } from '../../helpers/sshd.ts';

async function sshThroughProxy(fx: SshProxyFixture, command: string) {
  const { grant, credential } = await fx.grant();
  const key = writeIdentity(fx.dir, credential.privateKey!.reveal(), credential.certificate);
  const result = await run('ssh', [
    ...clientOptions(fx.proxyPort, key),
    `${TEST_USER}+web-1@127.0.0.1`,
    command,
  ]);
  return { grant, result };
}

describe('SSH proxy masking: what the user sees and the recording are masked', () => {
  let fx: SshProxyFixture;
  before(async () => {
    fx = await startSshProxyFixture({
      target: { masking: { detectors: { card: 'last4', email: 'redact' } } },
    });
  });
  after(async () => {
    await fx?.close();
  });

  it('masks a card number and an email printed by a command, in pieces and whole', async () => {
    // The pieces leave the target in separate writes (separate SSH packets) with no idle pause.
    const command =
      "printf 'card 4111 1111 '; printf '1111 1111 mail alice.sm'; printf 'ith@example.com\\n'; " +
      "echo 'again 4111111111111111 bob@example.org' >&2";
    const { grant, result } = await sshThroughProxy(fx, command);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, 'card **** **** **** 1111 mail [REDACTED:email]\n');
    assert.equal(result.stderr, 'again ************1111 [REDACTED:email]\n');
    const session = await waitFor(async () => {
      const [s] = await fx.store.listSessions({ grantId: grant.id });
      return s?.endedAt ? fx.store.getSession(s.id) : undefined;
    });
    assert.deepEqual(session!.summary.masked, { card: 2, email: 2 });
    const recorded = parseAsciicast(await fx.recordingOf(session!))
      .events.filter((e) => e[1] === 'o')
      .map((e) => e[2])
      .join('');
    assert.doesNotMatch(recorded, /4111 1111 1111|4111111111111111|alice\.smith|bob@/);
    assert.match(recorded, /\*\*\*\* 1111/);
  });
});

describe('SSH proxy host key pinning', () => {
  it('refuses an upstream whose host key differs from the pinned one', async () => {
    const fx = await startSshProxyFixture({ target: { host_key: generateEd25519('impostor').publicKey } });
    try {
      const { grant, result } = await sshThroughProxy(fx, 'echo should-not-run');
      assert.equal(result.code, 255);
      assert.equal(result.stdout, '');
      assert.match(result.stderr, /unknown host key; refusing to connect/);
      await waitFor(async () =>
        (await fx.store.readAudit({})).some(
          (e) => e.subject === grant.id && e.action === 'ssh.host_key_mismatch',
        ),
      );
    } finally {
      await fx.close();
    }
  });

  it('accepts the key from a known_hosts file, hashed or plain', async () => {
    for (const hashed of [false, true]) {
      const fx = await startSshProxyFixture({
        target: (sshd) => {
          const name = `[127.0.0.1]:${sshd.port}`;
          const salt = randomBytes(20);
          const host = hashed
            ? `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`
            : name;
          const file = join(mkdtempSync(join(tmpdir(), 'warden-kh-')), 'known_hosts');
          writeFileSync(
            file,
            `# pinned\nother.example ${generateEd25519().publicKey}\n${host} ${sshd.hostKey}\n`,
          );
          return { host_key: undefined, known_hosts: file };
        },
      });
      try {
        const { result } = await sshThroughProxy(fx, 'echo pinned-ok');
        assert.equal(result.stdout, 'pinned-ok\n', `hashed=${hashed}: ${result.stderr}`);
      } finally {
        await fx.close();
      }
    }
  });

  it('refuses to start without a pin unless insecure_skip_host_key_check is set', async () => {
    await assert.rejects(
      startSshProxyFixture({ target: { host_key: undefined } }),
      (error: { code?: string; message: string }) =>
        error.code === 'ERR_SSH_PROXY_CONFIG' && error.message.includes('targets.web-1'),
    );
    const fx = await startSshProxyFixture({
      target: { host_key: undefined, insecure_skip_host_key_check: true },
    });
    try {
      const { result } = await sshThroughProxy(fx, 'echo unpinned');
      assert.equal(result.stdout, 'unpinned\n', result.stderr);
    } finally {
      await fx.close();
    }
  });
});
