/**
 * A chat outage takes the gateway down (issue 14): with Slack unreachable, Bolt's token check
 * rejected with nobody listening and the process died. Now the adapter starts anyway, reports
 * itself degraded, keeps trying with back-off, and when Slack answers again posts the requests it
 * could not post meanwhile. The same happens when Slack goes away later (calls failing with 5xx).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { SlackSettings } from '../../../bot/config.ts';
import { SlackBot } from '../../../bot/slack/slack-bot.ts';
import { Secret } from '../../../broker/config/secrets.ts';
import { createLogger } from '../../../broker/log.ts';
import { type BrokerFixture, LogCapture, startBrokerFixture, waitFor } from '../../helpers/broker-fixture.ts';
import { freePort, type PgCluster, startPgCluster } from '../../helpers/pg-cluster.ts';
import {
  BOT_TOKEN,
  SIGNING_SECRET,
  type SlackHarness,
  startSlackHarness,
} from '../../helpers/slack-harness.ts';
import { SlackStandin } from '../../helpers/slack-standin.ts';

const CHANNELS = [{ id: 'CREQUESTS', name: 'access-requests', member: true }];

describe('Slack unreachable', () => {
  let cluster: PgCluster;
  let fx: BrokerFixture;

  before(async () => {
    cluster = await startPgCluster();
    fx = await startBrokerFixture('embedded', cluster);
  });
  after(async () => {
    await fx?.close();
    await cluster?.stop();
  });

  for (const mode of ['http', 'socket'] as const) {
    it(`${mode} mode: starts degraded, keeps trying, and catches up when Slack is back`, async () => {
      const apiPort = await freePort();
      const logs = new LogCapture();
      const settings: SlackSettings = {
        mode,
        host: '127.0.0.1',
        port: 0,
        signingSecret: new Secret(SIGNING_SECRET),
        botToken: new Secret(BOT_TOKEN),
        appToken: new Secret('xapp-test'),
        userMapping: 'id',
        apiUrl: `http://127.0.0.1:${apiPort}/api/`,
        reconnectMaxDelayMs: 200,
      };
      const bot = new SlackBot({
        broker: fx.app.broker,
        settings,
        logger: createLogger({ level: 'debug', destination: logs }),
        defaultChannel: '#access-requests',
        retry: { baseDelayMs: 5, attempts: 2 },
        reconnectInitialDelayMs: 50,
      });
      let standin: SlackStandin | undefined;
      try {
        await bot.start();
        await waitFor(
          () => bot.status().state === 'degraded' && bot.status().failures >= 2,
          10_000,
          'retries',
        );
        assert.equal(bot.status().error?.kind, 'unreachable');
        assert.match(bot.status().error!.message, /ECONNREFUSED/);
        const pending = await fx.app.broker.request({
          requester: 'alice',
          target: 'app-db',
          duration: '10m',
          reason: `made during the ${mode} outage`,
          source: 'api',
        });
        await bot.core.idle();

        standin = await SlackStandin.start({ token: BOT_TOKEN, channels: CHANNELS, port: apiPort });
        if (mode === 'http') {
          await waitFor(() => bot.status().state === 'connected', 10_000, 'connected again');
          const root = await waitFor(
            () => standin!.rootsIn('CREQUESTS').find((m) => JSON.stringify(m.blocks).includes(pending.id)),
            10_000,
            'the request posted on reconnection',
          );
          assert.match(JSON.stringify(root!.blocks), /made during the http outage/);
          assert.ok(logs.lines.some((l) => l.includes('Slack is reachable again')));
        } else {
          // The stand-in has no Socket Mode: the token check passes, opening the WebSocket does not.
          await waitFor(
            () => standin!.calls.some((c) => c.method === 'auth.test' && c.ok),
            10_000,
            'the token checked again',
          );
          await waitFor(
            () => standin!.calls.some((c) => c.method === 'apps.connections.open'),
            10_000,
            'the WebSocket asked for',
          );
          assert.notEqual(bot.status().state, 'connected');
        }
        await fx.app.broker.cancel(pending.id, { id: 'alice', admin: false });
      } finally {
        await bot.stop();
        await standin?.close();
      }
      assert.equal(
        logs.lines.some((l) => l.includes(BOT_TOKEN)),
        false,
        'the token is never logged',
      );
    });
  }
});

describe('Slack going away while Warden runs', () => {
  let cluster: PgCluster;
  let h: SlackHarness;
  before(async () => {
    cluster = await startPgCluster();
    h = await startSlackHarness(cluster);
  });
  after(async () => {
    await h?.close();
    await cluster?.stop();
  });

  it('turns degraded when calls keep failing with 5xx, and posts the lost root when Slack answers', async () => {
    for (let i = 0; i < 4; i++) h.standin.failNext('chat.postMessage', { status: 503 });
    h.standin.failNext('auth.test', { status: 503 });
    const request = await h.fx.app.broker.request({
      requester: 'alice',
      target: 'app-db',
      duration: '10m',
      reason: 'slack flapping',
      source: 'api',
    });
    const root = await waitFor(
      () => h.standin.rootsIn('CREQUESTS').find((m) => JSON.stringify(m.blocks).includes(request.id)),
      20_000,
      'the root posted once Slack answers',
    );
    assert.ok(root);
    assert.ok(h.standin.calls.filter((c) => c.error === 'http_503').length >= 5);
    assert.ok(h.botLogs.lines.some((l) => l.includes('Slack is not reachable')));
    await waitFor(() => h.bot.status().state === 'connected', 10_000, 'connected');
    assert.equal(
      h.standin.rootsIn('CREQUESTS').filter((m) => JSON.stringify(m.blocks).includes(request.id)).length,
      1,
    );
    await h.fx.app.broker.cancel(request.id, { id: 'alice', admin: false });
  });
});
