import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { TargetConfig } from '../../../broker/config/schema.ts';
import { resolveLocalSecret, type SecretRef } from '../../../broker/config/secrets.ts';
import { createMaskerFactory, PassThroughMasker } from '../../../proxy/ssh/output-masker.ts';

const sshTarget = (masking?: Record<string, unknown>) =>
  ({
    kind: 'ssh',
    host: '127.0.0.1',
    port: 22,
    levels: {},
    record_input: true,
    insecure_skip_host_key_check: false,
    ...(masking ? { masking } : {}),
  }) as unknown as TargetConfig;

/** Masking keys read from `env`, as `warden serve` reads them. */
const secretsOf = (env: Record<string, string | undefined>) => (ref: SecretRef, path: string) =>
  resolveLocalSecret(ref, path, env);

const TEXT = 'card 4111 1111 1111 1111, mail alice.smith@example.com\r\n';

describe('SSH output masking', () => {
  it('masks a card number and an email at every split of the output into two chunks', () => {
    const factory = createMaskerFactory({ web: sshTarget({}) }, secretsOf({}));
    const bytes = Buffer.from(TEXT);
    for (let split = 0; split <= bytes.length; split++) {
      const masker = factory({ target: 'web', level: 'shell' });
      const shown = Buffer.concat([
        masker.push(bytes.subarray(0, split)),
        masker.push(bytes.subarray(split)),
        masker.flush(),
      ]).toString();
      assert.equal(shown, 'card **** **** **** 1111, mail [REDACTED:email]\r\n', `split at ${split}`);
      assert.deepEqual({ ...masker.counts }, { card: 1, email: 1 }, `split at ${split}`);
      assert.equal(masker.pendingBytes, 0);
    }
  });

  it('hashes with the key from the secret reference; targets without masking pass through', () => {
    const env = { MASK_KEY: 'k'.repeat(32) };
    const factory = createMaskerFactory(
      { web: sshTarget({ key: 'env:MASK_KEY', detectors: { email: 'hash' } }), plain: sshTarget() },
      secretsOf(env),
    );
    const masker = factory({ target: 'web', level: 'shell' });
    const shown = Buffer.concat([masker.push(Buffer.from(TEXT)), masker.flush()]).toString();
    assert.doesNotMatch(shown, /alice\.smith/);
    assert.ok(factory({ target: 'plain', level: 'shell' }) instanceof PassThroughMasker);
  });

  for (const [name, masking, env, code] of [
    [
      'a key that is not a reference',
      { key: 'hunter2hunter2hunter2', detectors: { email: 'hash' } },
      {},
      'ERR_SSH_PROXY_CONFIG',
    ],
    [
      'a key variable that is not set',
      { key: 'env:NOPE', detectors: { email: 'hash' } },
      {},
      'ERR_CONFIG_SECRET',
    ],
    ['hash without a key', { detectors: { email: 'hash' } }, {}, 'ERR_MASKING_KEY'],
    ['an unknown setting', { detectors: { shoe_size: 'redact' } }, {}, 'ERR_MASKING_CONFIG'],
  ] as const) {
    it(`refuses ${name} at start-up, naming the config path`, () => {
      assert.throws(
        () => createMaskerFactory({ web: sshTarget(masking as Record<string, unknown>) }, secretsOf(env)),
        (error: { code?: string; message: string }) =>
          error.code === code && error.message.includes('targets.web.masking'),
      );
    });
  }
});
