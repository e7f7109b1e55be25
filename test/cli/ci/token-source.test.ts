import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { CiCliError, type CiCliErrorCode } from '../../../cli/ci/errors.ts';
import { type CiTokenSourceOptions, readCiToken } from '../../../cli/ci/token-source.ts';

const JWT = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl';
const GH_ENV = {
  ACTIONS_ID_TOKEN_REQUEST_URL: 'https://gh.invalid/token?api-version=2.0',
  ACTIONS_ID_TOKEN_REQUEST_TOKEN: 'req-secret',
};

const fails = (code: CiCliErrorCode) => (e: unknown) => e instanceof CiCliError && e.code === code;

describe('readCiToken', () => {
  it('asks GitHub Actions with the audience appended and the bearer header', async () => {
    const seen: { url: string; auth: string | undefined }[] = [];
    const { token, source } = await readCiToken({
      audience: 'warden prod',
      env: GH_ENV,
      fetch: async (url, init) => {
        seen.push({ url, auth: (init.headers as Record<string, string>).authorization });
        return Response.json({ count: 1, value: JWT });
      },
    });
    assert.equal(token, JWT);
    assert.equal(source, 'github');
    assert.deepEqual(seen, [
      { url: 'https://gh.invalid/token?api-version=2.0&audience=warden%20prod', auth: 'bearer req-secret' },
    ]);
  });

  it('talks to a real HTTP token endpoint on loopback', async () => {
    const server = createServer((req, res) => {
      const ok = req.headers.authorization === 'bearer req-secret' && req.url === '/t?audience=warden';
      res.statusCode = ok ? 200 : 403;
      res.end(ok ? JSON.stringify({ value: JWT }) : '');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/t`;
      const env = { ACTIONS_ID_TOKEN_REQUEST_URL: url, ACTIONS_ID_TOKEN_REQUEST_TOKEN: 'req-secret' };
      assert.equal((await readCiToken({ audience: 'warden', env })).token, JWT);
      await assert.rejects(
        readCiToken({ audience: 'warden', env: { ...env, ACTIONS_ID_TOKEN_REQUEST_TOKEN: 'wrong' } }),
        fails('ERR_CI_TOKEN_SOURCE_FAILED'),
      );
    } finally {
      server.close();
    }
  });

  it('reads a GitLab id_tokens variable, default and configured', async () => {
    assert.deepEqual(await readCiToken({ audience: 'w', env: { WARDEN_ID_TOKEN: `${JWT}\n` } }), {
      token: JWT,
      source: 'gitlab',
    });
    assert.equal(
      (await readCiToken({ audience: 'w', env: { MY_TOKEN: JWT }, gitlabTokenVar: 'MY_TOKEN' })).token,
      JWT,
    );
  });

  it('prefers --token-file over the environment', async () => {
    const result = await readCiToken({
      audience: 'w',
      env: { ...GH_ENV, WARDEN_ID_TOKEN: 'x.y.z' },
      tokenFile: '/run/token',
      readFile: async (path) => (path === '/run/token' ? `  ${JWT}\n` : ''),
      fetch: () => Promise.reject(new Error('must not be called')),
    });
    assert.deepEqual(result, { token: JWT, source: 'file' });
  });

  const bad: [string, Partial<CiTokenSourceOptions>, CiCliErrorCode][] = [
    ['no source at all', { env: {} }, 'ERR_CI_TOKEN_SOURCE_MISSING'],
    [
      'only half of the GitHub variables',
      { env: { ACTIONS_ID_TOKEN_REQUEST_URL: 'https://x' } },
      'ERR_CI_TOKEN_SOURCE_MISSING',
    ],
    [
      'a GitHub HTTP error',
      { env: GH_ENV, fetch: async () => new Response('no', { status: 500 }) },
      'ERR_CI_TOKEN_SOURCE_FAILED',
    ],
    [
      'a GitHub non-JSON answer',
      { env: GH_ENV, fetch: async () => new Response('<html>') },
      'ERR_CI_TOKEN_SOURCE_FAILED',
    ],
    [
      'a GitHub answer without value',
      { env: GH_ENV, fetch: async () => Response.json({}) },
      'ERR_CI_TOKEN_SOURCE_FAILED',
    ],
    [
      'a GitHub answer of null',
      { env: GH_ENV, fetch: async () => Response.json(null) },
      'ERR_CI_TOKEN_SOURCE_FAILED',
    ],
    [
      'a GitHub network error',
      { env: GH_ENV, fetch: () => Promise.reject(new TypeError('fetch failed')) },
      'ERR_CI_TOKEN_SOURCE_FAILED',
    ],
    [
      'a GitHub oversize answer',
      { env: GH_ENV, fetch: async () => new Response('x'.repeat(40_000)) },
      'ERR_CI_TOKEN_SOURCE_FAILED',
    ],
    [
      'a GitHub value that is no JWT',
      { env: GH_ENV, fetch: async () => Response.json({ value: 'abc' }) },
      'ERR_CI_TOKEN_SOURCE_FAILED',
    ],
    [
      'a GitLab variable that is no JWT',
      { env: { WARDEN_ID_TOKEN: 'not a token' } },
      'ERR_CI_TOKEN_SOURCE_FAILED',
    ],
    [
      'an unreadable token file',
      { env: {}, tokenFile: '/nope', readFile: () => Promise.reject(new Error('ENOENT')) },
      'ERR_CI_TOKEN_SOURCE_FAILED',
    ],
    [
      'an empty token file',
      { env: {}, tokenFile: '/empty', readFile: async () => '' },
      'ERR_CI_TOKEN_SOURCE_FAILED',
    ],
  ];
  for (const [name, options, code] of bad) {
    it(`fails on ${name} (${code})`, async () => {
      await assert.rejects(readCiToken({ audience: 'w', env: {}, ...options }), fails(code));
    });
  }

  it('never puts the request token in an error message', async () => {
    await assert.rejects(
      readCiToken({ audience: 'w', env: GH_ENV, fetch: async () => new Response('', { status: 401 }) }),
      (e: unknown) => e instanceof Error && !e.message.includes('req-secret'),
    );
  });
});
