/**
 * The table of proxy protocols and the one path that starts them (Teleport's `RegisterEngine` and
 * `GetEngine`, as a table): every protocol starts from the same {@link ProxyOptions}, the broker's
 * ports, a clock and a logger, plus its own settings. A new protocol (HTTP, Kubernetes) adds a
 * settings type and a starter here; `warden serve` starts whichever protocols it has settings for.
 */
import type { ProxyOptions, ProxyStarter, RunningProxy } from '../broker/ports/proxy.ts';
import { compilePgProxies, type PgProxySettings, startPgProxy } from './pg/start.ts';
import type { SshProxySettings } from './ssh/config.ts';
import { checkSshProxySettings, startSshProxy } from './ssh/start.ts';

/** Each protocol's settings, by protocol name. */
export interface ProxySettingsByProtocol {
  postgres: PgProxySettings;
  ssh: SshProxySettings;
}

/** A protocol: how its settings are checked without opening anything, and how it starts. */
export interface ProxyProtocol<Settings> {
  /** Compiles the settings and throws what a start would throw for them, naming the config path. */
  check(settings: Settings): void;
  start: ProxyStarter<Settings>;
}

/** The protocols, their checks and their starters. */
export const PROXY_PROTOCOLS: {
  readonly [P in keyof ProxySettingsByProtocol]: ProxyProtocol<ProxySettingsByProtocol[P]>;
} = {
  postgres: { check: (settings) => void compilePgProxies(settings), start: startPgProxy },
  ssh: { check: (settings) => checkSshProxySettings(settings), start: startSshProxy },
};

/**
 * Checks the settings of every protocol that has some, without opening anything: `warden serve`
 * runs it before the broker starts, so a bad section fails start-up having changed nothing.
 */
export function checkProxySettings(settings: Partial<ProxySettingsByProtocol>): void {
  for (const protocol of Object.keys(PROXY_PROTOCOLS) as (keyof ProxySettingsByProtocol)[]) {
    const own = settings[protocol];
    if (own !== undefined) (PROXY_PROTOCOLS[protocol] as ProxyProtocol<typeof own>).check(own);
  }
}

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
      const { start } = PROXY_PROTOCOLS[protocol] as ProxyProtocol<typeof own>;
      running.push(await start({ ...options, settings: own }));
    }
  } catch (error) {
    await Promise.all(running.map((proxy) => proxy.close()));
    throw error;
  }
  return running;
}
