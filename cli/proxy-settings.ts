/**
 * Reads each recording proxy's settings from the configuration, for `warden serve` to start them
 * through `proxy/start.ts`: the Postgres targets with `proxy:` settings, and `ssh.proxy` with its
 * keys and the SSH targets. Secrets are resolved here, so a missing one fails start-up with its
 * config path before anything listens.
 */
import { loadSshCa } from '../broker/app.ts';
import type { Config } from '../broker/config/load.ts';
import { resolveLocalSecret } from '../broker/config/secrets.ts';
import type { ProxySettingsByProtocol } from '../proxy/start.ts';

/**
 * The settings of every proxy the configuration asks for (none without proxied targets or
 * `ssh.proxy`).
 * @throws ConfigError (`ssh.ca_key`) or SecretError (`ERR_CONFIG_SECRET`) naming the config path.
 */
export function readProxySettings(
  config: Config,
  env: Record<string, string | undefined>,
): Partial<ProxySettingsByProtocol> {
  const settings: Partial<ProxySettingsByProtocol> = {};
  const targets = Object.entries(config.targets);
  const pgTargets = Object.fromEntries(targets.flatMap(([n, t]) => (t.kind === 'postgres' ? [[n, t]] : [])));
  if (Object.values(pgTargets).some((target) => target.proxy))
    settings.postgres = { targets: pgTargets, env };
  const ssh = config.ssh?.proxy;
  if (ssh) {
    settings.ssh = {
      listen: ssh.listen,
      ca: loadSshCa(config, env),
      hostKey: resolveLocalSecret(ssh.host_key, 'ssh.proxy.host_key', env).reveal(),
      upstreamKey: resolveLocalSecret(ssh.upstream_key, 'ssh.proxy.upstream_key', env).reveal(),
      targets: Object.fromEntries(targets.flatMap(([n, t]) => (t.kind === 'ssh' ? [[n, t]] : []))),
      secrets: (ref, path) => resolveLocalSecret(ref, path, env),
    };
  }
  return settings;
}
