import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { JWK } from 'jose';
import { type CiFetch, selectKey } from '../../../broker/ci/jwks.ts';
import { createCiVerifier } from '../../../broker/ci/verify.ts';
import { type OidcIssuer, startOidcIssuer } from '../../helpers/oidc-issuer.ts';
import { makeCiConfig, rejectsWith } from './fixtures.ts';

const T0 = Date.parse('2025-03-01T02:00:00Z');

describe('remote JWKS', () => {
  let clock = T0;
  let issuer: OidcIssuer;
  beforeEach(async () => {
    clock = T0;
    issuer = await startOidcIssuer({ now: () => clock });
  });
  afterEach(() => issuer.close());

  const at = (ms: number) => {
    clock = T0 + ms;
    return { now: clock };
  };

  it('discovers the JWKS once and shares one fetch among concurrent verifications', async () => {
    const verifier = createCiVerifier(makeCiConfig(issuer));
    const tokens = await Promise.all(Array.from({ length: 10 }, () => issuer.issue()));
    const results = await Promise.all(tokens.map((t) => verifier.verifyCiToken(t, at(0))));
    assert.equal(results.length, 10);
    assert.equal(issuer.discoveryFetches, 1);
    assert.equal(issuer.jwksFetches, 1);
    assert.deepEqual(verifier.jwksStats(), { github: { discoveryFetches: 1, jwksFetches: 1, failures: 0 } });
  });

  it('follows a key rotation with exactly one refetch and refuses the removed key', async () => {
    const verifier = createCiVerifier(makeCiConfig(issuer));
    const byOldKey = await issuer.issue();
    await verifier.verifyCiToken(await issuer.issue(), at(0));
    assert.equal(issuer.jwksFetches, 1);
    await issuer.rotate();

    // Within the minimum interval the new kid is not fetched for yet.
    await rejectsWith(verifier.verifyCiToken(await issuer.issue(), at(5_000)), 'ERR_CI_KEY_UNKNOWN');
    assert.equal(issuer.jwksFetches, 1);

    const fresh = await Promise.all([issuer.issue(), issuer.issue({}, { alg: 'ES256' })]);
    await Promise.all(fresh.map((t) => verifier.verifyCiToken(t, at(31_000))));
    assert.equal(issuer.jwksFetches, 2);

    await rejectsWith(verifier.verifyCiToken(byOldKey, at(32_000)), 'ERR_CI_KEY_UNKNOWN');
    assert.equal(issuer.jwksFetches, 2);
    await rejectsWith(verifier.verifyCiToken(byOldKey, at(62_000)), 'ERR_CI_KEY_UNKNOWN');
    assert.equal(issuer.jwksFetches, 3);
  });

  it('does not hammer the JWKS with repeated unknown kids', async () => {
    const verifier = createCiVerifier(makeCiConfig(issuer));
    await verifier.verifyCiToken(await issuer.issue(), at(0));
    const forged = await Promise.all(Array.from({ length: 20 }, () => issuer.forge.unknownKid()));
    await Promise.all(
      forged
        .slice(0, 10)
        .map((t) => rejectsWith(verifier.verifyCiToken(t, at(31_000)), 'ERR_CI_KEY_UNKNOWN')),
    );
    for (const [i, token] of forged.slice(10).entries()) {
      await rejectsWith(verifier.verifyCiToken(token, at(32_000 + i * 1_000)), 'ERR_CI_KEY_UNKNOWN');
    }
    assert.equal(issuer.jwksFetches, 2);
  });

  for (const mode of ['http-error', 'reset'] as const) {
    it(`fails closed when the JWKS endpoint is unreachable (${mode}) and retries once per interval`, async () => {
      const verifier = createCiVerifier(makeCiConfig(issuer));
      issuer.setJwksMode(mode);
      await rejectsWith(verifier.verifyCiToken(await issuer.issue(), at(0)), 'ERR_CI_JWKS_UNAVAILABLE');
      await rejectsWith(verifier.verifyCiToken(await issuer.issue(), at(10_000)), 'ERR_CI_JWKS_UNAVAILABLE');
      assert.equal(issuer.jwksFetches, 1);
      issuer.setJwksMode('ok');
      await verifier.verifyCiToken(await issuer.issue(), at(31_000));
      assert.equal(issuer.jwksFetches, 2);
    });
  }

  it('fails closed when the cached JWKS is stale and cannot be refreshed', async () => {
    const verifier = createCiVerifier(makeCiConfig(issuer, undefined, { jwks_cache_ttl: '1m' }));
    await verifier.verifyCiToken(await issuer.issue(), at(0));
    issuer.setJwksMode('http-error');
    await verifier.verifyCiToken(await issuer.issue(), at(59_000));
    await rejectsWith(verifier.verifyCiToken(await issuer.issue(), at(61_000)), 'ERR_CI_JWKS_UNAVAILABLE');
    assert.equal(issuer.jwksFetches, 2);
  });

  it('refuses a discovery document naming another issuer', async () => {
    const verifier = createCiVerifier(makeCiConfig(issuer));
    issuer.setDiscoveryIssuer('https://attacker.example');
    await rejectsWith(verifier.verifyCiToken(await issuer.issue(), at(0)), 'ERR_CI_DISCOVERY_INVALID');
    assert.equal(issuer.jwksFetches, 0);
  });

  it('skips discovery when jwks_uri is configured', async () => {
    const verifier = createCiVerifier(
      makeCiConfig(issuer, undefined, { jwks_uri: `${issuer.url}/.well-known/jwks` }),
    );
    await verifier.verifyCiToken(await issuer.issue(), at(0));
    assert.equal(issuer.discoveryFetches, 0);
    assert.equal(issuer.jwksFetches, 1);
  });

  it('times out a JWKS request that never answers', async () => {
    const hanging: CiFetch = (_url, init) =>
      new Promise((_resolve, reject) =>
        init.signal!.addEventListener('abort', () => reject(init.signal!.reason)),
      );
    const config = makeCiConfig(issuer, undefined, { jwks_timeout: '1s' });
    const verifier = createCiVerifier(config, { fetch: hanging });
    await assert.rejects(verifier.verifyCiToken(await issuer.issue(), at(0)), (e: unknown) => {
      assert.equal((e as { code: string }).code, 'ERR_CI_JWKS_UNAVAILABLE');
      assert.equal((e as { details: { reason: string } }).details.reason, 'timeout');
      return true;
    });
  });

  const badDocuments: [string, () => Response][] = [
    ['an oversize document', () => new Response('x'.repeat(300 * 1024))],
    ['a non-JSON document', () => new Response('<html>')],
    ['a JSON array', () => new Response('[]')],
    ['a redirect', () => new Response(null, { status: 302, headers: { location: 'https://evil.example' } })],
    ['a document without keys', () => new Response('{"keys":{}}')],
  ];
  for (const [name, respond] of badDocuments) {
    it(`fails closed on ${name}`, async () => {
      const config = makeCiConfig(issuer, undefined, { jwks_uri: `${issuer.url}/.well-known/jwks` });
      const verifier = createCiVerifier(config, { fetch: async () => respond() });
      await rejectsWith(verifier.verifyCiToken(await issuer.issue(), at(0)), 'ERR_CI_JWKS_UNAVAILABLE');
    });
  }
});

describe('selectKey', () => {
  const rsa: JWK = { kty: 'RSA', kid: 'r1', n: 'x', e: 'AQAB' };
  const ec: JWK = { kty: 'EC', kid: 'e1', crv: 'P-256', x: 'x', y: 'y' };
  const table: [
    string,
    JWK[],
    { alg: 'RS256' | 'ES256' | 'ES384'; kid: string | undefined },
    JWK | undefined,
  ][] = [
    ['by kid', [rsa, ec], { alg: 'RS256', kid: 'r1' }, rsa],
    ['kid of another key type', [rsa, ec], { alg: 'ES256', kid: 'r1' }, undefined],
    ['curve mismatch', [ec], { alg: 'ES384', kid: 'e1' }, undefined],
    ['jwk alg contradicts', [{ ...rsa, alg: 'RS512' }], { alg: 'RS256', kid: 'r1' }, undefined],
    ['encryption key', [{ ...rsa, use: 'enc' }], { alg: 'RS256', kid: 'r1' }, undefined],
    ['private key published', [{ ...rsa, d: 'secret' }], { alg: 'RS256', kid: 'r1' }, undefined],
    ['no kid, one candidate', [rsa, ec], { alg: 'ES256', kid: undefined }, ec],
    ['no kid, two candidates', [rsa, { ...rsa, kid: 'r2' }], { alg: 'RS256', kid: undefined }, undefined],
  ];
  for (const [name, keys, hint, expected] of table) {
    it(name, () => assert.equal(selectKey(keys, hint), expected));
  }
});
