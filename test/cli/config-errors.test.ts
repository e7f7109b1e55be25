/**
 * Every error family's configuration error reaches the `warden` command the same way: exit code 3,
 * a message that starts with the config key to fix, and the family's code. Each case runs the real
 * CLI as a process (`warden serve`, the deployed command, `warden doctor`, or an offline verb) with
 * a configuration bad in exactly one section, and waits for it to exit on its own. A start-up
 * failure after the broker, the API and the proxies started (a port already taken) stops all of
 * them instead of leaving a process that only SIGKILL ends.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import type { ConfigInput } from '../../broker/config/schema.ts';
import { formatOpenSshPrivateKey, generateCa } from '../../lib/ssh/keys.ts';
import { freePort } from '../helpers/pg-cluster.ts';
import { WARDEN } from '../helpers/serve-process.ts';
import { SlackStandin } from '../helpers/slack-standin.ts';
import { CA_ENV, generateEd25519 } from '../helpers/ssh-proxy-fixture.ts';

/** How the CLI ended: its exit code and everything it wrote. */
interface Outcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  output: string;
}

/**
 * Runs `warden <args>` and resolves when the process exits on its own. A process still running
 * after `graceMs` is killed and the outcome says so (signal SIGKILL): that is the bug this file
 * guards against, reported as a failure instead of a hung test run.
 */
function runWarden(args: string[], env: NodeJS.ProcessEnv, graceMs = 60_000): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WARDEN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => {
      output += d;
    });
    child.stderr.on('data', (d) => {
      output += d;
    });
    const guard = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(guard);
      resolve({ code, signal, output });
    });
  });
}

const ADMIN_PASSWORD_ENV = 'WARDEN_TEST_ADMIN_PASSWORD';
const MASKING_KEY_ENV = 'WARDEN_TEST_MASKING_KEY';
const SLACK_TOKEN_ENV = 'WARDEN_TEST_SLACK_BOT_TOKEN';
const SLACK_TOKEN = 'xoxb-test-bot-token-0123456789';
const HOST_KEY_ENV = 'WARDEN_TEST_SSH_HOST_KEY';
const UPSTREAM_KEY_ENV = 'WARDEN_TEST_SSH_UPSTREAM_KEY';

describe('a configuration error exits 3 in every family, naming the key', () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let secrets: string[];
  // Bolt checks the bot token with auth.test as soon as the bot is built: answer it locally.
  let slack: SlackStandin;

  before(async () => {
    slack = await SlackStandin.start({ token: SLACK_TOKEN });
    dir = mkdtempSync(join(tmpdir(), 'warden-config-errors-'));
    const ca = formatOpenSshPrivateKey(generateCa('warden-test-ca').privateKey, 'warden-test-ca');
    const hostKey = generateEd25519('proxy-host').privateKey;
    const upstreamKey = generateEd25519('proxy-upstream').privateKey;
    secrets = ['admin-password-0123456789', 'masking-key-0123456789', SLACK_TOKEN, ca, hostKey, upstreamKey];
    env = {
      ...process.env,
      WARDEN_LOG_LEVEL: 'debug',
      [ADMIN_PASSWORD_ENV]: secrets[0],
      [MASKING_KEY_ENV]: secrets[1],
      [SLACK_TOKEN_ENV]: SLACK_TOKEN,
      [CA_ENV]: ca,
      [HOST_KEY_ENV]: hostKey,
      [UPSTREAM_KEY_ENV]: upstreamKey,
    };
  });

  after(async () => {
    await slack?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /**
   * A configuration that serves: a proxied Postgres target (never reached: every case fails
   * before the broker connects to it, or has no such target), an SSH target behind the SSH proxy,
   * Slack in HTTP mode and a CI issuer. Each case breaks one section of it.
   */
  async function buildConfig(name: string): Promise<ConfigInput> {
    const [apiPort, pgProxyPort, sshProxyPort, slackPort] = await Promise.all([
      freePort(),
      freePort(),
      freePort(),
      freePort(),
    ]);
    return {
      broker: {
        listen: `127.0.0.1:${apiPort}`,
        store: { kind: 'embedded', path: join(dir, `${name}.db`) },
        sweep_interval: '1s',
      },
      targets: {
        'app-db': {
          kind: 'postgres',
          admin: {
            host: '127.0.0.1',
            port: 1,
            database: 'app',
            user: 'warden',
            password: { env: ADMIN_PASSWORD_ENV },
          },
          levels: { read: { grants: ['select'] } },
          proxy: {
            listen: `127.0.0.1:${pgProxyPort}`,
            allow_plaintext: true,
            masking: {
              columns: [{ match: 'customers.email', style: 'hash' }],
              key: `env:${MASKING_KEY_ENV}`,
            },
            guardrails: {
              rules: [{ name: 'no-payroll', match: { relations: ['payroll'] }, action: 'block' }],
            },
          },
        },
        'web-1': {
          kind: 'ssh',
          host: '127.0.0.1',
          port: 22,
          levels: { shell: { principals: ['deploy'] } },
          insecure_skip_host_key_check: true,
          guardrails: { patterns: [{ id: 'no-shadow', pattern: 'cat /etc/shadow' }] },
          masking: { detectors: { email: 'redact' } },
        },
      },
      ssh: {
        ca_key: { env: CA_ENV },
        proxy: {
          listen: `127.0.0.1:${sshProxyPort}`,
          host_key: { env: HOST_KEY_ENV },
          upstream_key: { env: UPSTREAM_KEY_ENV },
        },
      },
      chat: {
        slack: {
          mode: 'http',
          listen: `127.0.0.1:${slackPort}`,
          signing_secret: { env: MASKING_KEY_ENV },
          bot_token: { env: SLACK_TOKEN_ENV },
          api_url: slack.apiUrl,
        },
      },
      ci: {
        issuers: [
          {
            name: 'github',
            issuer: 'https://token.actions.githubusercontent.com',
            audience: 'warden',
            kind: 'github',
          },
        ],
        rules: [
          {
            name: 'deploy',
            issuer: 'github',
            match: { repository: 'acme/app' },
            target: 'app-db',
            level: 'read',
            max_duration: '15m',
          },
        ],
      },
      people: [{ id: 'alice', email: 'alice@example.com' }],
      rules: [],
    } as ConfigInput;
  }

  // biome-ignore lint/suspicious/noExplicitAny: each case edits one section of the loosely typed input
  type Loose = any;

  /** One section made bad: what `break` changes, and what the error must say. */
  interface Case {
    name: string;
    break: (config: Loose, env: NodeJS.ProcessEnv) => void;
    /** The message starts with this key (after `warden: `). */
    path: string;
    code: string;
    /** Default `serve --config FILE`. */
    args?: (file: string) => string[];
  }

  const cases: Case[] = [
    {
      name: 'broker schema (broker.listen)',
      break: (c) => {
        c.broker.listen = 'nowhere';
      },
      path: 'broker.listen',
      code: 'ERR_CONFIG_INVALID',
    },
    {
      name: 'a secret reference that does not resolve (targets.app-db.admin.password)',
      break: (_c, e) => {
        delete e[ADMIN_PASSWORD_ENV];
      },
      path: 'targets.app-db.admin.password',
      code: 'ERR_CONFIG_SECRET',
    },
    {
      name: 'a bad proxy.masking style keeps warden serve running and deaf to SIGTERM (regression)',
      break: (c) => {
        c.targets['app-db'].proxy.masking.columns[0].style = 'sparkle';
      },
      path: 'targets.app-db.proxy.masking.columns[0].style',
      code: 'ERR_MASKING_CONFIG',
    },
    {
      name: 'the Postgres proxy settings (targets.app-db.proxy.masking.key given inline)',
      break: (c) => {
        c.targets['app-db'].proxy.masking.key = 'an-inline-key-0123456789';
      },
      path: 'targets.app-db.proxy.masking.key',
      code: 'ERR_PGPROXY_CONFIG',
    },
    {
      name: 'SQL guardrails (targets.app-db.proxy.guardrails)',
      break: (c) => {
        c.targets['app-db'].proxy.guardrails.rules[0].action = 'explode';
      },
      path: 'targets.app-db.proxy.guardrails.rules.0.action',
      code: 'ERR_SQLGUARD_CONFIG_INVALID',
    },
    {
      name: 'SSH command guardrails (targets.web-1.guardrails)',
      break: (c) => {
        c.targets['web-1'].guardrails.patterns[0].flags = 'not-flags';
      },
      path: 'targets.web-1.guardrails.patterns.0',
      code: 'ERR_GUARDRAIL_CONFIG',
    },
    {
      name: 'SSH output masking (targets.web-1.masking)',
      break: (c) => {
        c.targets['web-1'].masking.detectors.email = 'sparkle';
      },
      path: 'targets.web-1.masking.detectors.email',
      code: 'ERR_MASKING_CONFIG',
    },
    {
      name: 'the SSH proxy settings of a target (targets.web-1.masking.key given inline)',
      break: (c) => {
        c.targets['web-1'].masking.key = 'an-inline-key-0123456789';
      },
      path: 'targets.web-1.masking.key',
      code: 'ERR_SSH_PROXY_CONFIG',
    },
    {
      name: 'an SSH target without a host key pin (targets.web-1)',
      break: (c) => {
        delete c.targets['web-1'].insecure_skip_host_key_check;
      },
      path: 'targets.web-1',
      code: 'ERR_SSH_PROXY_CONFIG',
    },
    {
      name: 'the SSH CA key (ssh.ca_key)',
      break: (_c, e) => {
        e[CA_ENV] = 'not a private key';
      },
      path: 'ssh.ca_key',
      code: 'ERR_CONFIG_INVALID',
    },
    {
      name: 'the SSH proxy host key secret (ssh.proxy.host_key)',
      break: (_c, e) => {
        delete e[HOST_KEY_ENV];
      },
      path: 'ssh.proxy.host_key',
      code: 'ERR_CONFIG_SECRET',
    },
    {
      name: 'an SSH proxy host key that is not a private key (ssh.proxy.host_key)',
      break: (_c, e) => {
        e[HOST_KEY_ENV] = 'not a private key';
      },
      path: 'ssh.proxy.host_key',
      code: 'ERR_SSH_PROXY_CONFIG',
    },
    {
      name: 'chat.slack (HTTP mode without a signing secret)',
      break: (c) => {
        delete c.chat.slack.signing_secret;
      },
      path: 'chat.slack.signing_secret',
      code: 'ERR_BOT_CONFIG',
    },
    {
      name: 'a chat.slack secret that does not resolve (chat.slack.bot_token)',
      break: (c) => {
        c.chat.slack.bot_token = { env: 'WARDEN_TEST_UNSET_SLACK_TOKEN' };
      },
      path: 'chat.slack.bot_token',
      code: 'ERR_CONFIG_SECRET',
    },
    {
      name: 'ci: (an HMAC algorithm for an issuer)',
      break: (c) => {
        c.ci.issuers[0].algorithms = ['HS256'];
      },
      path: 'ci.issuers[0:github].algorithms[0]',
      code: 'ERR_CONFIG_INVALID',
    },
    {
      name: 'an offline verb (warden policy explain) reads the same configuration',
      break: (c) => {
        c.broker.listen = 'nowhere';
      },
      path: 'broker.listen',
      code: 'ERR_CONFIG_INVALID',
      args: (file) => ['policy', 'explain', '--user', 'alice', '--target', 'app-db', '--config', file],
    },
  ];

  for (const c of cases) {
    it(c.name, async () => {
      const config = await buildConfig(c.name.replace(/\W+/g, '-'));
      const caseEnv = { ...env };
      c.break(config, caseEnv);
      const file = join(dir, `${c.name.replace(/\W+/g, '-')}.yaml`);
      writeFileSync(file, stringify(config));
      const result = await runWarden(c.args?.(file) ?? ['serve', '--config', file], caseEnv);
      assert.equal(result.signal, null, `warden did not exit on its own:\n${result.output}`);
      assert.equal(result.code, 3, result.output);
      const line = result.output.split('\n').find((l) => l.startsWith('warden: '));
      assert.ok(line, `no error line in:\n${result.output}`);
      assert.ok(line.startsWith(`warden: ${c.path}`), `the message names ${c.path}: ${line}`);
      assert.ok(line.endsWith(`(${c.code})`), `the message ends with ${c.code}: ${line}`);
      for (const secret of secrets) {
        for (const piece of secret.split('\n').filter((l) => l.length > 20)) {
          assert.ok(!result.output.includes(piece), 'no secret reaches the output');
        }
      }
    });
  }

  /** `warden doctor` reports each check on a line of its own and exits 3 when one failed on configuration. */
  const doctorCases: [string, (config: Loose) => void, string][] = [
    [
      'a bad proxy.masking style',
      (c) => {
        c.targets['app-db'].proxy.masking.columns[0].style = 'sparkle';
      },
      '✗ Postgres proxy settings: targets.app-db.proxy.masking.columns[0].style: ',
    ],
    [
      'bad SSH guardrails',
      (c) => {
        c.targets['web-1'].guardrails.patterns[0].flags = 'not-flags';
      },
      '✗ SSH proxy settings: targets.web-1.guardrails.patterns.0',
    ],
    [
      'a bad chat.slack section',
      (c) => {
        delete c.chat.slack.signing_secret;
      },
      '✗ chat: chat.slack.signing_secret: ',
    ],
  ];
  for (const [what, breakIt, line] of doctorCases) {
    it(`warden doctor names ${what} and exits 3`, async () => {
      const name = `doctor-${what.replace(/\W+/g, '-')}`;
      const config: Loose = await buildConfig(name);
      // No network here: the OIDC issuer's check would only wait for DNS.
      delete config.ci;
      breakIt(config);
      const file = join(dir, `${name}.yaml`);
      writeFileSync(file, stringify(config));
      const result = await runWarden(['doctor', '--config', file], env);
      assert.equal(result.code, 3, result.output);
      assert.ok(
        result.output.split('\n').some((l) => l.startsWith(line)),
        `no line starting ${line} in:\n${result.output}`,
      );
    });
  }

  /** Starts `warden serve` with one listener's port already taken: a failure after the broker, the API and the proxies started. */
  const portTaken: [string, (config: Loose, port: number) => void][] = [
    [
      'the SSH proxy',
      (c, port) => {
        c.ssh.proxy.listen = `127.0.0.1:${port}`;
      },
    ],
    [
      'the Slack listener',
      (c, port) => {
        c.chat.slack.listen = `127.0.0.1:${port}`;
      },
    ],
  ];
  for (const [part, take] of portTaken) {
    it(`a start-up failure that is not configuration (${part}'s port is taken) exits 1 and stops the rest`, async () => {
      const name = `port-taken-${part.replace(/\W+/g, '-')}`;
      const config: Loose = await buildConfig(name);
      const blocker = createServer();
      await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
      try {
        take(config, (blocker.address() as AddressInfo).port);
        const file = join(dir, `${name}.yaml`);
        writeFileSync(file, stringify(config));
        const result = await runWarden(['serve', '--config', file], env);
        assert.equal(result.signal, null, `warden did not exit on its own:\n${result.output}`);
        assert.equal(result.code, 1, result.output);
        assert.match(result.output, /warden: .*EADDRINUSE/);
      } finally {
        await new Promise((resolve) => blocker.close(resolve));
      }
    });
  }
});
