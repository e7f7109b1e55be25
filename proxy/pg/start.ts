/**
 * Starts one Postgres proxy listener per target that has `proxy:` settings: what `warden serve`
 * calls. Settings are compiled first, so a bad one fails start-up before anything listens.
 */
import type { GrantAuthority } from '../grant-authority.ts';
import type { StatementReviewer } from '../statement-reviewer.ts';
import { compilePgProxyTarget, type PgProxyTargetConfig } from './config.ts';
import type { SessionSink } from './recorder.ts';
import { PgProxyServer, type ProxyLog } from './server.ts';

/** Targets as configured; only those with `proxy` get a listener. */
export type ProxiedTargets = Record<
  string,
  { proxy?: PgProxyTargetConfig | undefined; levels?: Readonly<Record<string, unknown>> }
>;

/** A running listener and where it listens. */
export interface RunningPgProxy {
  target: string;
  server: PgProxyServer;
  address: string;
}

/**
 * Compiles every target's proxy settings, then listens on each `proxy.listen`.
 * @throws PgProxyConfigError, SqlGuardConfigError or MaskingConfigError naming the config path.
 */
export async function startPgProxies(
  targets: ProxiedTargets,
  options: {
    authority: GrantAuthority;
    sink: SessionSink;
    /** Decides on statements held by `review` guardrail rules. */
    reviewer?: StatementReviewer;
    env: Record<string, string | undefined>;
    log?: ProxyLog;
  },
): Promise<RunningPgProxy[]> {
  const compiled = Object.entries(targets).flatMap(([name, target]) =>
    target.proxy
      ? [
          {
            name,
            listen: target.proxy.listen,
            settings: compilePgProxyTarget(name, target.proxy, {
              env: options.env,
              ...(target.levels ? { levels: Object.keys(target.levels) } : {}),
            }),
          },
        ]
      : [],
  );
  const running: RunningPgProxy[] = [];
  try {
    for (const { name, listen, settings } of compiled) {
      const server = new PgProxyServer({
        target: settings,
        authority: options.authority,
        sink: options.sink,
        ...(options.reviewer ? { reviewer: options.reviewer } : {}),
        ...(options.log ? { log: options.log } : {}),
      });
      const at = listen.lastIndexOf(':');
      const address = await server.listen(Number(listen.slice(at + 1)), listen.slice(0, at));
      running.push({ target: name, server, address: `${address.address}:${address.port}` });
    }
  } catch (error) {
    await Promise.all(running.map((r) => r.server.close()));
    throw error;
  }
  return running;
}
