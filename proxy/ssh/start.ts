/**
 * Starts the SSH proxy the way every proxy starts (see `broker/ports/proxy.ts`): from the broker's
 * ports, a clock, a logger and its settings. Compiles guardrails, masking and host key pins first
 * (failing at start-up with the config path), then listens on `settings.listen`.
 */
import { readFileSync } from 'node:fs';
import ssh2 from 'ssh2';
import type { ProxyOptions, RunningProxy } from '../../broker/ports/proxy.ts';
import type { SshProxySettings } from './config.ts';
import { SshProxyConfigError } from './errors.ts';
import { compileGuardrails, type GuardrailRulesInput } from './guardrails/rules.ts';
import { resolveHostKeyPolicy } from './host-key.ts';
import { createMaskerFactory } from './output-masker.ts';
import { SshProxyServer } from './server.ts';

/** Reads a private key the way ssh2 will, so a bad one fails here naming its key. */
function checkPrivateKey(text: string, path: string): void {
  const parsed = ssh2.utils.parseKey(text);
  if (parsed instanceof Error) {
    throw new SshProxyConfigError(path, `not a usable private key (${parsed.message})`);
  }
}

/**
 * Checks every section the SSH proxy reads (its keys, each SSH target's guardrails, masking and
 * host key pin) without opening anything, so `warden serve` and `warden doctor` can run it before
 * the broker starts. The proxy compiles them again when it starts.
 * @throws SshProxyConfigError (`ERR_SSH_PROXY_CONFIG`), GuardrailConfigError, MaskingConfigError or
 *   what the settings' secret resolver throws, each naming the config path.
 */
export function checkSshProxySettings(
  settings: SshProxySettings,
  readFile: (path: string) => string = (path) => readFileSync(path, 'utf8'),
): void {
  checkPrivateKey(settings.hostKey, 'ssh.proxy.host_key');
  checkPrivateKey(settings.upstreamKey, 'ssh.proxy.upstream_key');
  createMaskerFactory(settings.targets, settings.secrets);
  for (const [name, target] of Object.entries(settings.targets)) {
    compileGuardrails((target.guardrails ?? {}) as GuardrailRulesInput, `targets.${name}.guardrails`);
    resolveHostKeyPolicy(name, target, readFile);
  }
}

/**
 * Starts the SSH proxy and returns it running (its server as `server`).
 * @throws SshProxyError (`ERR_SSH_PROXY_CONFIG`), GuardrailConfigError, MaskingConfigError or
 *   what the settings' secret resolver throws, each naming the config path; or the listen error.
 */
export async function startSshProxy(
  options: ProxyOptions<SshProxySettings>,
): Promise<RunningProxy & { server: SshProxyServer }> {
  const { settings, logger } = options;
  checkPrivateKey(settings.hostKey, 'ssh.proxy.host_key');
  checkPrivateKey(settings.upstreamKey, 'ssh.proxy.upstream_key');
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
