/**
 * Starts the Postgres proxy the way every proxy starts (see `broker/ports/proxy.ts`): from the
 * broker's ports, a clock, a logger and its settings. One listener per target that has `proxy:`
 * settings. Settings are compiled first, so a bad one fails start-up before anything listens.
 */
import type { ProxyOptions, RunningProxy } from '../../broker/ports/proxy.ts';
import { compilePgProxyTarget, type PgProxyTarget, type PgProxyTargetConfig } from './config.ts';
import { PgProxyServer } from './server.ts';

/** The settings the Postgres proxy starts from (the protocol part of its `ProxyOptions`). */
export interface PgProxySettings {
  /** Targets as configured; only those with `proxy` get a listener. Level names feed refusal hints. */
  targets: Readonly<
    Record<string, { proxy?: PgProxyTargetConfig | undefined; levels?: Readonly<Record<string, unknown>> }>
  >;
  /** Where `env:` masking key references are read. */
  env: Record<string, string | undefined>;
}

/** A running listener and where it listens. */
export interface RunningPgProxy {
  target: string;
  server: PgProxyServer;
  address: string;
}

/**
 * Compiles every target's proxy settings, then listens on each `proxy.listen`; closes what it
 * opened when one fails.
 * @throws PgProxyConfigError, SqlGuardConfigError or MaskingConfigError naming the config path.
 */
/**
 * Compiles every proxied target's settings, touching no socket: `warden serve` and `warden doctor`
 * run it before the broker starts, so a bad section changes nothing.
 * @throws PgProxyConfigError, SqlGuardConfigError or MaskingConfigError naming the config path.
 */
export function compilePgProxies(settings: PgProxySettings): CompiledPgProxy[] {
  return Object.entries(settings.targets).flatMap(([name, target]) =>
    target.proxy
      ? [
          {
            name,
            listen: target.proxy.listen,
            target: compilePgProxyTarget(name, target.proxy, {
              env: settings.env,
              ...(target.levels ? { levels: Object.keys(target.levels) } : {}),
            }),
          },
        ]
      : [],
  );
}

/** One target's compiled proxy settings and where its listener goes. */
export interface CompiledPgProxy {
  name: string;
  listen: string;
  target: PgProxyTarget;
}

export async function startPgProxy(
  options: ProxyOptions<PgProxySettings>,
): Promise<RunningProxy & { servers: readonly RunningPgProxy[] }> {
  const { settings, logger } = options;
  const compiled = compilePgProxies(settings);
  const running: RunningPgProxy[] = [];
  try {
    for (const { name, listen, target } of compiled) {
      const server = new PgProxyServer({ target, ports: options.ports, logger, clock: options.clock });
      const at = listen.lastIndexOf(':');
      const address = await server.listen(Number(listen.slice(at + 1)), listen.slice(0, at));
      running.push({ target: name, server, address: `${address.address}:${address.port}` });
      logger.info({ target: name, listen: running.at(-1)!.address }, 'postgres proxy listening');
    }
  } catch (error) {
    await Promise.all(running.map((r) => r.server.close()));
    throw error;
  }
  return {
    protocol: 'postgres',
    listeners: running.map((r) => ({ name: r.target, address: r.address })),
    servers: running,
    close: async () => {
      await Promise.all(running.map((r) => r.server.close()));
    },
  };
}
