/**
 * The table of proxy protocols and the one path that starts them (Teleport's `RegisterEngine` and
 * `GetEngine`, as a table): every protocol starts from the same {@link ProxyOptions}, the broker's
 * ports, a clock and a logger, plus its own settings. A new protocol (HTTP, Kubernetes) adds a
 * settings type and a starter here; `warden serve` starts whichever protocols it has settings for.
 */
import type { ProxyOptions, ProxyStarter, RunningProxy } from '../broker/ports/proxy.ts';
import { type PgProxySettings, startPgProxy } from './pg/start.ts';
import type { SshProxySettings } from './ssh/config.ts';
import { startSshProxy } from './ssh/start.ts';

/** Each protocol's settings, by protocol name. */
export interface ProxySettingsByProtocol {
  postgres: PgProxySettings;
  ssh: SshProxySettings;
}

/** The protocols and their starters. */
export const PROXY_PROTOCOLS: {
  readonly [P in keyof ProxySettingsByProtocol]: ProxyStarter<ProxySettingsByProtocol[P]>;
} = {
  postgres: startPgProxy,
  ssh: startSshProxy,
};

/**
 * Starts a proxy for every protocol that has settings, in the table's order, from the same options.
 * When one fails to start, the ones already started are closed and the error is thrown.
 */
export async function startProxies(
  settings: Partial<ProxySettingsByProtocol>,
  options: Omit<ProxyOptions<unknown>, 'settings'>,
): Promise<RunningProxy[]> {
  const running: RunningProxy[] = [];
  try {
    for (const protocol of Object.keys(PROXY_PROTOCOLS) as (keyof ProxySettingsByProtocol)[]) {
      const own = settings[protocol];
      if (own === undefined) continue;
      const start = PROXY_PROTOCOLS[protocol] as ProxyStarter<typeof own>;
      running.push(await start({ ...options, settings: own }));
    }
  } catch (error) {
    await Promise.all(running.map((proxy) => proxy.close()));
    throw error;
  }
  return running;
}
