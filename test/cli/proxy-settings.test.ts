/** What `warden serve` reads from warden.yaml for each proxy protocol, before anything listens. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../../broker/config/load.ts';
import type { ConfigInput } from '../../broker/config/schema.ts';
import { readProxySettings } from '../../cli/proxy-settings.ts';
import { formatOpenSshPrivateKey, generateCa } from '../../lib/ssh/keys.ts';
import { buildSshConfig, CA_ENV, generateEd25519 } from '../helpers/ssh-proxy-fixture.ts';

const pgTarget = (proxy?: Record<string, unknown>) => ({
  kind: 'postgres',
  admin: { host: '127.0.0.1', port: 5432, database: 'app', user: 'warden', password: { env: 'PGPW' } },
  levels: { read: { grants: ['select'] } },
  ...(proxy ? { proxy } : {}),
});

function configWith(extra: { proxied?: boolean; sshProxy?: boolean }) {
  const input = buildSshConfig(22, '/tmp/unused.db') as ConfigInput & Record<string, unknown>;
  Object.assign(input.targets!['web-1']!, { insecure_skip_host_key_check: true });
  input.targets = {
    ...input.targets,
    'plain-db': pgTarget(),
    ...(extra.proxied ? { 'app-db': pgTarget({ listen: '127.0.0.1:0', allow_plaintext: true }) } : {}),
  } as ConfigInput['targets'];
  if (extra.sshProxy)
    input.ssh = {
      ca_key: { env: CA_ENV },
      proxy: { host_key: { env: 'HOST' }, upstream_key: { env: 'UP' } },
    } as ConfigInput['ssh'];
  return parseConfig(input, 'test');
}

const ca = generateCa('t');
const env = {
  [CA_ENV]: formatOpenSshPrivateKey(ca.privateKey, 't'),
  HOST: generateEd25519().privateKey,
  UP: generateEd25519().privateKey,
};

describe('readProxySettings', () => {
  it('asks for no proxy without proxied targets or ssh.proxy', () => {
    assert.deepEqual(readProxySettings(configWith({}), env), {});
  });

  it('gives the Postgres proxy the Postgres targets only, and the SSH proxy its keys and SSH targets', () => {
    const settings = readProxySettings(configWith({ proxied: true, sshProxy: true }), env);
    assert.deepEqual(Object.keys(settings.postgres!.targets).sort(), ['app-db', 'plain-db']);
    assert.equal(settings.postgres!.env, env);
    const ssh = settings.ssh!;
    assert.equal(ssh.listen, '127.0.0.1:2222');
    assert.deepEqual(Object.keys(ssh.targets), ['web-1']);
    assert.equal(ssh.hostKey, env.HOST);
    assert.equal(ssh.upstreamKey, env.UP);
    assert.equal(ssh.ca.fingerprint, ca.fingerprint, 'the CA of ssh.ca_key');
    assert.equal(ssh.secrets({ env: 'HOST' }, 'x').reveal(), env.HOST);
  });

  it('fails with the config path of a secret that is not set, and of an unusable CA', () => {
    const config = configWith({ sshProxy: true });
    assert.throws(
      () => readProxySettings(config, { ...env, UP: undefined }),
      (e: { code?: string; message: string }) =>
        e.code === 'ERR_CONFIG_SECRET' && e.message.includes('ssh.proxy.upstream_key'),
    );
    assert.throws(
      () => readProxySettings(config, { ...env, [CA_ENV]: 'not a key' }),
      (e: { code?: string; message: string }) => e.message.includes('ssh.ca_key'),
    );
  });
});
