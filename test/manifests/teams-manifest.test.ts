/**
 * The Teams app manifest (manifests/teams/) is one Teams accepts: both icons at the sizes Teams
 * requires (color 192×192, outline 32×32 with transparency), the bot in every scope Warden works
 * in, and a `chat.teams` section as the README shows it parses.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseBotConfig } from '../../bot/config.ts';

const dir = join(import.meta.dirname, '../../manifests/teams');

/** Width, height and colour type of a PNG (6: RGBA). */
function pngInfo(file: string): { width: number; height: number; colorType: number } {
  const bytes = readFileSync(join(dir, file));
  assert.equal(bytes.subarray(1, 4).toString('latin1'), 'PNG', `${file} is a PNG`);
  return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20), colorType: bytes[25]! };
}

describe('Teams app manifest', () => {
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));

  it('names both icons at the sizes Teams requires', () => {
    assert.deepEqual(manifest.icons, { color: 'color.png', outline: 'outline.png' });
    assert.deepEqual(pngInfo('color.png'), { width: 192, height: 192, colorType: 6 });
    assert.deepEqual(pngInfo('outline.png'), { width: 32, height: 32, colorType: 6 });
  });

  it('declares the bot in personal, team and group chat scopes, with the app id as its bot id', () => {
    const [bot] = manifest.bots;
    assert.deepEqual(bot.scopes, ['personal', 'team', 'groupChat']);
    assert.equal(bot.botId, manifest.id);
    assert.equal(bot.isNotificationOnly, false);
    assert.ok(bot.commandLists[0].commands.some((c: { title: string }) => c.title === 'access'));
  });

  it('a chat.teams section parses; authentication stays on unless switched off by name', () => {
    const chat = parseBotConfig({
      teams: {
        app_id: manifest.id,
        app_password: { env: 'TEAMS_APP_PASSWORD' },
        tenant_id: '6f1e2d3c-4b5a-4968-8776-655443322110',
        channels: { '#db-approvals': '19:abc@thread.tacv2' },
      },
    });
    assert.equal(chat.teams?.insecure_skip_auth, false);
    assert.equal(chat.teams?.listen, '127.0.0.1:3978');
    assert.throws(
      () => parseBotConfig({ teams: { app_id: manifest.id, tenant_id: 'x', app_password: 'inline' } }),
      { code: 'ERR_BOT_CONFIG', message: /chat\.teams\.app_password/ },
    );
  });
});
