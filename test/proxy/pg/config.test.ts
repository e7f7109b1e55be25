/** Proxy settings compile at start-up or fail with a code and the config path. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildCatalog, CATALOG_TTL_MS, CatalogCache } from '../../../proxy/pg/catalog.ts';
import { compilePgProxyTarget, type PgProxyTargetConfig } from '../../../proxy/pg/config.ts';

const BASE: PgProxyTargetConfig = {
  listen: '127.0.0.1:6432',
  allow_plaintext: true,
  guardrails: {},
  masking: {},
  record_rows: false,
};
const noFiles = (path: string): Buffer => {
  throw Object.assign(new Error(`ENOENT ${path}`), { code: 'ENOENT' });
};

describe('compilePgProxyTarget', () => {
  const cases: [string, Partial<PgProxyTargetConfig>, Record<string, string>, string, RegExp][] = [
    [
      'no TLS and no plaintext',
      { allow_plaintext: false },
      {},
      'ERR_PGPROXY_CONFIG',
      /targets\.db\.proxy\.tls/,
    ],
    [
      'unreadable certificate',
      { tls: { cert: '/nope.pem', key: '/nope.key' } },
      {},
      'ERR_PGPROXY_CONFIG',
      /cannot read/,
    ],
    [
      'an inline masking key',
      { masking: { key: 'hunter2hunter2hunter2' } },
      {},
      'ERR_PGPROXY_CONFIG',
      /never inline/,
    ],
    ['a missing key variable', { masking: { key: 'env:NOPE' } }, {}, 'ERR_PGPROXY_CONFIG', /NOPE is not set/],
    [
      'a bad guardrail rule',
      { guardrails: { disable: ['no-such-rule'] } },
      {},
      'ERR_SQLGUARD_CONFIG_INVALID',
      /guardrails\.disable\.0/,
    ],
    [
      'a bad masking column',
      { masking: { columns: [{ match: 'a.b.c.d', style: 'redact' }] } },
      {},
      'ERR_MASKING_CONFIG',
      /masking\.columns\[0\]/,
    ],
    [
      'hash without key',
      { masking: { columns: [{ match: 'email', style: 'hash' }] } },
      {},
      'ERR_MASKING_KEY',
      /masking\.key/,
    ],
  ];
  for (const [name, patch, env, code, message] of cases) {
    it(`refuses ${name} (${code})`, () => {
      assert.throws(
        () => compilePgProxyTarget('db', { ...BASE, ...patch }, { env, readFile: noFiles }),
        (e: { code?: string; message: string }) => e.code === code && message.test(e.message),
      );
    });
  }

  it('compiles a plaintext target with a key from the environment', () => {
    const target = compilePgProxyTarget(
      'db',
      { ...BASE, masking: { key: 'env:KEY', columns: [{ match: 'email', style: 'hash' }] } },
      { env: { KEY: 'k'.repeat(32) }, readFile: noFiles },
    );
    assert.equal(target.tls, undefined);
    assert.equal(target.allowPlaintext, true);
    assert.match(target.masker.maskValue('x', target.masker.config.columns[0]).text, /^tok_/);
  });
});

describe('catalog', () => {
  it('builds names by OID and attribute, skipping malformed rows', () => {
    const catalog = buildCatalog(
      [
        ['10', 'public', 'customers', '1', 'id'],
        ['10', 'public', 'customers', '2', 'email'],
        ['x', 'public', 'bad', '1', 'a'],
        ['11', null, 't', '1', 'a'],
      ],
      5,
    );
    assert.deepEqual([...catalog.tables], [[10, { schema: 'public', table: 'customers' }]]);
    assert.equal(catalog.attributes.get(10)?.get(2), 'email');
  });

  it('serves a catalog until its TTL, and forgets it when told', () => {
    let now = 0;
    const cache = new CatalogCache(() => now);
    const catalog = buildCatalog([], 0);
    cache.set('db/app', catalog);
    assert.equal(cache.get('db/app'), catalog);
    now = CATALOG_TTL_MS + 1;
    assert.equal(cache.get('db/app'), undefined);
    cache.set('db/app', { ...catalog, loadedAt: now });
    cache.invalidate('db/app');
    assert.equal(cache.get('db/app'), undefined);
  });
});
