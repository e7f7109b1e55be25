import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import type { SlackSettings } from '../../../bot/config.ts';
import { BotError } from '../../../bot/errors.ts';
import { SlackBot, type SlackBrokerPort } from '../../../bot/slack/slack-bot.ts';
import { Secret } from '../../../broker/config/secrets.ts';
import { createSilentLogger } from '../../../broker/log.ts';
import { waitFor } from '../../helpers/broker-fixture.ts';
import { SlackStandin } from '../../helpers/slack-standin.ts';

const broker = {
  events: { subscribe: () => () => {} },
  config: { targets: {}, rules: [] },
  directory: { get: () => undefined, findByEmail: () => undefined, findBySlackId: () => undefined },
} as unknown as SlackBrokerPort;

let standin: SlackStandin;

const settings = (over: Partial<SlackSettings>): SlackSettings => ({
  mode: 'socket',
  host: '127.0.0.1',
  port: 0,
  signingSecret: undefined,
  botToken: new Secret('xoxb-test'),
  appToken: new Secret('xapp-test'),
  userMapping: 'id',
  apiUrl: standin.apiUrl,
  ...over,
});

describe('Slack adapter modes', () => {
  before(async () => {
    standin = await SlackStandin.start({ token: 'xoxb-test' });
  });
  after(() => standin.close());

  it('builds a Socket Mode app without an HTTP endpoint', async () => {
    const bot = new SlackBot({
      broker,
      settings: settings({}),
      logger: createSilentLogger(),
      defaultChannel: '#a',
    });
    const receiver = (bot.app as unknown as { receiver: object }).receiver;
    assert.equal(receiver.constructor.name, 'SocketModeReceiver');
    // Bolt checks the token at once: against the stand-in, with the configured bot token.
    await waitFor(() => standin.calls.find((c) => c.method === 'auth.test' && c.ok), 5000, 'auth.test');
  });

  const refused: [string, Partial<SlackSettings>][] = [
    ['Socket Mode without an app token', { appToken: undefined }],
    ['HTTP mode without a signing secret', { mode: 'http' }],
  ];
  for (const [name, over] of refused) {
    it(`refuses ${name} with ERR_BOT_CONFIG`, () => {
      assert.throws(
        () =>
          new SlackBot({
            broker,
            settings: settings(over),
            logger: createSilentLogger(),
            defaultChannel: '#a',
          }),
        (error: unknown) => error instanceof BotError && error.code === 'ERR_BOT_CONFIG',
      );
    });
  }
});

describe('manifests/slack-app.yaml', () => {
  const manifest = parse(readFileSync(new URL('../../../manifests/slack-app.yaml', import.meta.url), 'utf8'));

  it('declares the command, interactivity, events and scopes the adapter uses', () => {
    assert.equal(manifest.features.slash_commands[0].command, '/access');
    assert.match(manifest.features.slash_commands[0].url, /\/slack\/events$/);
    assert.equal(manifest.settings.interactivity.is_enabled, true);
    assert.deepEqual(manifest.settings.event_subscriptions.bot_events.sort(), [
      'message.channels',
      'message.groups',
    ]);
    for (const scope of [
      'commands',
      'chat:write',
      'im:write',
      'users:read',
      'users:read.email',
      'channels:history',
    ]) {
      assert.ok(manifest.oauth_config.scopes.bot.includes(scope), scope);
    }
  });
});
