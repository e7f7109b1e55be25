/**
 * Starts the SSH proxy from the configuration (`ssh.proxy`), for `warden serve` and `warden proxy`:
 * resolves the keys, compiles masking and host key pins (failing at start-up with the config path)
 * and listens on `ssh.proxy.listen`.
 */

import type { Logger } from 'pino';
import type { BrokerApp } from '../../broker/app.ts';
import { loadSshCa } from '../../broker/app.ts';
import type { Config } from '../../broker/config/load.ts';
import { resolveSecret } from '../../broker/config/secrets.ts';
import { createBrokerBackend } from './backend.ts';
import { createMaskerFactory } from './output-masker.ts';
import { SshProxyServer } from './server.ts';

/** Starts and returns the SSH proxy, or `undefined` when `ssh.proxy` is not configured. */
export async function startSshProxy(
  config: Config,
  app: Pick<BrokerApp, 'broker' | 'store'>,
  logger: Logger,
  env: Record<string, string | undefined> = process.env,
): Promise<SshProxyServer | undefined> {
  const settings = config.ssh?.proxy;
  if (!settings) return undefined;
  const proxy = new SshProxyServer({
    backend: createBrokerBackend(app.broker, app.store),
    ca: loadSshCa(config, env),
    hostKey: resolveSecret(settings.host_key, 'ssh.proxy.host_key', env).reveal(),
    upstreamKey: resolveSecret(settings.upstream_key, 'ssh.proxy.upstream_key', env).reveal(),
    logger,
    maskers: createMaskerFactory(config.targets, env),
  });
  const [host, port] = settings.listen.split(':');
  try {
    const address = await proxy.listen(Number(port), host);
    logger.info({ listen: `${address.address}:${address.port}` }, 'SSH proxy listening');
  } catch (error) {
    await proxy.close();
    throw error;
  }
  return proxy;
}
