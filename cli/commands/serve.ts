/** `warden serve`: every part in one process (the default deployment), or `--demo` for a first run. */

import pino from 'pino';
import { type ChatRuntime, prepareChat } from '../../bot/start.ts';
import { createCiRoutes } from '../../broker/api/ci-route.ts';
import { createReviewRoutes } from '../../broker/api/review-routes.ts';
import { ApiServer, type HealthPart } from '../../broker/api/server.ts';
import { createSshRoutes } from '../../broker/api/ssh-route.ts';
import { createBrokerApp, loadSshCa } from '../../broker/app.ts';
import { CiExchange } from '../../broker/ci/exchange.ts';
import { type Config, loadConfig } from '../../broker/config/load.ts';
import { resolveSecret } from '../../broker/config/secrets.ts';
import type { Logger } from '../../broker/log.ts';
import { createLogger } from '../../broker/log.ts';
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
  const env = io.env;
  // What has started, stopped in reverse order on the way out, whether serve ends normally or a
  // start-up step fails (a bad proxy section must not leave the broker's timers and store running).
  const started = new ShutdownStack();
  let logger: Logger | undefined;
  try {
    const config: Config = demo
      ? loadConfig(demo.configFile)
      : loadConfig(typeof flags.config === 'string' ? flags.config : (io.env.WARDEN_CONFIG ?? 'warden.yaml'));
    // With the console on the terminal, logs go to stderr and only warnings unless asked.
    const consoleMode = flags.console === true || demo !== undefined;
    logger = createLogger({
      level:
        typeof flags['log-level'] === 'string'
          ? flags['log-level']
          : (io.env.WARDEN_LOG_LEVEL ?? (consoleMode ? 'warn' : 'info')),
      ...(consoleMode ? { destination: pino.destination(2) } : {}),
    });
    // Sections only the front ends and proxies read are checked before the broker starts (and
    // reconciles its targets), so a bad one changes nothing; what fails later is stopped below.
    const chat = await prepareChat({
      config: config.chat,
      resolveSecret: (ref, path) => resolveSecret(ref, path, env),
    });
    const proxySettings = readProxySettings(config, env);
    checkProxySettings(proxySettings);
    const tokens = config.broker.tokens.map((t, i) => ({
      name: t.name,
      role: t.role,
      secret: resolveSecret(t.secret, `broker.tokens[${i}].secret`, env),
    }));
    const app = await createBrokerApp(config, { logger, env });
    started.push('broker', () => app.close());
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
