import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SshTargetConfig } from '../../../broker/config/schema.ts';
import { parsePublicKeyBlob, resolveHostKeyPolicy } from '../../../proxy/ssh/host-key.ts';
import { generateEd25519 } from '../../helpers/ssh-proxy-fixture.ts';

const good = generateEd25519('host').publicKey;
const [, goodData] = good.split(' ');

describe('host key lines', () => {
  for (const [name, line] of [
    ['empty', ''],
    ['no key data', 'ssh-ed25519'],
    ['unknown type', `ssh-dss ${goodData}`],
    ['type differs from the blob', `ssh-rsa ${goodData}`],
    ['not base64', 'ssh-ed25519 !!!!'],
    ['truncated blob', 'ssh-ed25519 AAAA'],
  ] as const) {
    it(`refuses ${name}`, () => assert.equal(parsePublicKeyBlob(line), undefined));
  }
  it('reads a key line with a comment', () => assert.ok(parsePublicKeyBlob(good)));

  it('refuses a bad pin, an unreadable known_hosts and a missing pin with ERR_SSH_PROXY_CONFIG', () => {
    const base = { kind: 'ssh', host: 'h', port: 22, insecure_skip_host_key_check: false } as SshTargetConfig;
    const none = () => {
      throw Object.assign(new Error('nope'), { code: 'ENOENT' });
    };
    for (const target of [
      { ...base, host_key: 'ssh-ed25519 AAAA' },
      { ...base, known_hosts: '/nope' },
      base,
    ]) {
      assert.throws(
        () => resolveHostKeyPolicy('web', target, none),
        (e: { code?: string; message: string }) =>
          e.code === 'ERR_SSH_PROXY_CONFIG' && e.message.includes('targets.web'),
      );
    }
    assert.throws(
      () => resolveHostKeyPolicy('web', { ...base, known_hosts: '/kh' }, () => `other ${good}\n`),
      /no key for h:22/,
    );
  });
});
