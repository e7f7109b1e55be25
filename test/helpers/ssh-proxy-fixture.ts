/**
 * An SSH proxy end to end for tests: Warden's CA, a real sshd that trusts it and accepts the
 * proxy's upstream key, a broker (embedded store) with an SSH target `web-1`, and the proxy on a
 * free port. Also drives the real `ssh`/`scp` clients through the proxy.
 */

import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrokerApp, createBrokerApp } from '../../broker/app.ts';
import { type Config, parseConfig } from '../../broker/config/load.ts';
import type { ConfigInput } from '../../broker/config/schema.ts';
import { resolveLocalSecret } from '../../broker/config/secrets.ts';
import type { BrokerEvent, SshIssuedCredential } from '../../broker/events/events.ts';
import { createLogger } from '../../broker/log.ts';
import type { AccessRequest } from '../../broker/model.ts';
import type { ProxyPorts, SessionRecord } from '../../broker/ports/proxy.ts';
import { SshCredential } from '../../broker/providers/ssh-ca/credential.ts';
import { openEmbeddedStore } from '../../broker/store/sql-store.ts';
import type { Store } from '../../broker/store/store.ts';
import {
  formatCaPublicKeyLine,
  formatOpenSshPrivateKey,
  formatPublicKeyLine,
  generateCa,
  type SshCa,
} from '../../lib/ssh/keys.ts';
import { createMaskerFactory } from '../../proxy/ssh/output-masker.ts';
import { readStoredRecording } from '../../proxy/ssh/recording/stored-recording.ts';
import { type SshProxyOptions, SshProxyServer } from '../../proxy/ssh/server.ts';
import { LogCapture } from './broker-fixture.ts';
import { clientOptions, type Sshd, type SshdOptions, startSshd, TEST_USER } from './sshd.ts';

export { clientOptions };

export const CA_ENV = 'WARDEN_TEST_SSH_CA';

/** An Ed25519 key pair as OpenSSH private key text and public key line. */
export function generateEd25519(comment = ''): { privateKey: string; publicKey: string } {
  const { privateKey } = generateKeyPairSync('ed25519');
  const jwk = privateKey.export({ format: 'jwk' });
  const raw = Buffer.from(jwk.x!, 'base64url');
  const blob = Buffer.concat([
    Buffer.from([0, 0, 0, 11]),
    Buffer.from('ssh-ed25519'),
    Buffer.from([0, 0, 0, 32]),
    raw,
  ]);
  return {
    privateKey: formatOpenSshPrivateKey(privateKey, comment),
    publicKey: formatPublicKeyLine(blob, comment),
  };
}

/** The SSH test organisation: alice (engineering) gets `web-1:shell` on her own approval-free rule. */
export function buildSshConfig(
  sshdPort: number,
  storePath: string,
  overrides: Partial<ConfigInput> = {},
): ConfigInput {
  return {
    broker: { sweep_interval: '1s', store: { kind: 'embedded', path: storePath } },
    ssh: { ca_key: { env: CA_ENV } },
    targets: {
      'web-1': {
        kind: 'ssh',
        host: '127.0.0.1',
        port: sshdPort,
        levels: {
          shell: { principals: [TEST_USER] },
          deploy: { principals: [TEST_USER], force_command: 'echo deployed', permit_pty: false },
        },
        guardrails: { patterns: [{ id: 'no-secrets', pattern: 'cat /etc/shadow' }] },
      },
    },
    people: [
      { id: 'alice', email: 'alice@example.com', manager: 'maria', groups: ['engineering'] },
      { id: 'maria', email: 'maria@example.com', groups: ['managers'] },
      { id: 'root', email: 'root@example.com', groups: ['security'], admin: true },
    ],
    rules: [
      {
        name: 'web-shell',
        targets: ['web-1'],
        duration: { default: '30m', max: '2h' },
        reason: { required: false },
        approvers: ['manager'],
        auto_approve: { groups: ['engineering'] },
        extend: { allowed: true, needs_approval: false },
      },
    ],
    ...overrides,
  };
}

export interface SshProxyFixture {
  ca: SshCa;
  sshd: Sshd;
  app: BrokerApp;
  config: Config;
  store: Store;
  proxy: SshProxyServer;
  proxyPort: number;
  events: BrokerEvent[];
  logs: LogCapture;
  dir: string;
  /** The proxy's upstream private key (every account of the test sshd accepts it). */
  upstreamKey: string;
  /** The asciicast text of an ended session's recording (throws when it has none). */
  recordingOf(session: SessionRecord): Promise<string>;
  /** Requests `web-1:<level>` as alice (auto-approved) and returns the grant and its credential. */
  grant(
    level?: string,
    duration?: string,
  ): Promise<{ grant: AccessRequest; credential: SshIssuedCredential }>;
  close(): Promise<void>;
}

export async function startSshProxyFixture(
  options: {
    proxy?: Partial<SshProxyOptions>;
    config?: Partial<ConfigInput>;
    /** Extra fields of the `web-1` target (masking, host key pinning); a function sees the sshd. */
    target?: Record<string, unknown> | ((sshd: Sshd) => Record<string, unknown>);
    /** Extra environment the config's secret references read. */
    env?: Record<string, string>;
    /** Extra sshd options (a KRL file). */
    sshd?: Partial<SshdOptions>;
    /** Wraps the broker's ports the proxy gets (a slow or watching session sink). */
    wrapPorts?: (ports: ProxyPorts) => ProxyPorts;
  } = {},
): Promise<SshProxyFixture> {
  const ca = generateCa('warden-test-ca');
  const upstream = generateEd25519('warden-proxy-upstream');
  const hostKey = generateEd25519('warden-proxy-host');
  const sshd = await startSshd({
    trustedUserCaKeys: [formatCaPublicKeyLine(ca)],
    authorizedKeys: [`from="127.0.0.1" ${upstream.publicKey}`],
    ...options.sshd,
  });
  const dir = mkdtempSync(join(tmpdir(), 'warden-sshproxy-'));
  const input = buildSshConfig(sshd.port, join(dir, 'warden.db'), options.config ?? {});
  const extra = typeof options.target === 'function' ? options.target(sshd) : (options.target ?? {});
  Object.assign(input.targets!['web-1']!, { host_key: sshd.hostKey }, extra);
  const config = parseConfig(input, 'test');
  const env = { [CA_ENV]: formatOpenSshPrivateKey(ca.privateKey, 'warden-test-ca'), ...options.env };
  const logs = new LogCapture();
  const logger = createLogger({ level: 'debug', destination: logs });
  const store = openEmbeddedStore(join(dir, 'warden.db'), { backgroundCheckpoints: true });
  await store.migrate();
  const app = await createBrokerApp(config, { logger, env, store });
  const events: BrokerEvent[] = [];
  app.broker.events.subscribe((e) => {
    events.push(e);
  });
  let proxy: SshProxyServer;
  try {
    const targets = Object.fromEntries(
      Object.entries(config.targets).flatMap(([name, t]) => (t.kind === 'ssh' ? [[name, t]] : [])),
    );
    proxy = new SshProxyServer({
      ports: (options.wrapPorts ?? ((p) => p))(app.proxyPorts),
      targets,
      ca,
      hostKey: hostKey.privateKey,
      upstreamKey: upstream.privateKey,
      logger,
      maskers: createMaskerFactory(config.targets, (ref, path) => resolveLocalSecret(ref, path, env)),
      recheckIntervalMs: 500,
      ...options.proxy,
    });
  } catch (error) {
    await app.close();
    await store.close();
    await sshd.stop();
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  const { port } = await proxy.listen(0);
  return {
    ca,
    sshd,
    app,
    config,
    store,
    proxy,
    proxyPort: port,
    events,
    logs,
    dir,
    upstreamKey: upstream.privateKey,
    async recordingOf(session) {
      const text = await readStoredRecording(store, session.id);
      if (text === null) throw new Error(`session ${session.id} has no recording`);
      return text;
    },
    async grant(level = 'shell', duration = '30m') {
      const grant = await app.broker.request({
        requester: 'alice',
        target: 'web-1',
        level,
        duration,
        reason: 'test',
        source: 'cli',
      });
      const event = events.find((e) => e.type === 'grant.active' && e.request.id === grant.id);
      if (event?.type !== 'grant.active' || !(event.credential instanceof SshCredential)) {
        throw new Error(`grant ${grant.id} is ${grant.state}: ${grant.error}`);
      }
      return { grant, credential: event.credential };
    },
    async close() {
      await proxy.close();
      await app.close();
      await store.close();
      await sshd.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface ClientRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Writes the key and certificate of a credential to a directory, for `ssh -i`. */
export function writeIdentity(dir: string, privateKey: string, certificate: string): string {
  const key = join(dir, `id-${Math.random().toString(36).slice(2)}`);
  writeFileSync(key, privateKey, { mode: 0o600 });
  writeFileSync(`${key}-cert.pub`, certificate + '\n');
  return key;
}

/** Runs a program to completion, collecting its output; never throws on a non-zero exit. */
export function run(command: string, args: string[], input?: string | Buffer): Promise<ClientRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    child.once('error', reject);
    child.once('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    // A program that exits without reading its input closes the pipe: EPIPE is not a failure.
    child.stdin.on('error', () => {});
    child.stdin.end(input ?? '');
  });
}
