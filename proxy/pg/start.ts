/**
 * Starts one Postgres proxy listener per target that has `proxy:` settings: what `warden serve`
 * calls. Settings are compiled first ({@link compilePgProxies}), before the broker starts, so a
 * bad one fails start-up before anything runs; then {@link listenPgProxies} opens the listeners.
 */
import type { GrantAuthority } from '../grant-authority.ts';
import type { StatementReviewer } from '../statement-reviewer.ts';
import { compilePgProxyTarget, type PgProxyTarget, type PgProxyTargetConfig } from './config.ts';
import type { SessionSink } from './recorder.ts';
import { PgProxyServer, type ProxyLog } from './server.ts';

/** Targets as configured; only those with `proxy` get a listener. */
export type ProxiedTargets = Record<string, { proxy?: PgProxyTargetConfig | undefined }>;

/** A running listener and where it listens. */
export interface RunningPgProxy {
  target: string;
  server: PgProxyServer;
  address: string;
}

/** One target's compiled proxy settings and where its listener goes. */
export interface CompiledPgProxy {
  name: string;
  listen: string;
  settings: PgProxyTarget;
}

/** What every listener shares. */
export interface PgProxiesOptions {
  authority: GrantAuthority;
  sink: SessionSink;
  /** Decides on statements held by `review` guardrail rules. */
  reviewer?: StatementReviewer;
  log?: ProxyLog;
}

/**
 * Compiles every target's proxy settings; touches no socket, so it can run before anything starts.
 * @throws PgProxyConfigError, SqlGuardConfigError or MaskingConfigError naming the config path.
 */
export function compilePgProxies(
  targets: ProxiedTargets,
  env: Record<string, string | undefined>,
): CompiledPgProxy[] {
  return Object.entries(targets).flatMap(([name, target]) =>
    target.proxy
      ? [{ name, listen: target.proxy.listen, settings: compilePgProxyTarget(name, target.proxy, { env }) }]
      : [],
  );
}

/** Listens on each compiled target's `proxy.listen`; a listener that fails closes those already open. */
export async function listenPgProxies(
  compiled: readonly CompiledPgProxy[],
  options: PgProxiesOptions,
): Promise<RunningPgProxy[]> {
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
