/** Builds a running broker from a configuration: store, providers, event bus, scheduler. */
import type { SshCa } from '../lib/ssh/keys.ts';
import { AuditCheckpointer } from './audit/checkpoints.ts';
import { loadConfiguredAuditSigner } from './audit/config.ts';
import { type AuditKeyring, type AuditSigner, createAuditKeyring } from './audit/signing.ts';
import type { Config } from './config/load.ts';
import { resolveLocalSecret } from './config/secrets.ts';
import { FileDirectory } from './directory/directory.ts';
import { StoreMissingError } from './errors.ts';
import { EventBus } from './events/events.ts';
import { followLifecycleLog } from './events/lifecycle-log.ts';
import type { Logger } from './log.ts';
import type { ProxyPorts } from './ports/proxy.ts';
import { resolvePgTls } from './providers/postgres/tls.ts';
import type { CredentialProvider } from './providers/provider.ts';
import { createProviders as createRegisteredProviders } from './providers/registry.ts';
import { parseSshCa, sshCaKeyRef } from './providers/ssh-ca/plugin.ts';
import { ProxyAuthority } from './proxy-authority.ts';
import { createProxyPorts } from './proxy-ports.ts';
import { Broker } from './requests/broker.ts';
import { StatementReviews } from './reviews/reviews.ts';
import { openEmbeddedStore, openPostgresStore, type SqlStore } from './store/sql-store.ts';
import type { Store } from './store/store.ts';
import { createSecretResolver } from './vault/secrets.ts';

export interface BrokerApp {
  broker: Broker;
  /** The configuration the broker runs on; {@link reloadBrokerConfig} swaps its reloadable parts. */
  config: Config;
  store: Store;
  providers: Map<string, CredentialProvider>;
  directory: FileDirectory;
  /** What the recording proxies ask about grants of proxied targets. */
  proxyAuthority: ProxyAuthority;
  /** Statements the proxies hold for review (what they ask, what approvers decide). */
  reviews: StatementReviews;
  /** What every recording proxy gets from the broker (`ports/proxy.ts`). */
  proxyPorts: ProxyPorts;
  /** The audit key's public half and the checkpoint file, for `GET /v1/audit/verify`. */
  audit: { keyring: AuditKeyring | undefined; checkpointFile: string | undefined };
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

/** Options of {@link openConfiguredStore}. */
export interface OpenStoreOptions {
  /**
   * Refuse a store that does not exist (no file, or no Warden schema) instead of creating one:
   * for commands that read it (`audit`, `sessions`, `replay`, `ssh krl`).
   */
  mustExist?: boolean;
  /** Signs audit appends; default: `audit.signing_key` (required to resolve for a `server`). */
  auditSigner?: AuditSigner | null;
  /**
   * Open the store as it is, for a command that must change nothing (`warden doctor`): no file
   * created, no migration, every write refused. Implies `mustExist`; the caller compares
   * `schemaVersion()` with the version this Warden migrates to.
   */
  readOnly?: boolean;
}

/** The audit signer of a process that is not a server: the configured one when it resolves here. */
async function optionalAuditSigner(
  config: Config,
  env: Record<string, string | undefined>,
): Promise<AuditSigner | undefined> {
  try {
    return await loadConfiguredAuditSigner(config, env);
  } catch {
    return undefined;
  }
}

/**
 * Opens the configured store and migrates it (unless `readOnly`). A long-running `server` (not a CLI command) gets the
 * embedded store's WAL checkpoints on a worker thread, and its failures in its log.
 */
export async function openConfiguredStore(
  config: Config,
  env: Record<string, string | undefined> = process.env,
  server?: { logger: Logger },
  options: OpenStoreOptions = {},
): Promise<SqlStore> {
  const settings = config.broker.store;
  const mustExist = options.mustExist === true || options.readOnly === true;
  const auditSigner = options.readOnly
    ? undefined
    : options.auditSigner !== undefined
      ? (options.auditSigner ?? undefined)
      : server
        ? await loadConfiguredAuditSigner(config, env)
        : await optionalAuditSigner(config, env);
  const where =
    settings.kind === 'embedded'
      ? `broker.store.path of ${config.source}`
      : `broker.store.url of ${config.source}`;
  const missing = (what: string) =>
    new StoreMissingError(
      `${what} (${where}); a command that reads the store never creates one: check --config or WARDEN_CONFIG`,
    );
  let store: ReturnType<typeof openPostgresStore>;
  if (settings.kind === 'embedded') {
    try {
      store = openEmbeddedStore(settings.path, {
        ...(server
          ? {
              backgroundCheckpoints: true,
              onCheckpointError: (error: unknown) =>
                server.logger.warn({ err: error }, 'embedded store: WAL checkpoint failed'),
            }
          : {}),
        ...(auditSigner ? { auditSigner } : {}),
        ...(mustExist ? { mustExist: true } : {}),
        ...(options.readOnly ? { readOnly: true } : {}),
      });
    } catch (error) {
      if (error instanceof StoreMissingError) throw missing(error.message);
      throw error;
    }
  } else {
    store = openPostgresStore(
      (await createSecretResolver(config, env)(settings.url, 'broker.store.url')).reveal(),
      options.readOnly ? 1 : 10,
      { ...(auditSigner ? { auditSigner } : {}), ...(options.readOnly ? { readOnly: true } : {}) },
    );
  }
  try {
    // A server that cannot be reached is said as such, not as a database without a store
    // (schemaVersion reads any failure as "no schema").
    if (mustExist) await store.ping();
    if (mustExist && (await store.schemaVersion()) === 0) {
      throw missing(
        settings.kind === 'embedded'
          ? `${settings.path} holds no Warden store`
          : 'the database holds no Warden store',
      );
    }
    if (!options.readOnly) await store.migrate();
  } catch (error) {
    await store.close().catch(() => {});
    throw error;
  }
  return store;
}

/** Builds one provider per target through the provider registry (`providers/registry.ts`). */
export function createProviders(
  config: Config,
  env: Record<string, string | undefined> = process.env,
  logger?: Logger,
): Promise<Map<string, CredentialProvider>> {
  return createRegisteredProviders(config, { env, ...(logger ? { logger } : {}) });
}

/**
 * Loads the SSH CA named by `ssh.ca_key`, synchronously (CLI verbs, route set-up): `env:` and
 * `file:` references only. Fails with the config path when missing or unusable.
 */
export function loadSshCa(config: Config, env: Record<string, string | undefined> = process.env): SshCa {
  return parseSshCa(resolveLocalSecret(sshCaKeyRef(config), 'ssh.ca_key', env));
}

export async function createBrokerApp(config: Config, options: BrokerAppOptions): Promise<BrokerApp> {
  const env = options.env ?? process.env;
  const directory = new FileDirectory(config.people);
  // The audit key first: a bad one fails before any provider opens a connection.
  const auditSigner = options.passive
    ? await optionalAuditSigner(config, env)
    : await loadConfiguredAuditSigner(config, env);
  const providers = await createProviders(config, env, options.logger);
  const store =
    options.store ??
    (await openConfiguredStore(config, env, options.passive ? undefined : { logger: options.logger }, {
      auditSigner: auditSigner ?? null,
    }));
  const proxyAuthority = new ProxyAuthority({
    directory,
    getRequest: (id) => store.getRequest(id),
    verifiers: store,
    ...(options.clock ? { clock: options.clock } : {}),
  });
  for (const [name, target] of Object.entries(config.targets)) {
    const provider = providers.get(name);
    if (provider && target.kind === 'postgres' && target.proxy) {
      const upstreamTls = await resolvePgTls(name, target, target.connect.host ?? target.admin.host, env);
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
  followLifecycleLog(events, options.logger);
  const reviews = new StatementReviews({
    store,
    broker,
    events,
    logger: options.logger,
    ...(options.clock ? { clock: options.clock } : {}),
  });
  reviews.follow(events);
  const keyring = auditSigner ? createAuditKeyring([auditSigner.publicKey]) : undefined;
  const checkpointFile = config.audit.checkpoints.file;
  const checkpointer =
    auditSigner && keyring && !options.passive
      ? new AuditCheckpointer({
          store,
          signer: auditSigner,
          keyring,
          logger: options.logger,
          file: checkpointFile,
          log: config.audit.checkpoints.log,
          everyMs: config.audit.checkpoints.every,
          ...(options.clock ? { clock: options.clock } : {}),
        })
      : undefined;
  const close = async () => {
    reviews.stop();
    await broker.stop();
    await checkpointer?.stop();
    for (const provider of providers.values()) await provider.close();
    if (!options.store) await store.close();
  };
  if (!options.passive) {
    try {
      if (auditSigner) await markKeyed(store, auditSigner, options.clock ?? Date.now);
      checkpointer?.start();
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
    config,
    store,
    providers,
    directory,
    proxyAuthority,
    reviews,
    proxyPorts: createProxyPorts({
      authority: proxyAuthority,
      store,
      broker,
      reviews,
      logger: options.logger,
    }),
    audit: { keyring, checkpointFile },
    close,
  };
}

/**
 * The first start with an audit key on a log that has no signed entry appends `audit.keyed`,
 * signed: it covers the entries written before the key, from now on. A log that has signed entries
 * but an unsigned head is never signed over here (that would vouch for entries someone else wrote):
 * `warden audit verify` reports it.
 */
async function markKeyed(store: Store, signer: AuditSigner, clock: () => number): Promise<void> {
  const head = await store.readAuditHead();
  if (head?.sig) return;
  let signedBefore = false;
  for (let after = 0; head && !signedBefore; ) {
    const entries = await store.readAudit({ afterSeq: after, limit: 5000 });
    if (entries.length === 0) break;
    signedBefore = entries.some((e) => e.sig !== null);
    after = entries.at(-1)!.seq;
  }
  if (signedBefore) return;
  await store.appendAudit({
    at: clock(),
    actor: 'warden',
    via: 'warden',
    action: 'audit.keyed',
    subject: signer.keyId,
    data: { unsigned_before: head?.seq ?? 0 },
  });
}
