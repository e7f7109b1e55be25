/**
 * A chat outage takes the gateway down (issue 14): `warden serve` with Slack unreachable at
 * start-up used to exit, proxies included. Here it keeps running: `/v1/health` says chat is
 * degraded, a psql session through the Postgres proxy works, the API takes requests, and when the
 * Slack stand-in comes back where the configuration points, chat picks up: the request made
 * meanwhile is posted, `/access` answers, and the same psql session still runs queries.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import {
  buildTestConfig,
  createTargetDatabase,
  TARGET_ADMIN_ENV,
  waitFor,
} from '../helpers/broker-fixture.ts';
import { execSql, freePort, type PgCluster, startPgCluster } from '../helpers/pg-cluster.ts';
import { type ApiReply, callApi, ServeProcess, serveBroker } from '../helpers/serve-process.ts';
import { SlackDriver } from '../helpers/slack-driver.ts';
import { BOT_TOKEN, SIGNING_SECRET } from '../helpers/slack-harness.ts';
import { SlackStandin } from '../helpers/slack-standin.ts';

const ADMIN_TOKEN = 'test-admin-token-outage-0123';
const PSQL = process.env.WARDEN_PSQL ?? '/usr/bin/psql';

describe('warden serve with Slack unreachable', () => {
  let cluster: PgCluster;
  let dir: string;
  let url: string;
  let serve: ServeProcess;
  let apiPort: number;
  let slackPort: number;
  let standin: SlackStandin | undefined;
  let psql: ChildProcess | undefined;
  let psqlOut = '';

  const api = (method: string, path: string, body?: unknown) => callApi(url, ADMIN_TOKEN, method, path, body);
  const health = async () => (await fetch(`${url}/v1/health`)).json() as Promise<ApiReply['body']>;

  before(async () => {
    cluster = await startPgCluster();
    const database = await createTargetDatabase(cluster);
    await execSql(cluster, database, 'CREATE TABLE invoices (id int); INSERT INTO invoices VALUES (1), (2)');
    dir = mkdtempSync(join(tmpdir(), 'warden-chat-outage-'));
    const port = await freePort();
    apiPort = await freePort();
    slackPort = await freePort();
    url = `http://127.0.0.1:${port}`;
    const config = buildTestConfig(cluster, database, {});
    config.broker = serveBroker(dir, port);
    const target = (config.targets as Record<string, Record<string, unknown>>)['app-db']!;
    target.proxy = { listen: `127.0.0.1:${await freePort()}`, allow_plaintext: true };
    config.chat = {
      slack: {
        mode: 'http',
        listen: `127.0.0.1:${slackPort}`,
        signing_secret: { env: 'SLACK_SIGNING_SECRET' },
        bot_token: { env: 'SLACK_BOT_TOKEN' },
        // Nothing listens here until the test starts the stand-in.
        api_url: `http://127.0.0.1:${apiPort}/api/`,
        reconnect_max_delay: '1s',
      },
    };
    const configFile = join(dir, 'warden.yaml');
    writeFileSync(configFile, stringify(config));
    serve = new ServeProcess(configFile, url, () => ({
      ...process.env,
      [TARGET_ADMIN_ENV]: cluster.password,
      WARDEN_ADMIN_TOKEN: ADMIN_TOKEN,
      SLACK_SIGNING_SECRET: SIGNING_SECRET,
      SLACK_BOT_TOKEN: BOT_TOKEN,
      WARDEN_LOG_LEVEL: 'debug',
    }));
    await serve.start();
  });

  after(async () => {
    psql?.kill();
    await serve?.kill();
    await standin?.close();
    await cluster?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Runs a statement in the open psql session and waits for its output. */
  async function inSession(sql: string, expect: RegExp): Promise<void> {
    const mark = psqlOut.length;
    psql!.stdin!.write(`${sql}\n`);
    await waitFor(() => expect.test(psqlOut.slice(mark)), 20_000, `psql to answer ${sql}\n${psqlOut}`);
  }

  it('keeps serving with chat degraded, the proxy and the API working', async () => {
    const degraded = (await waitFor(
      async () => {
        const h = await health();
        return h.chat?.slack?.state === 'degraded' ? h : undefined;
      },
      20_000,
      'health to say chat is degraded',
    ))!;
    assert.equal(degraded.ok, true);
    assert.equal(degraded.status, 'degraded');
    assert.equal(degraded.chat.degraded, true);
    assert.equal(degraded.chat.slack.error.kind, 'unreachable');
    assert.equal(JSON.stringify(degraded).includes(BOT_TOKEN), false);

    const grant = await api('POST', '/v1/requests', {
      requester: 'carol',
      target: 'app-db',
      duration: '10m',
      reason: 'during the chat outage',
    });
    assert.equal(grant.body.request.state, 'active', JSON.stringify(grant.body));
    const login = grant.body.credential as {
      host: string;
      port: number;
      database: string;
      user: string;
      password: string;
    };
    psql = spawn(
      PSQL,
      [
        '-X',
        '-q',
        '-A',
        '-t',
        `host=${login.host} port=${login.port} dbname=${login.database} user=${login.user} sslmode=disable`,
      ],
      {
        env: { PATH: process.env.PATH ?? '', PGPASSWORD: login.password, PGCONNECT_TIMEOUT: '10' },
        stdio: ['pipe', 'pipe', 'pipe'],
      },
    );
    psql.stdout!.setEncoding('utf8').on('data', (d: string) => {
      psqlOut += d;
    });
    psql.stderr!.setEncoding('utf8').on('data', (d: string) => {
      psqlOut += d;
    });
    await inSession('SELECT count(*) FROM invoices;', /^2$/m);
    assert.equal(serve.child?.exitCode, null, 'warden serve is still running');
  });

  it('picks chat up when Slack comes back: posts what waited, answers /access, the session still runs', async () => {
    const waiting = await api('POST', '/v1/requests', {
      requester: 'alice',
      target: 'app-db',
      duration: '10m',
      reason: 'asked while Slack was down',
    });
    assert.equal(waiting.body.request.state, 'pending');
    const id = waiting.body.request.id as string;

    standin = await SlackStandin.start({
      token: BOT_TOKEN,
      channels: [{ id: 'CREQUESTS', name: 'access-requests', member: true }],
      port: apiPort,
    });
    await waitFor(async () => (await health()).status === 'ok', 20_000, 'health to say chat is connected');
    const root = await waitFor(
      () => standin!.rootsIn('CREQUESTS').find((m) => JSON.stringify(m.blocks ?? []).includes(id)),
      20_000,
      'the request made during the outage to be posted',
    );
    assert.match(JSON.stringify(root!.blocks), /asked while Slack was down/);

    const driver = new SlackDriver(`http://127.0.0.1:${slackPort}/slack/events`, SIGNING_SECRET, standin);
    await driver.command('UALICE', 'list', 'after-outage');
    const reply = await waitFor(() => standin!.responsesFor('after-outage')[0], 20_000, '/access list');
    assert.match(reply!, new RegExp(id));

    await inSession('SELECT 40 + 2;', /^42$/m);
    assert.equal(serve.output.includes(BOT_TOKEN), false, 'the bot token never reached the log');
    assert.match(serve.output, /Slack is not reachable; Warden keeps running and tries again/);
  });
});
