import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildPostgresUri, routeCiCredential } from '../../../broker/ci/credential-route.ts';
import { type CiErrorCode, isCiError } from '../../../broker/ci/errors.ts';
import {
  MAX_CI_BODY_BYTES,
  parseBearerToken,
  parseCiExchangeBody,
  parseJsonBody,
} from '../../../broker/ci/exchange-request.ts';
import { Secret } from '../../../broker/config/secrets.ts';
import { PostgresCredential } from '../../../broker/providers/postgres/credential.ts';

function throwsCode(fn: () => unknown, code: CiErrorCode): void {
  assert.throws(fn, (e: unknown) => isCiError(e) && e.code === code);
}

describe('parseCiExchangeBody', () => {
  const good: [string, unknown, object][] = [
    ['ttl', { target: 'reporting-db', level: 'read', ttl: '15m' }, { durationMs: 900_000 }],
    ['duration', { target: 'reporting-db', level: 'read', duration: '1h' }, { durationMs: 3_600_000 }],
    ['no lifetime', { target: 'reporting-db', level: 'read' }, {}],
  ];
  for (const [name, body, extra] of good) {
    it(`reads ${name}`, () => {
      assert.deepEqual(parseCiExchangeBody(body), { target: 'reporting-db', level: 'read', ...extra });
    });
  }
  const bad: [string, unknown][] = [
    ['null', null],
    ['an array', [1]],
    ['a string', 'reporting-db'],
    ['no target', { level: 'read' }],
    ['no level', { target: 'db' }],
    ['a numeric target', { target: 7, level: 'read' }],
    ['an upper-case target', { target: 'DB', level: 'read' }],
    ['a target with a slash', { target: 'a/b', level: 'read' }],
    ['an unknown field', { target: 'db', level: 'read', reason: 'x' }],
    ['ttl and duration', { target: 'db', level: 'read', ttl: '1m', duration: '1m' }],
    ['a numeric ttl', { target: 'db', level: 'read', ttl: 900 }],
    ['a word as ttl', { target: 'db', level: 'read', ttl: 'soon' }],
    ['a long ttl text', { target: 'db', level: 'read', ttl: '1'.repeat(40) }],
  ];
  for (const [name, body] of bad) {
    it(`refuses ${name} with ERR_CI_REQUEST_INVALID`, () => {
      throwsCode(() => parseCiExchangeBody(body), 'ERR_CI_REQUEST_INVALID');
    });
  }
});

describe('parseJsonBody', () => {
  it('parses JSON and refuses what is not', () => {
    assert.deepEqual(parseJsonBody(Buffer.from('{"a":1}')), { a: 1 });
    throwsCode(() => parseJsonBody(Buffer.from('{"a":')), 'ERR_CI_REQUEST_INVALID');
    throwsCode(() => parseJsonBody(Buffer.alloc(MAX_CI_BODY_BYTES + 1, 32)), 'ERR_CI_BODY_TOO_LARGE');
  });
});

describe('parseBearerToken', () => {
  it('extracts the token', () => {
    assert.equal(parseBearerToken('Bearer a.b.c'), 'a.b.c');
    assert.equal(parseBearerToken('bearer a.b.c'), 'a.b.c');
  });
  const bad: [string, string | undefined, CiErrorCode][] = [
    ['no header', undefined, 'ERR_CI_TOKEN_MISSING'],
    ['an empty header', '', 'ERR_CI_TOKEN_MISSING'],
    ['basic auth', 'Basic dXNlcjpwdw==', 'ERR_CI_TOKEN_MALFORMED'],
    ['a bare token', 'a.b.c', 'ERR_CI_TOKEN_MALFORMED'],
    ['two tokens', 'Bearer a.b.c d.e.f', 'ERR_CI_TOKEN_MALFORMED'],
  ];
  for (const [name, header, code] of bad) {
    it(`refuses ${name} with ${code}`, () => throwsCode(() => parseBearerToken(header), code));
  }
});

describe('routeCiCredential', () => {
  const credential = new PostgresCredential({
    host: 'db.internal',
    port: 5432,
    database: 'reporting',
    user: 'warden_ci_x',
    password: new Secret('p@ss/w:rd%'),
    expiresAt: Date.parse('2025-03-01T02:15:00Z'),
  });
  const proxied = credential.withEndpoint({
    host: 'warden-proxy',
    port: 6432,
    password: credential.password,
    route: 'proxy',
  });
  const cases: [string, PostgresCredential, string, number, 'direct' | 'proxy'][] = [
    ['direct, not recorded, for a target without the proxy', credential, 'db.internal', 5432, 'direct'],
    ['through the proxy, recorded, for a proxied target', proxied, 'warden-proxy', 6432, 'proxy'],
  ];
  for (const [name, issued, host, port, route] of cases) {
    it(name, () => {
      const c = routeCiCredential(issued);
      assert.equal(c.host, host);
      assert.equal(c.port, port);
      assert.equal(c.route, route);
      assert.equal(c.recorded, route === 'proxy');
      assert.equal(c.password, 'p@ss/w:rd%');
      assert.equal(c.uri, `postgresql://warden_ci_x:p%40ss%2Fw%3Ard%25@${host}:${port}/reporting`);
    });
  }
  it('brackets IPv6 hosts and the URI round-trips through URL', () => {
    const uri = buildPostgresUri({ host: '::1', port: 5, database: 'd b', user: 'u', password: 'a@b' });
    assert.equal(uri, 'postgresql://u:a%40b@[::1]:5/d%20b');
    const url = new URL(uri);
    assert.equal(decodeURIComponent(url.password), 'a@b');
  });
});
