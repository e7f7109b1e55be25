/**
 * The one start path of the proxies (`proxy/start.ts`): every protocol with settings starts from
 * the same options; a protocol that cannot start closes the ones already listening.
 */
import assert from 'node:assert/strict';
import { connect, createServer, type Server } from 'node:net';
import { describe, it } from 'node:test';
import type { ProxyPorts } from '../../broker/ports/proxy.ts';
import { createSilentLogger } from '../../lib/log.ts';
import { Secret } from '../../lib/secret.ts';
import { generateCa } from '../../lib/ssh/keys.ts';
import { PROXY_PROTOCOLS, type ProxySettingsByProtocol, startProxies } from '../../proxy/start.ts';
import { generateEd25519 } from '../helpers/ssh-proxy-fixture.ts';

const ports: ProxyPorts = {
  grants: { lookup: async () => undefined, getGrant: async () => undefined, watch: () => () => {} },
  sessions: {
    insertSession: async () => {},
    appendSessionEvents: async () => {},
    appendSessionFrames: async () => {},
    endSession: async () => {},
  },
  audit: { record: async () => {} },
};
const options = { ports, clock: Date.now, logger: createSilentLogger() };

const postgres = (
  listen: string,
  masking: Record<string, unknown> = {},
): ProxySettingsByProtocol['postgres'] => ({
  targets: {
    'app-db': {
      proxy: { listen, allow_plaintext: true, guardrails: {}, masking, record_rows: false },
    },
    'not-proxied': {},
  },
  env: {},
});
const ssh = (listen: string): ProxySettingsByProtocol['ssh'] => ({
  listen,
  hostKey: generateEd25519().privateKey,
  upstreamKey: generateEd25519().privateKey,
  ca: generateCa('t'),
  targets: {},
  secrets: (_ref, _path) => new Secret('unused'),
});

const portOf = (address: string) => Number(address.slice(address.lastIndexOf(':') + 1));

/** The first bytes a listener sends after `hello`, or the connection error's code. */
function probe(port: number, hello: Buffer): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(hello));
    socket.once('data', (data) => {
      socket.destroy();
      resolve(data.toString('latin1'));
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
  });
}
/** An SSLRequest: a Postgres listener answers `N` (no TLS configured). */
const SSL_REQUEST = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);

describe('startProxies', () => {
  it('has a starter for every protocol', () => {
    assert.deepEqual(Object.keys(PROXY_PROTOCOLS), ['postgres', 'ssh']);
  });

  it('starts nothing without settings', async () => {
    assert.deepEqual(await startProxies({}, options), []);
  });

  it('starts every protocol from the same options, each listening, and closes them', async () => {
    const running = await startProxies(
      { postgres: postgres('127.0.0.1:0'), ssh: ssh('127.0.0.1:0') },
      options,
    );
    try {
      assert.deepEqual(
        running.map((proxy) => [proxy.protocol, proxy.listeners.map((l) => l.name)]),
        [
          ['postgres', ['app-db']],
          ['ssh', ['ssh']],
        ],
      );
      const [pg, sshd] = running.map((proxy) => portOf(proxy.listeners[0]!.address)) as [number, number];
      assert.equal(await probe(pg, SSL_REQUEST), 'N');
      assert.match(await probe(sshd, Buffer.from('SSH-2.0-probe\r\n')), /^SSH-2\.0-Warden/);
    } finally {
      await Promise.all(running.map((proxy) => proxy.close()));
    }
  });

  it('closes what it started when a later protocol cannot listen', async () => {
    const taken: Server = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const busy = (taken.address() as { port: number }).port;
    const pgPort = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const { port } = s.address() as { port: number };
        s.close(() => resolve(port));
      });
    });
    try {
      await assert.rejects(
        startProxies({ postgres: postgres(`127.0.0.1:${pgPort}`), ssh: ssh(`127.0.0.1:${busy}`) }, options),
        { code: 'EADDRINUSE' },
      );
      assert.equal(await probe(pgPort, SSL_REQUEST), 'ECONNREFUSED', 'the Postgres listener was closed');
    } finally {
      taken.close();
    }
  });

  it('fails on a bad setting before anything listens, naming the config path', async () => {
    await assert.rejects(
      startProxies(
        {
          postgres: postgres('127.0.0.1:0', { detectors: { shoe_size: 'redact' } }),
          ssh: ssh('127.0.0.1:0'),
        },
        options,
      ),
      (error: { code?: string; message: string }) =>
        error.code === 'ERR_MASKING_CONFIG' && error.message.includes('targets.app-db.proxy.masking'),
    );
  });
});
