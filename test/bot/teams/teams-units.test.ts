/**
 * The Teams adapter's pure and small parts: the bot token is cached and refreshed before it
 * expires (and a failing refresh falls back to the still-valid token); Connector failures are
 * retried or not as the service means them; users map by object id, by UPN only when configured,
 * and never take over a person configured with another id; conversation references round-trip
 * through the embedded store.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { BotTokenSource } from '../../../bot/teams/bot-token.ts';
import { classifyTeamsFailure, DEFAULT_RETRY } from '../../../bot/teams/teams-calls.ts';
import { TeamsPeople } from '../../../bot/teams/teams-people.ts';
import { Secret } from '../../../broker/config/secrets.ts';
import { FileDirectory } from '../../../broker/directory/directory.ts';
import { openEmbeddedStore } from '../../../broker/store/sql-store.ts';

describe('BotTokenSource', () => {
  function source(responses: (() => Response)[]) {
    let now = 1_000_000;
    const calls: URLSearchParams[] = [];
    const tokens = new BotTokenSource({
      appId: 'app',
      appPassword: new Secret('pw'),
      tenantId: 'tenant',
      loginEndpoint: 'http://login',
      clock: () => now,
      retry: { ...DEFAULT_RETRY, attempts: 1 },
      fetch: (async (_url: string, init: RequestInit) => {
        calls.push(init.body as URLSearchParams);
        return responses.shift()!();
      }) as typeof fetch,
    });
    return { tokens, calls, advance: (ms: number) => (now += ms) };
  }
  const ok = (token: string) => () => Response.json({ access_token: token, expires_in: 3600 });

  it('reuses a token until five minutes before it expires, then fetches a new one', async () => {
    const t = source([ok('one'), ok('two')]);
    assert.equal(await t.tokens.get('scope'), 'one');
    t.advance(54 * 60 * 1000);
    assert.equal(await t.tokens.get('scope'), 'one');
    t.advance(2 * 60 * 1000);
    assert.equal(await t.tokens.get('scope'), 'two');
    assert.equal(t.calls.length, 2);
    assert.equal(t.calls[0]!.get('grant_type'), 'client_credentials');
    assert.equal(t.calls[0]!.get('client_secret'), 'pw');
  });

  it('shares one fetch among concurrent callers', async () => {
    const t = source([ok('one')]);
    const got = await Promise.all([t.tokens.get('s'), t.tokens.get('s'), t.tokens.get('s')]);
    assert.deepEqual(got, ['one', 'one', 'one']);
    assert.equal(t.calls.length, 1);
  });

  it('keeps a still-valid token when refreshing it early fails; refuses bad credentials clearly', async () => {
    const t = source([ok('one'), () => new Response('', { status: 503 })]);
    await t.tokens.get('s');
    t.advance(57 * 60 * 1000);
    assert.equal(await t.tokens.get('s'), 'one');
    const bad = source([() => Response.json({ error: 'invalid_client' }, { status: 401 })]);
    await assert.rejects(bad.tokens.get('s'), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'ERR_BOT_TEAMS_API');
      assert.match(e.message, /invalid_client.*chat\.teams\.app_id/);
      assert.doesNotMatch(e.message, /pw/);
      return true;
    });
  });
});

describe('classifyTeamsFailure', () => {
  const policy = { ...DEFAULT_RETRY, baseDelayMs: 100, maxDelayMs: 5000 };
  const http = (status: number, headers: Record<string, string> = {}) => ({ response: { status, headers } });
  const cases: [string, unknown, number, boolean, RegExp | number][] = [
    ['a 429 with Retry-After', http(429, { 'retry-after': '2' }), 1, true, 2000],
    ['a 429 on the last try', http(429), 4, false, /rate limiting/],
    ['a 503', http(503), 1, true, 100],
    ['a network error', { code: 'ECONNREFUSED' }, 2, true, 200],
    ['a 403', http(403), 1, false, /not installed/],
    ['a 404', http(404), 1, false, /no such conversation/],
    ['a 500 on the last try', http(500), 4, false, /unavailable \(HTTP 500\)/],
  ];
  for (const [name, error, attempt, retry, expect] of cases) {
    it(`${retry ? 'retries' : 'gives up on'} ${name}`, () => {
      const out = classifyTeamsFailure(error, attempt, policy, () => 0.999);
      assert.equal(out.retry, retry);
      if (out.retry) assert.equal(out.delayMs, expect as number);
      else assert.match(out.error.message, expect as RegExp);
    });
  }
});

describe('TeamsPeople', () => {
  const directory = new FileDirectory([
    { id: 'alice', email: 'alice@example.com', teams: 'A11CE000-0000-4000-8000-000000000001', groups: [] },
    { id: 'bob', email: 'bob@example.com', teams: 'b0b00000-0000-4000-8000-000000000003', groups: [] },
    { id: 'carol', email: 'carol@example.com', groups: [] },
  ] as never);
  const upnOf = (upn: string | undefined) => async () => upn;

  it('maps by Entra object id (any case), and names whom to ask otherwise', async () => {
    const people = new TeamsPeople({ directory, mapping: 'id', contact: 'the service desk' });
    assert.equal(await people.toPerson('a11ce000-0000-4000-8000-000000000001', upnOf(undefined)), 'alice');
    await assert.rejects(
      people.toPerson('ca201000-0000-4000-8000-000000000004', upnOf('carol@example.com')),
      {
        code: 'ERR_BOT_USER_UNKNOWN',
        message: /ask the service desk/,
      },
    );
    await assert.rejects(people.toPerson('not-a-guid', upnOf(undefined)), { code: 'ERR_BOT_USER_UNKNOWN' });
  });

  it('falls back to the UPN only when configured, and never over a configured id', async () => {
    const people = new TeamsPeople({ directory, mapping: 'upn', contact: 'x' });
    assert.equal(
      await people.toPerson('ca201000-0000-4000-8000-000000000004', upnOf('carol@example.com')),
      'carol',
    );
    assert.equal(people.known('carol'), 'ca201000-0000-4000-8000-000000000004');
    await assert.rejects(people.toPerson('5e4a0000-0000-4000-8000-000000000005', upnOf('bob@example.com')), {
      code: 'ERR_BOT_USER_UNKNOWN',
    });
  });
});

describe('chat conversation references (embedded store)', () => {
  it('stores, replaces and finds a reference by user and by person', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-conv-'));
    const store = openEmbeddedStore(join(dir, 'w.db'));
    try {
      await store.migrate();
      const base = {
        chat: 'teams',
        userId: 'u1',
        personId: 'alice',
        serviceUrl: 'https://s/',
        tenantId: 't',
      };
      await store.saveChatConversation({ ...base, conversationId: 'a:1', updatedAt: 1 });
      await store.saveChatConversation({ ...base, conversationId: 'a:2', updatedAt: 2 });
      assert.equal((await store.getChatConversation('teams', { userId: 'u1' }))?.conversationId, 'a:2');
      assert.equal((await store.getChatConversation('teams', { personId: 'alice' }))?.conversationId, 'a:2');
      assert.equal(await store.getChatConversation('slack', { personId: 'alice' }), undefined);
      await assert.rejects(
        store.saveChatConversation({ ...base, conversationId: '', updatedAt: 3 }),
        RangeError,
      );
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
