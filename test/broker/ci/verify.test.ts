import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { CiConfig } from '../../../broker/ci/config.ts';
import { type CiErrorCode, isCiError } from '../../../broker/ci/errors.ts';
import type { CiKeyResolver } from '../../../broker/ci/jwks.ts';
import { MemoryReplayCache } from '../../../broker/ci/replay-cache.ts';
import { describeCiIdentity, matchCiRule } from '../../../broker/ci/rules.ts';
import { createCiVerifier, MAX_CI_TOKEN_BYTES, verifyCiToken } from '../../../broker/ci/verify.ts';
import { type OidcIssuer, startOidcIssuer } from '../../helpers/oidc-issuer.ts';
import { makeCiConfig, rejectsWith } from './fixtures.ts';

const T0 = Date.parse('2025-03-01T02:00:00Z');
const sec = (ms: number) => Math.floor(ms / 1000);
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

describe('verifyCiToken', () => {
  let github: OidcIssuer;
  let gitlab: OidcIssuer;
  let config: CiConfig;

  before(async () => {
    github = await startOidcIssuer({ now: () => T0 });
    gitlab = await startOidcIssuer({ now: () => T0, audience: 'warden-gitlab' });
    config = makeCiConfig(github, gitlab);
  });
  after(async () => {
    await github.close();
    await gitlab.close();
  });

  it('accepts a good GitHub token and matches its rule', async () => {
    const verifier = createCiVerifier(config);
    const verified = await verifier.verifyCiToken(await github.issue(), { now: T0 + 1_000 });
    assert.equal(verified.issuerName, 'github');
    assert.equal(verified.subject, 'repo:octo-org/reports:ref:refs/heads/main');
    assert.equal(verified.claims.repository, 'octo-org/reports');
    assert.equal(verified.alg, 'RS256');
    assert.equal(verified.expiresAtMs, (sec(T0) + 300) * 1000);
    const match = matchCiRule(
      verified,
      { target: 'reporting-db', level: 'read', durationMs: 900_000 },
      config.rules,
    );
    assert.equal(match.rule.name, 'nightly-report');
    assert.equal(match.durationMs, 900_000);
    assert.deepEqual(describeCiIdentity(verified), {
      issuer: github.url,
      subject: 'repo:octo-org/reports:ref:refs/heads/main',
      repository: 'octo-org/reports',
      workflow: 'octo-org/reports/.github/workflows/nightly-report.yml@refs/heads/main',
      runId: '8812345678',
      commit: 'e7f3a2c09b1d4f5a6e8c7b2d1f0a9e8d7c6b5a41',
      ref: 'refs/heads/main',
      environment: 'production',
      actor: 'octocat',
    });
  });

  it('accepts an ES256 GitHub token on a release branch', async () => {
    const verifier = createCiVerifier(config);
    const token = await github.issue({ ref: 'refs/heads/release/2025.03' }, { alg: 'ES256' });
    const verified = await verifier.verifyCiToken(token, { now: T0 });
    assert.equal(verified.alg, 'ES256');
    assert.equal(
      matchCiRule(verified, { target: 'reporting-db', level: 'read' }, config.rules).durationMs,
      900_000,
    );
  });

  it('accepts a good GitLab token and matches its rule', async () => {
    const verifier = createCiVerifier(config);
    const verified = await verifier.verifyCiToken(await gitlab.issueGitLab(), { now: new Date(T0) });
    assert.equal(verified.issuerName, 'gitlab');
    assert.equal(verified.claims.ref_protected, 'true');
    const match = matchCiRule(
      verified,
      { target: 'reporting-db', level: 'read', durationMs: 600_000 },
      config.rules,
    );
    assert.equal(match.rule.name, 'gitlab-export');
    const identity = describeCiIdentity(verified);
    assert.equal(identity.repository, 'data-team/reports');
    assert.equal(identity.runId, '99001');
    assert.equal(identity.actor, 'ana');
    assert.equal(identity.commit, '0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c');
  });

  const s0 = sec(T0);
  const refusals: [string, (i: OidcIssuer) => Promise<string> | string, CiErrorCode, number?][] = [
    ['wrong audience', (i) => i.issue({ aud: 'someone-else' }), 'ERR_CI_AUDIENCE_MISMATCH'],
    ['wrong audience in a list', (i) => i.issue({ aud: ['a', 'b'] }), 'ERR_CI_AUDIENCE_MISMATCH'],
    ['missing audience', (i) => i.issue({ aud: undefined }), 'ERR_CI_AUDIENCE_MISSING'],
    ['empty audience list', (i) => i.issue({ aud: [] }), 'ERR_CI_AUDIENCE_MISSING'],
    ['wrong issuer', (i) => i.issue({ iss: 'https://token.actions.example.com' }), 'ERR_CI_ISSUER_UNKNOWN'],
    ['missing issuer', (i) => i.issue({ iss: undefined }), 'ERR_CI_ISSUER_UNKNOWN'],
    ['expired', (i) => i.issue({ exp: s0 - 31 }), 'ERR_CI_TOKEN_EXPIRED'],
    ['expired at verification time', (i) => i.issue(), 'ERR_CI_TOKEN_EXPIRED', 331_000],
    ['not yet valid (nbf)', (i) => i.issue({ nbf: s0 + 31 }), 'ERR_CI_TOKEN_NOT_YET_VALID'],
    ['issued in the future', (i) => i.issue({ iat: s0 + 60, nbf: undefined }), 'ERR_CI_TOKEN_NOT_YET_VALID'],
    ['too old', (i) => i.issue({ iat: s0 - 631, nbf: undefined, exp: s0 + 60 }), 'ERR_CI_TOKEN_TOO_OLD'],
    ['missing exp', (i) => i.issue({ exp: undefined }), 'ERR_CI_CLAIM_MISSING'],
    ['missing iat', (i) => i.issue({ iat: undefined }), 'ERR_CI_CLAIM_MISSING'],
    ['missing jti', (i) => i.issue({ jti: undefined }), 'ERR_CI_CLAIM_MISSING'],
    ['missing sub', (i) => i.issue({ sub: undefined }), 'ERR_CI_CLAIM_MISSING'],
    ['exp as a string', (i) => i.issue({ exp: String(s0 + 60) }), 'ERR_CI_TOKEN_MALFORMED'],
    ['alg none', (i) => i.forge.algNone(), 'ERR_CI_ALG_NOT_ALLOWED'],
    ['HS256 keyed with the public key', (i) => i.forge.hs256WithPublicKey(), 'ERR_CI_ALG_NOT_ALLOWED'],
    ['unknown kid', (i) => i.forge.unknownKid(), 'ERR_CI_KEY_UNKNOWN'],
    [
      'kid of the other algorithm',
      (i) => i.issue({}, { alg: 'ES256', kid: i.kid('RS256') }),
      'ERR_CI_KEY_UNKNOWN',
    ],
    [
      'tampered payload',
      (i) => i.forge.tamperedPayload({ repository: 'octo-org/payroll' }),
      'ERR_CI_SIGNATURE_INVALID',
    ],
    ['tampered signature', (i) => i.forge.tamperedSignature(), 'ERR_CI_SIGNATURE_INVALID'],
    [
      'critical header',
      () => `${b64({ alg: 'RS256', crit: ['x'], x: 1 })}.${b64({ iss: 'x' })}.c2ln`,
      'ERR_CI_TOKEN_MALFORMED',
    ],
    ['two segments', () => 'eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0', 'ERR_CI_TOKEN_MALFORMED'],
    ['header not JSON', () => 'bm90IGpzb24.eyJpc3MiOiJ4In0.c2ln', 'ERR_CI_TOKEN_MALFORMED'],
    ['payload an array', () => 'eyJhbGciOiJSUzI1NiJ9.WzFd.c2ln', 'ERR_CI_TOKEN_MALFORMED'],
    ['padding characters', () => 'eyJhbGciOiJSUzI1NiJ9=.eyJpc3MiOiJ4In0.c2ln', 'ERR_CI_TOKEN_MALFORMED'],
    ['empty string', () => '', 'ERR_CI_TOKEN_MALFORMED'],
  ];
  for (const [name, make, code, later] of refusals) {
    it(`refuses: ${name} (${code})`, async () => {
      const verifier = createCiVerifier(config);
      await rejectsWith(verifier.verifyCiToken(await make(github), { now: T0 + (later ?? 0) }), code);
    });
  }

  it('refuses a reused jti, and accepts a new token from the same job', async () => {
    const verifier = createCiVerifier(config);
    const token = await github.issue();
    await verifier.verifyCiToken(token, { now: T0 });
    await rejectsWith(verifier.verifyCiToken(token, { now: T0 + 5_000 }), 'ERR_CI_TOKEN_REPLAYED');
    await verifier.verifyCiToken(await github.issue(), { now: T0 + 5_000 });
  });

  it('does not burn the jti of a refused token', async () => {
    const verifier = createCiVerifier(config);
    const jti = 'fixed-jti-1';
    await rejectsWith(
      verifier.verifyCiToken(await github.issue({ jti, aud: 'other' }), { now: T0 }),
      'ERR_CI_AUDIENCE_MISMATCH',
    );
    await verifier.verifyCiToken(await github.issue({ jti }), { now: T0 });
  });

  it('refuses an algorithm the issuer is not configured for', async () => {
    const verifier = createCiVerifier(makeCiConfig(github, undefined, { algorithms: ['RS256'] }));
    await rejectsWith(
      verifier.verifyCiToken(await github.issue({}, { alg: 'ES256' }), { now: T0 }),
      'ERR_CI_ALG_NOT_ALLOWED',
    );
  });

  it('refuses a token of one configured issuer claiming another', async () => {
    const verifier = createCiVerifier(config);
    // Signed by the GitLab issuer's key but naming the GitHub issuer: the kid is not in its JWKS.
    await rejectsWith(
      verifier.verifyCiToken(await gitlab.issue({ iss: github.url }), { now: T0 }),
      'ERR_CI_KEY_UNKNOWN',
    );
  });

  it('refuses an oversize token before parsing it or fetching keys', async () => {
    let lookups = 0;
    const keys: CiKeyResolver = {
      getKey: () => {
        lookups++;
        return Promise.reject(new Error('must not be called'));
      },
    };
    const big = await github.issue({ padding: 'x'.repeat(MAX_CI_TOKEN_BYTES) });
    const context = { now: T0, issuers: config.issuers, keys, replay: new MemoryReplayCache() };
    await rejectsWith(verifyCiToken(big, context), 'ERR_CI_TOKEN_TOO_LARGE');
    await rejectsWith(verifyCiToken('%'.repeat(MAX_CI_TOKEN_BYTES + 1), context), 'ERR_CI_TOKEN_TOO_LARGE');
    assert.equal(lookups, 0);
  });

  it('refuses a non-string token', async () => {
    const verifier = createCiVerifier(config);
    await rejectsWith(verifier.verifyCiToken({ token: 'x' }, { now: T0 }), 'ERR_CI_TOKEN_MALFORMED');
  });

  it('gives generic messages and keeps the facts in details', async () => {
    const verifier = createCiVerifier(config);
    await assert.rejects(
      verifier.verifyCiToken(await github.issue({ aud: 'secret-aud' }), { now: T0 }),
      (e) => {
        assert.ok(isCiError(e));
        assert.doesNotMatch(e.message, /secret-aud|warden-test/);
        assert.deepEqual(e.details.aud, ['secret-aud']);
        return true;
      },
    );
  });
});
