/**
 * Starts the SSH proxy the way every proxy starts (see `broker/ports/proxy.ts`): from the broker's
 * ports, a clock, a logger and its settings. Compiles guardrails, masking and host key pins first
 * (failing at start-up with the config path), then listens on `settings.listen`.
 */
import type { ProxyOptions, RunningProxy } from '../../broker/ports/proxy.ts';
import type { SshProxySettings } from './config.ts';
import { createMaskerFactory } from './output-masker.ts';
import { SshProxyServer } from './server.ts';

/**
 * Starts the SSH proxy and returns it running (its server as `server`).
 * @throws SshProxyError (`ERR_SSH_PROXY_CONFIG`), GuardrailConfigError, MaskingConfigError or
 *   what the settings' secret resolver throws, each naming the config path; or the listen error.
 */
export async function startSshProxy(
  options: ProxyOptions<SshProxySettings>,
): Promise<RunningProxy & { server: SshProxyServer }> {
  const { settings, logger } = options;
  const server = new SshProxyServer({
    maskers: createMaskerFactory(settings.targets, settings.secrets),
    ports: options.ports,
    targets: settings.targets,
    ca: settings.ca,
    hostKey: settings.hostKey,
    upstreamKey: settings.upstreamKey,
    logger,
    clock: options.clock,
  });
  const at = settings.listen.lastIndexOf(':');
  let listen: string;
  try {
    const address = await server.listen(Number(settings.listen.slice(at + 1)), settings.listen.slice(0, at));
    listen = `${address.address}:${address.port}`;
  } catch (error) {
    await server.close();
    throw error;
  }
  logger.info({ listen }, 'SSH proxy listening');
  return {
    protocol: 'ssh',
    listeners: [{ name: 'ssh', address: listen }],
    server,
    close: () => server.close(),
  };
}
