/** Builds a running broker from a configuration: store, providers, event bus, scheduler. */

import { loadCa, type SshCa } from '../lib/ssh/keys.ts';
import type { Config } from './config/load.ts';
import { resolveSecret } from './config/secrets.ts';
import { type Directory, FileDirectory } from './directory/directory.ts';
import { ConfigError } from './errors.ts';
import { EventBus } from './events/events.ts';
import type { Logger } from './log.ts';
import type { ProxyPorts } from './ports/proxy.ts';
import { PostgresProvider } from './providers/postgres/postgres-provider.ts';
import { resolvePgTls } from './providers/postgres/tls.ts';
import type { CredentialProvider } from './providers/provider.ts';
import { SshCaProvider } from './providers/ssh-ca/ssh-ca-provider.ts';
import { ProxyAuthority } from './proxy-authority.ts';
import { createProxyPorts } from './proxy-ports.ts';
import { Broker } from './requests/broker.ts';
import { StatementReviews } from './reviews/reviews.ts';
import { openEmbeddedStore, openPostgresStore } from './store/sql-store.ts';
import type { Store } from './store/store.ts';

export interface BrokerApp {
  broker: Broker;
  store: Store;
  providers: Map<string, CredentialProvider>;
  directory: Directory;
  /** What the recording proxies ask about grants of proxied targets. */
  proxyAuthority: ProxyAuthority;
  /** Statements the proxies hold for review (what they ask, what approvers decide). */
  reviews: StatementReviews;
  /** What every recording proxy gets from the broker (`ports/proxy.ts`). */
  proxyPorts: ProxyPorts;
  close(): Promise<void>;
}

export interface BrokerAppOptions {
  logger: Logger;
  env?: Record<string, string | undefined>;
  clock?: () => number;
  /** Use this store instead of the configured one (tests). */
  store?: Store;
  replicaId?: string;
  /** Skip `start()` (no timers, no reconciliation): for CLI commands that only read. */
  passive?: boolean;
}

/**
 * Opens the configured store and migrates it. A long-running `server` (not a CLI command) gets the
 * embedded store's WAL checkpoints on a worker thread, and its failures in its log.
 */
export async function openConfiguredStore(
  config: Config,
  env: Record<string, string | undefined> = process.env,
  server?: { logger: Logger },
): Promise<Store> {
  const settings = config.broker.store;
  const store =
    settings.kind === 'embedded'
      ? openEmbeddedStore(
          settings.path,
          server
            ? {
                backgroundCheckpoints: true,
                onCheckpointError: (error) =>
                  server.logger.warn({ err: error }, 'embedded store: WAL checkpoint failed'),
              }
            : {},
        )
      : openPostgresStore(resolveSecret(settings.url, 'broker.store.url', env).reveal());
  try {
    await store.migrate();
  } catch (error) {
    await store.close().catch(() => {});
    throw error;
  }
  return store;
}

/** Builds one provider per target; secrets resolve here, so a missing one fails at start-up. */
export function createProviders(
  config: Config,
  env: Record<string, string | undefined> = process.env,
  logger?: Logger,
): Map<string, CredentialProvider> {
  const providers = new Map<string, CredentialProvider>();
  let ca: SshCa | undefined;
  for (const [name, target] of Object.entries(config.targets)) {
    if (target.kind === 'ssh') {
      ca ??= loadSshCa(config, env);
      providers.set(name, new SshCaProvider({ targetName: name, target, ca }));
      continue;
    }
    providers.set(
      name,
      new PostgresProvider({
        targetName: name,
        target,
        adminPassword: resolveSecret(target.admin.password, `targets.${name}.admin.password`, env),
        tls: resolvePgTls(name, target, target.admin.host, env),
        ...(logger ? { logger } : {}),
      }),
    );
  }
  return providers;
}

/** Loads the SSH CA named by `ssh.ca_key`; fails with the config path when missing or unusable. */
export function loadSshCa(config: Config, env: Record<string, string | undefined> = process.env): SshCa {
  if (!config.ssh) throw new ConfigError('ssh', 'SSH targets need an ssh section with ca_key');
  const text = resolveSecret(config.ssh.ca_key, 'ssh.ca_key', env).reveal();
  try {
    return loadCa(text);
  } catch (error) {
    throw new ConfigError('ssh.ca_key', (error as Error).message);
  }
}

export async function createBrokerApp(config: Config, options: BrokerAppOptions): Promise<BrokerApp> {
  const env = options.env ?? process.env;
  const directory = new FileDirectory(config.people);
  const providers = createProviders(config, env, options.logger);
  const store =
    options.store ??
    (await openConfiguredStore(config, env, options.passive ? undefined : { logger: options.logger }));
  const proxyAuthority = new ProxyAuthority({
    directory,
    getRequest: (id) => store.getRequest(id),
    verifiers: store,
    ...(options.clock ? { clock: options.clock } : {}),
  });
  for (const [name, target] of Object.entries(config.targets)) {
    const provider = providers.get(name);
    if (provider && target.kind === 'postgres' && target.proxy) {
      const upstreamTls = resolvePgTls(name, target, target.connect.host ?? target.admin.host, env);
      providers.set(name, proxyAuthority.wrapProvider(name, target, provider, upstreamTls));
    }
  }
  const events = new EventBus((error, event) =>
    options.logger.error(
      { err: error, event: event.type, request: event.request.id },
      'event subscriber failed',
    ),
  );
  const broker = new Broker({
    config,
    directory,
    store,
    providers,
    events,
    logger: options.logger,
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.replicaId ? { replicaId: options.replicaId } : {}),
  });
  proxyAuthority.follow(events);
  const reviews = new StatementReviews({
    store,
    broker,
    events,
    logger: options.logger,
    ...(options.clock ? { clock: options.clock } : {}),
  });
  reviews.follow(events);
  const close = async () => {
    reviews.stop();
    await broker.stop();
    for (const provider of providers.values()) await provider.close();
    if (!options.store) await store.close();
  };
  if (!options.passive) {
    try {
      await broker.start();
      await reviews.start(config.broker.sweep_interval);
      const restored = await proxyAuthority.restore();
      for (const { user, error } of restored.failed)
        options.logger.error({ err: error, user }, 'cannot restore a proxied grant');
      if (restored.restored.length > 0 || restored.dropped.length > 0)
        options.logger.info(
          { restored: restored.restored.length, dropped: restored.dropped.length },
          'proxied grants restored',
        );
    } catch (error) {
      // A start that fails half-way must not leave the scheduler's timers or the store open.
      await close().catch((closeError) =>
        options.logger.error({ err: closeError }, 'cannot close the broker after a failed start'),
      );
      throw error;
    }
  }
  return {
    broker,
    store,
    providers,
    directory,
    proxyAuthority,
    reviews,
    proxyPorts: createProxyPorts({ authority: proxyAuthority, store, broker, reviews }),
    close,
  };
}
