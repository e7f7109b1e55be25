/**
 * Starts the SSH proxy from the configuration (`ssh.proxy`), for `warden serve`: resolves the
 * keys, compiles masking, guardrails and host key pins (failing at start-up with the config
 * path) and listens on `ssh.proxy.listen`. {@link resolveSshProxySettings} does the checking part
 * alone, so `warden serve` and `warden doctor` can run it before anything starts.
 */

import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import ssh2 from 'ssh2';
import type { BrokerApp } from '../../broker/app.ts';
import { loadSshCa } from '../../broker/app.ts';
import type { Config } from '../../broker/config/load.ts';
import { resolveSecret } from '../../broker/config/secrets.ts';
import type { SshCa } from '../../broker/providers/ssh-ca/keys.ts';
import { createBrokerBackend } from './backend.ts';
import { SshProxyConfigError } from './errors.ts';
import { compileGuardrails, type GuardrailRulesInput } from './guardrails/rules.ts';
import { resolveHostKeyPolicy } from './host-key.ts';
import { createMaskerFactory, type OutputMaskerFactory } from './output-masker.ts';
import { SshProxyServer } from './server.ts';

/** The SSH proxy's settings, checked and with their secrets resolved. */
export interface SshProxySettings {
  listen: string;
  ca: SshCa;
  hostKey: string;
  upstreamKey: string;
  maskers: OutputMaskerFactory;
}

/** Reads a private key the way ssh2 will, so a bad one fails here naming its key. */
function checkPrivateKey(text: string, path: string): string {
  const parsed = ssh2.utils.parseKey(text);
  if (parsed instanceof Error) {
    throw new SshProxyConfigError(path, `not a usable private key (${parsed.message})`);
  }
  return text;
}

/**
 * Checks every section the SSH proxy reads (keys, each SSH target's guardrails, masking and host
 * key pin) without starting anything. Returns `undefined` when `ssh.proxy` is not configured.
 *
 * @throws ConfigError / SecretError (`ssh.ca_key`, `ssh.proxy.*_key`), SshProxyConfigError,
 *   GuardrailConfigError or MaskingConfigError, each naming the config path.
 */
export function resolveSshProxySettings(
  config: Config,
  env: Record<string, string | undefined> = process.env,
  readFile: (path: string) => string = (path) => readFileSync(path, 'utf8'),
): SshProxySettings | undefined {
  const settings = config.ssh?.proxy;
  if (!settings) return undefined;
  const ca = loadSshCa(config, env);
  const hostKey = resolveSecret(settings.host_key, 'ssh.proxy.host_key', env).reveal();
  const upstreamKey = resolveSecret(settings.upstream_key, 'ssh.proxy.upstream_key', env).reveal();
  const maskers = createMaskerFactory(config.targets, env);
  // The proxy compiles these again when it starts; compiling them here fails before it does.
  for (const [name, target] of Object.entries(config.targets)) {
    if (target.kind !== 'ssh') continue;
    compileGuardrails((target.guardrails ?? {}) as GuardrailRulesInput, `targets.${name}.guardrails`);
    resolveHostKeyPolicy(name, target, readFile);
  }
  return {
    listen: settings.listen,
    ca,
    hostKey: checkPrivateKey(hostKey, 'ssh.proxy.host_key'),
    upstreamKey: checkPrivateKey(upstreamKey, 'ssh.proxy.upstream_key'),
    maskers,
  };
}

/**
 * Starts and returns the SSH proxy, or `undefined` when `ssh.proxy` is not configured. `settings`
 * are those {@link resolveSshProxySettings} returned, when the caller checked them already.
 */
export async function startSshProxy(
  config: Config,
  app: Pick<BrokerApp, 'broker' | 'store'>,
  logger: Logger,
  env: Record<string, string | undefined> = process.env,
  settings: SshProxySettings | undefined = resolveSshProxySettings(config, env),
): Promise<SshProxyServer | undefined> {
  if (!settings) return undefined;
  const proxy = new SshProxyServer({
    backend: createBrokerBackend(app.broker, app.store),
    ca: settings.ca,
    hostKey: settings.hostKey,
    upstreamKey: settings.upstreamKey,
    logger,
    maskers: settings.maskers,
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
