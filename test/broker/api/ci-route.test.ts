import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CI_STATUS_BY_CODE } from '../../../broker/api/ci-route.ts';

describe('CI_STATUS_BY_CODE', () => {
  const expected: [RegExp, number][] = [
    [/^ERR_CI_(TOKEN|ALG|ISSUER|AUDIENCE|CLAIM|SIGNATURE|KEY)_/, 401],
    [/^ERR_CI_(NO_RULE|REF_NOT_ALLOWED|DURATION_TOO_LONG)$/, 403],
    [/^ERR_CI_(JWKS_UNAVAILABLE|DISCOVERY_INVALID|UNAVAILABLE)$/, 503],
    [/^ERR_CI_RATE_LIMITED$/, 429],
    [/^ERR_CI_REQUEST_INVALID$/, 400],
  ];
  for (const [pattern, status] of expected) {
    it(`answers ${status} for ${pattern.source}`, () => {
      const codes = Object.keys(CI_STATUS_BY_CODE).filter((c) => pattern.test(c));
      assert.ok(codes.length > 0);
      for (const code of codes)
        assert.equal(CI_STATUS_BY_CODE[code as keyof typeof CI_STATUS_BY_CODE], status, code);
    });
  }
});
