/** `warden serve`: every part in one process (the default deployment), or `--demo` for a first run. */

import pino from 'pino';
import { type ChatRuntime, prepareChat } from '../../bot/start.ts';
import { createCiRoutes } from '../../broker/api/ci-route.ts';
import { createReviewRoutes } from '../../broker/api/review-routes.ts';
import { ApiServer, type HealthPart } from '../../broker/api/server.ts';
import { createSshRoutes } from '../../broker/api/ssh-route.ts';
import { type BrokerApp, createBrokerApp, loadSshCa } from '../../broker/app.ts';
import { CiExchange } from '../../broker/ci/exchange.ts';
import { type Config, loadConfig } from '../../broker/config/load.ts';
import { ConfigError } from '../../broker/errors.ts';
import type { Logger } from '../../broker/log.ts';
import { createLogger } from '../../broker/log.ts';
import type { CredentialProvider } from '../../broker/providers/provider.ts';
import { reloadBrokerConfig } from '../../broker/reload.ts';
import { preloadVaultSecrets } from '../../broker/vault/preload.ts';
import { createSecretResolver } from '../../broker/vault/secrets.ts';
import { ShutdownStack } from '../../lib/shutdown-stack.ts';
import { checkProxySettings, startProxies } from '../../proxy/start.ts';
import { type DemoEnvironment, startDemoEnvironment } from '../demo/demo.ts';
import { DemoError } from '../demo/errors.ts';
import { ExitCode, type Io } from '../output.ts';
import { readProxySettings } from '../proxy-settings.ts';

type Flags = Record<string, string | boolean | undefined>;

export async function runServe(flags: Flags, io: Io, signal: AbortSignal): Promise<number> {
  let demo: DemoEnvironment | undefined;
  if (flags.demo === true) {
    io.out('Starting the Warden demo (a database, the broker, a proxy)…');
    try {
      demo = await startDemoEnvironment({
        ttl: typeof flags['demo-ttl'] === 'string' ? flags['demo-ttl'] : undefined,
        database: typeof flags['demo-db'] === 'string' ? flags['demo-db'] : io.env.WARDEN_DEMO_DB,
        path: io.env.PATH,
      });
    } catch (error) {
      if (!(error instanceof DemoError)) throw error;
      io.err(`warden: ${error.message} (${error.code})`);
      return ExitCode.Refused;
    }
  }
  /** `io.env`, with the values of the configuration's Vault references once it is loaded. */
  let env = io.env;
  // What has started, stopped in reverse order on the way out, whether serve ends normally or a
  // start-up step fails (a bad proxy section must not leave the broker's timers and store running).
  const started = new ShutdownStack();
  let logger: Logger | undefined;
  try {
    const configFile = demo
      ? demo.configFile
      : typeof flags.config === 'string'
        ? flags.config
        : (io.env.WARDEN_CONFIG ?? 'warden.yaml');
    // Vault references are read once here, for the parts that read secrets synchronously too
    // (the SSH CA and proxy keys, masking keys): broker/vault/preload.ts.
    const loaded = await preloadVaultSecrets(loadConfig(configFile), io.env);
    const config: Config = loaded.config;
    env = loaded.env;
    // With the console on the terminal, logs go to stderr and only warnings unless asked.
    const consoleMode = flags.console === true || demo !== undefined;
    logger = createLogger({
      level:
        typeof flags['log-level'] === 'string'
          ? flags['log-level']
          : (io.env.WARDEN_LOG_LEVEL ?? (consoleMode ? 'warn' : 'info')),
      ...(consoleMode ? { destination: pino.destination(2) } : {}),
    });
    // SIGHUP reads people, rules and targets again (broker/reload.ts); live sessions carry on.
    // Reloads run one after the other; a refused one is logged and changes nothing. Listening
    // from here on keeps a SIGHUP during start-up from killing the process (Node's default).
    let reloadable: BrokerApp | undefined;
    let reloading = Promise.resolve();
    const log = logger;
    const reload = () => {
      if (!reloadable) {
        log.warn(
          { file: configFile },
          'SIGHUP while warden starts or stops: ignored (send it again once warden is serving)',
        );
        return;
      }
      const app = reloadable;
      log.info({ file: configFile }, 'SIGHUP: reloading the configuration');
      reloading = reloading.then(async () => {
        await reloadBrokerConfig(app, configFile, { env, logger: log });
      });
    };
    process.on('SIGHUP', reload);
    started.push('SIGHUP listener', async () => {
      process.off('SIGHUP', reload);
    });
    // Sections only the front ends and proxies read are checked before the broker starts (and
    // reconciles its targets), so a bad one changes nothing; what fails later is stopped below.
    const chat = await prepareChat({
      config: config.chat,
      resolveSecret: createSecretResolver(config, env),
    });
    const proxySettings = readProxySettings(config, env);
    checkProxySettings(proxySettings);
    const tokens = await Promise.all(
      config.broker.tokens.map(async (t, i) => ({
        name: t.name,
        role: t.role,
        secret: await createSecretResolver(config, env)(t.secret, `broker.tokens[${i}].secret`),
      })),
    );
    const app = await createBrokerApp(config, { logger, env });
    started.push('broker', () => app.close());
    await refuseUnenforcedMasking(app.providers, logger);
    const ci = config.ci
      ? new CiExchange({ config: config.ci, broker: app.broker, store: app.store, logger })
      : undefined;
    if (ci) started.push('CI exchange', () => ci.close());
    // Every recording proxy (Postgres, SSH) starts the same way, from the broker's proxy ports.
    const proxies = await startProxies(proxySettings, { ports: app.proxyPorts, clock: Date.now, logger });
    started.push('proxies', () => Promise.all(proxies.map((proxy) => proxy.close())));
    let chatRuntime: ChatRuntime | undefined;
    const api = new ApiServer({
      broker: app.broker,
      store: app.store,
      tokens,
      logger,
      audit: app.audit,
      health: (): Record<string, HealthPart> => {
        const chats = chatRuntime?.health() ?? {};
        if (Object.keys(chats).length === 0) return {};
        const degraded = Object.values(chats).some((c) => c.state !== 'connected');
        return { chat: { degraded, ...chats } };
      },
      ...(ci ? { publicRoutes: createCiRoutes(ci, logger) } : {}),
      extraRoutes: [
        ...createReviewRoutes(app.reviews),
        ...(config.ssh ? createSshRoutes({ store: app.store, config, ca: loadSshCa(config, env) }) : []),
      ],
    });
    const [host, port] = config.broker.listen.split(':');
    started.push('API', () => api.close());
    const address = await api.listen(Number(port), host);
    logger.info(
      {
        listen: `${address.address}:${address.port}`,
        store: app.store.kind,
        targets: Object.keys(config.targets),
      },
      'warden is serving',
    );
    reloadable = app;
    // Stopped before the parts a reload touches: a reload under way finishes, none starts.
    started.push('reloads', async () => {
      reloadable = undefined;
      await reloading;
    });
    if (demo) {
      for (const line of demo.instructions(`http://${address.address}:${address.port}`)) io.out(line);
    }
    // Ctrl-C during start-up (the demo's database takes seconds) has already aborted the signal.
    const stopped = signal.aborted
      ? Promise.resolve()
      : new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    // Chat starts last and never fails for Slack being unreachable: it runs degraded and retries.
    const runtime = await chat.serve({
      broker: app.broker,
      reviews: app.reviews,
      messages: app.store,
      conversations: app.store,
      once: app.store,
      logger,
      ...(consoleMode
        ? {
            console: {
              input: process.stdin,
              output: process.stdout,
              identity: typeof flags.as === 'string' ? flags.as : (config.people[0]?.id ?? 'admin'),
              prompt: process.stdin.isTTY === true,
            },
          }
        : {}),
    });
    chatRuntime = runtime;
    started.push('chat', () => runtime.stop());
    if (runtime.consoleDone) {
      // The console ending (Ctrl-D, `quit`) stops Warden like Ctrl-C does.
      await Promise.race([runtime.consoleDone, stopped]);
      // Ctrl-C leaves the console waiting for a line: let go of stdin so the process can exit.
      process.stdin.destroy();
    } else {
      await stopped;
    }
    logger.info('shutting down');
    return ExitCode.Ok;
  } finally {
    await started.stopAll((part, error) => logger?.error({ err: error, part }, 'cannot stop cleanly'));
    await demo?.close();
  }
}

/**
 * Column rules the database cannot enforce stop start-up (issue 15), naming target, level and
 * rule; a target that cannot be reached now is only warned about (its mints fail until it is).
 */
async function refuseUnenforcedMasking(
  providers: ReadonlyMap<string, CredentialProvider>,
  logger: Logger,
): Promise<void> {
  for (const [name, provider] of providers) {
    try {
      await provider.assertMaskingEnforced?.();
    } catch (error) {
      if (error instanceof ConfigError) throw error;
      logger.warn(
        { target: name, error: (error as Error).message },
        'cannot check masking on this target yet',
      );
    }
  }
}
