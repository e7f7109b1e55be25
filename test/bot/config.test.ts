import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseBotConfig, resolveSlackSettings } from '../../bot/config.ts';
import { BotError } from '../../bot/errors.ts';
import { resolveSecret, type SecretRef } from '../../broker/config/secrets.ts';

describe('botConfigSchema', () => {
  it('fills defaults', () => {
    const config = parseBotConfig({ slack: { signing_secret: { env: 'S' }, bot_token: { env: 'T' } } });
    assert.equal(config.default_channel, '#access-requests');
    assert.equal(config.slack?.mode, 'http');
    assert.equal(config.slack?.listen, '127.0.0.1:3000');
    assert.equal(config.slack?.user_mapping, 'id');
    assert.equal(parseBotConfig(undefined).slack, undefined);
  });

  const refused: [string, unknown, string][] = [
    [
      'HTTP mode without a signing secret',
      { slack: { bot_token: { env: 'T' } } },
      'chat.slack.signing_secret',
    ],
    [
      'Socket Mode without an app token',
      { slack: { mode: 'socket', bot_token: { env: 'T' } } },
      'chat.slack.app_token',
    ],
    [
      'an inline token',
      { slack: { signing_secret: { env: 'S' }, bot_token: 'xoxb-inline' } },
      'chat.slack.bot_token',
    ],
    ['an unknown mode', { slack: { mode: 'rtm', bot_token: { env: 'T' } } }, 'chat.slack.mode'],
    [
      'a bad listen address',
      { slack: { listen: '3000', signing_secret: { env: 'S' }, bot_token: { env: 'T' } } },
      'chat.slack.listen',
    ],
    ['an unknown key', { slak: {} }, 'chat'],
  ];
  for (const [name, raw, path] of refused) {
    it(`refuses ${name}, naming ${path}`, () => {
      assert.throws(
        () => parseBotConfig(raw),
        (error: unknown) =>
          error instanceof BotError && error.code === 'ERR_BOT_CONFIG' && error.message.startsWith(path),
      );
    });
  }

  it('resolves secret references, failing on a missing one with its config key', async () => {
    const slack = parseBotConfig({
      slack: { listen: '0.0.0.0:3999', signing_secret: { env: 'S' }, bot_token: { env: 'T' } },
    }).slack!;
    const fromEnv = (env: Record<string, string>) => (ref: SecretRef, path: string) =>
      resolveSecret(ref, path, env);
    const settings = await resolveSlackSettings(slack, fromEnv({ S: 'sign', T: 'xoxb-1' }));
    assert.equal(settings.botToken.reveal(), 'xoxb-1');
    assert.equal(String(settings.signingSecret), '[secret]');
    assert.equal(settings.port, 3999);
    await assert.rejects(
      resolveSlackSettings(slack, fromEnv({ S: 'sign' })),
      (error: unknown) =>
        (error as { code?: string }).code === 'ERR_CONFIG_SECRET' &&
        /chat\.slack\.bot_token/.test((error as Error).message),
    );
  });
});
