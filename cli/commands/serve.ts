/** `warden serve`: every part in one process (the default deployment), or `--demo` for a first run. */

import pino from 'pino';
import { parseBotConfig, resolveSlackSettings } from '../../bot/config.ts';
import { ConsoleBot } from '../../bot/console/console-bot.ts';
import { SlackBot } from '../../bot/slack/slack-bot.ts';
import { createCiRoutes } from '../../broker/api/ci-route.ts';
import { createReviewRoutes } from '../../broker/api/review-routes.ts';
import { ApiServer } from '../../broker/api/server.ts';
import { createSshRoutes } from '../../broker/api/ssh-route.ts';
import { createBrokerApp, loadSshCa } from '../../broker/app.ts';
import { CiExchange } from '../../broker/ci/exchange.ts';
import { type Config, loadConfig } from '../../broker/config/load.ts';
import { resolveSecret } from '../../broker/config/secrets.ts';
import { createLogger } from '../../broker/log.ts';
import { startPgProxies } from '../../proxy/pg/start.ts';
import { startSshProxy } from '../../proxy/ssh/start.ts';
import { type DemoEnvironment, startDemoEnvironment } from '../demo/demo.ts';
import { DemoError } from '../demo/errors.ts';
import { ExitCode, type Io } from '../output.ts';

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
  try {
    const config: Config = demo
      ? loadConfig(demo.configFile)
      : loadConfig(typeof flags.config === 'string' ? flags.config : (io.env.WARDEN_CONFIG ?? 'warden.yaml'));
    // With the console on the terminal, logs go to stderr and only warnings unless asked.
    const consoleMode = flags.console === true || demo !== undefined;
    const logger = createLogger({
      level:
        typeof flags['log-level'] === 'string'
          ? flags['log-level']
          : (io.env.WARDEN_LOG_LEVEL ?? (consoleMode ? 'warn' : 'info')),
      ...(consoleMode ? { destination: pino.destination(2) } : {}),
    });
    const chat = parseBotConfig(config.chat);
    const app = await createBrokerApp(config, { logger, env });
    const tokens = config.broker.tokens.map((t, i) => ({
      name: t.name,
      role: t.role,
      secret: resolveSecret(t.secret, `broker.tokens[${i}].secret`, env),
    }));
    const ci = config.ci
      ? new CiExchange({ config: config.ci, broker: app.broker, store: app.store, logger })
      : undefined;
    const pgTargets = Object.fromEntries(
      Object.entries(config.targets).flatMap(([name, target]) =>
        target.kind === 'postgres' ? [[name, target]] : [],
      ),
    );
    const proxies = await startPgProxies(pgTargets, {
      authority: app.proxyAuthority,
      sink: app.store,
      reviewer: app.reviews,
      env,
      log: (level, fields, message) => logger[level](fields, message),
    });
    for (const proxy of proxies) {
      logger.info({ target: proxy.target, listen: proxy.address }, 'postgres proxy listening');
    }
    const api = new ApiServer({
      broker: app.broker,
      store: app.store,
      tokens,
      logger,
      audit: app.audit,
      ...(ci ? { publicRoutes: createCiRoutes(ci, logger) } : {}),
      extraRoutes: [
        ...createReviewRoutes(app.reviews),
        ...(config.ssh ? createSshRoutes({ store: app.store, config, ca: loadSshCa(config, env) }) : []),
      ],
    });
    const [host, port] = config.broker.listen.split(':');
    const address = await api.listen(Number(port), host);
    const sshProxy = await startSshProxy(config, app, logger, env);
    logger.info(
      {
        listen: `${address.address}:${address.port}`,
        store: app.store.kind,
        targets: Object.keys(config.targets),
      },
      'warden is serving',
    );
    const slack = chat.slack
      ? new SlackBot({
          broker: app.broker,
          settings: resolveSlackSettings(chat.slack, env),
          logger,
          defaultChannel: chat.default_channel,
          reviews: app.reviews,
        })
      : undefined;
    if (slack) {
      const started = await slack.start();
      logger.info({ mode: chat.slack!.mode, port: started.port }, 'Slack bot started');
    }
    if (demo) {
      for (const line of demo.instructions(`http://${address.address}:${address.port}`)) io.out(line);
    }
    // Ctrl-C during start-up (the demo's database takes seconds) has already aborted the signal.
    const stopped = signal.aborted
      ? Promise.resolve()
      : new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    if (consoleMode) {
      const consoleBot = new ConsoleBot({
        broker: app.broker,
        input: process.stdin,
        output: process.stdout,
        logger,
        identity: typeof flags.as === 'string' ? flags.as : (config.people[0]?.id ?? 'admin'),
        defaultChannel: chat.default_channel,
        reviews: app.reviews,
        prompt: process.stdin.isTTY === true,
      });
      // The console ending (Ctrl-D, `quit`) stops Warden like Ctrl-C does.
      await Promise.race([consoleBot.run(), stopped]);
      // Ctrl-C leaves the console waiting for a line: let go of stdin so the process can exit.
      process.stdin.destroy();
    } else {
      await stopped;
    }
    logger.info('shutting down');
    await slack?.stop();
    await api.close();
    await sshProxy?.close();
    ci?.close();
    await Promise.all(proxies.map((p) => p.server.close()));
    await app.close();
    return ExitCode.Ok;
  } finally {
    await demo?.close();
  }
}
