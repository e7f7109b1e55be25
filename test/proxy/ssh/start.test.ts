import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createBrokerApp } from '../../../broker/app.ts';
import { parseConfig } from '../../../broker/config/load.ts';
import { createLogger } from '../../../broker/log.ts';
import { readProxySettings } from '../../../cli/proxy-settings.ts';
import { formatOpenSshPrivateKey, generateCa } from '../../../lib/ssh/keys.ts';
import { startProxies } from '../../../proxy/start.ts';
import { LogCapture } from '../../helpers/broker-fixture.ts';
import { buildSshConfig, CA_ENV, generateEd25519 } from '../../helpers/ssh-proxy-fixture.ts';

async function withApp(
  proxy: Record<string, unknown> | undefined,
  env: Record<string, string>,
  body: (start: () => ReturnType<typeof startProxies>) => Promise<void>,
): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'warden-sshstart-'));
  const input = buildSshConfig(1, join(dir, 'warden.db'));
  Object.assign(input.targets!['web-1']!, { insecure_skip_host_key_check: true });
  input.ssh = { ca_key: { env: CA_ENV }, ...(proxy ? { proxy } : {}) } as typeof input.ssh;
  const config = parseConfig(input, 'test');
  const fullEnv = { [CA_ENV]: formatOpenSshPrivateKey(generateCa('t').privateKey, 't'), ...env };
  const logger = createLogger({ level: 'debug', destination: new LogCapture() });
  const app = await createBrokerApp(config, { logger, env: fullEnv });
  try {
    // As `warden serve` starts it: settings read from the config, started through the one path.
    await body(async () =>
      startProxies(readProxySettings(config, fullEnv), { ports: app.proxyPorts, clock: Date.now, logger }),
    );
  } finally {
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('startSshProxy (warden serve)', () => {
  it('starts nothing without ssh.proxy', async () => {
    await withApp(undefined, {}, async (start) => assert.deepEqual(await start(), []));
  });

  it('listens on ssh.proxy.listen and speaks SSH', async () => {
    const keys = { HOST: generateEd25519().privateKey, UP: generateEd25519().privateKey };
    const settings = { listen: '127.0.0.1:0', host_key: { env: 'HOST' }, upstream_key: { env: 'UP' } };
    await withApp(settings, keys, async (start) => {
      const [proxy] = await start();
      try {
        assert.equal(proxy!.protocol, 'ssh');
        const port = Number(proxy!.listeners[0]!.address.split(':').at(-1));
        const banner = await new Promise<string>((resolve, reject) => {
          const socket = connect(port, '127.0.0.1');
          socket.once('data', (d) => {
            socket.destroy();
            resolve(d.toString('latin1'));
          });
          socket.once('error', reject);
        });
        assert.match(banner, /^SSH-2\.0-Warden/);
      } finally {
        await proxy!.close();
      }
    });
  });

  it('fails at start-up with the config path when a key is not set', async () => {
    const settings = { listen: '127.0.0.1:0', host_key: { env: 'HOST' }, upstream_key: { env: 'UP' } };
    await withApp(settings, { HOST: generateEd25519().privateKey }, async (start) => {
      await assert.rejects(
        start(),
        (e: { code?: string; message: string }) =>
          e.code === 'ERR_CONFIG_SECRET' && e.message.includes('ssh.proxy.upstream_key'),
      );
    });
  });
});
