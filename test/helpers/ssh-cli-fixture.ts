/**
 * The `warden ssh` verbs end to end: the SSH proxy fixture (CA, real sshd, broker, proxy) with
 * sshd reading a KRL file the test owns, a `warden.yaml` for the offline verbs, and the broker API
 * with the SSH certificate route. Runs `warden` in process, capturing what it prints.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { ApiServer } from '../../broker/api/server.ts';
import { createSshRoutes } from '../../broker/api/ssh-route.ts';
import { Secret } from '../../broker/config/secrets.ts';
import { createSilentLogger } from '../../broker/log.ts';
import { main } from '../../cli/main.ts';
import type { Io } from '../../cli/output.ts';
import { formatOpenSshPrivateKey } from '../../lib/ssh/keys.ts';
import { buildSshConfig, CA_ENV, type SshProxyFixture, startSshProxyFixture } from './ssh-proxy-fixture.ts';

export const SERVICE_TOKEN = 'service-token-for-ssh-cli-tests';
export const ADMIN_TOKEN = 'admin-token-for-ssh-cli-tests';

export interface WardenRun {
  code: number;
  out: string;
  err: string;
}

export interface SshCliFixture {
  fx: SshProxyFixture;
  /** A `warden.yaml` naming the fixture's store, CA (through {@link env}) and target. */
  configFile: string;
  /** The KRL file sshd reads on each connection (empty at the start). */
  krlFile: string;
  /** Environment of the CLI: the CA key, the broker URL and the service token. */
  env: Record<string, string>;
  url: string;
  /** Runs `warden <args>` in process; `env` is added to {@link env}. */
  warden(args: string[], env?: Record<string, string | undefined>): Promise<WardenRun>;
  close(): Promise<void>;
}

/** A capturing {@link Io}. */
export function captureIo(
  env: Record<string, string | undefined>,
): Io & { outText(): string; errText(): string } {
  const out: string[] = [];
  const err: string[] = [];
  return {
    out: (line) => out.push(line),
    err: (line) => err.push(line),
    env,
    outText: () => out.map((l) => `${l}\n`).join(''),
    errText: () => err.map((l) => `${l}\n`).join(''),
  };
}

export async function startSshCliFixture(): Promise<SshCliFixture> {
  const dir = mkdtempSync(join(tmpdir(), 'warden-sshcli-'));
  const krlFile = join(dir, 'revoked_keys');
  writeFileSync(krlFile, '');
  const fx = await startSshProxyFixture({ sshd: { revokedKeysFile: krlFile } });
  const configFile = join(dir, 'warden.yaml');
  writeFileSync(configFile, stringify(buildSshConfig(fx.sshd.port, join(fx.dir, 'warden.db'))));
  const api = new ApiServer({
    broker: fx.app.broker,
    store: fx.store,
    tokens: [
      { name: 'svc', role: 'service', secret: new Secret(SERVICE_TOKEN) },
      { name: 'root', role: 'admin', secret: new Secret(ADMIN_TOKEN) },
    ],
    logger: createSilentLogger(),
    extraRoutes: createSshRoutes({
      store: fx.store,
      config: fx.config,
      ca: fx.ca,
      proxy: { host: '127.0.0.1', port: fx.proxyPort },
    }),
  });
  const address = await api.listen(0, '127.0.0.1');
  const url = `http://127.0.0.1:${address.port}`;
  const env = {
    [CA_ENV]: formatOpenSshPrivateKey(fx.ca.privateKey, 'warden-test-ca'),
    WARDEN_URL: url,
    WARDEN_TOKEN: SERVICE_TOKEN,
    HOME: dir,
  };
  return {
    fx,
    configFile,
    krlFile,
    env,
    url,
    async warden(args, extra = {}) {
      const io = captureIo({ ...env, ...extra });
      const code = await main(args, io);
      return { code, out: io.outText(), err: io.errText() };
    },
    async close() {
      await api.close();
      await fx.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
