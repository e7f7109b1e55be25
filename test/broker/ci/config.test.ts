import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CI_DEFAULTS, parseCiConfig } from '../../../broker/ci/config.ts';
import { ConfigError } from '../../../broker/errors.ts';

const issuer = {
  name: 'gh',
  issuer: 'https://token.actions.githubusercontent.com',
  audience: 'warden',
  kind: 'github',
};
const rule = {
  name: 'r',
  issuer: 'gh',
  match: { repository: 'o/r' },
  target: 'db',
  level: 'read',
  max_duration: '15m',
};
const withIssuer = (extra: Record<string, unknown>) => ({
  issuers: [{ ...issuer, ...extra }],
  rules: [rule],
});
const withRule = (extra: Record<string, unknown>) => ({ issuers: [issuer], rules: [{ ...rule, ...extra }] });

describe('parseCiConfig', () => {
  it('applies the defaults', () => {
    const config = parseCiConfig({ issuers: [issuer], rules: [rule] });
    const [parsed] = config.issuers;
    assert.deepEqual(parsed!.algorithms, ['RS256', 'ES256']);
    assert.equal(parsed!.leewayMs, 30_000);
    assert.equal(parsed!.maxTokenAgeMs, 600_000);
    assert.equal(parsed!.jwksRefreshMinIntervalMs, 30_000);
    assert.equal(parsed!.jwksCacheTtlMs, CI_DEFAULTS.jwksCacheTtlMs);
    assert.equal(config.rules[0]!.maxDurationMs, 900_000);
    assert.equal(config.rules[0]!.approval, 'auto');
    assert.equal(config.rules[0]!.recorded, true);
    assert.deepEqual(config.rateLimit, { perSubjectPerMinute: 10, perIssuerPerMinute: 600 });
  });

  it('reads durations, algorithms and rate limits', () => {
    const config = parseCiConfig({
      issuers: [
        { ...issuer, algorithms: ['ES256'], leeway: '10s', max_token_age: '5m', jwks_cache_ttl: '1h' },
      ],
      rules: [{ ...rule, wait: '2m', approval: 'required', approvers: [{ group: 'dba' }], approvals: 2 }],
      rate_limit: { per_subject: 3, per_issuer: 100 },
    });
    assert.deepEqual(config.issuers[0]!.algorithms, ['ES256']);
    assert.equal(config.issuers[0]!.leewayMs, 10_000);
    assert.equal(config.issuers[0]!.maxTokenAgeMs, 300_000);
    assert.equal(config.issuers[0]!.jwksCacheTtlMs, 3_600_000);
    assert.equal(config.rules[0]!.waitMs, 120_000);
    assert.deepEqual(config.rules[0]!.approvers, [{ group: 'dba' }]);
    assert.equal(config.rules[0]!.approvals, 2);
    assert.deepEqual(config.rateLimit, { perSubjectPerMinute: 3, perIssuerPerMinute: 100 });
  });

  it('accepts plain http only on loopback', () => {
    parseCiConfig(withIssuer({ issuer: 'http://127.0.0.1:8080' }));
  });

  const bad: [string, unknown, string, RegExp][] = [
    [
      'HS256 listed',
      withIssuer({ algorithms: ['RS256', 'HS256'] }),
      'ci.issuers.0.algorithms.1',
      /never accepted/,
    ],
    ['none listed', withIssuer({ algorithms: ['none'] }), 'ci.issuers.0.algorithms.0', /never accepted/],
    [
      'unknown algorithm',
      withIssuer({ algorithms: ['XX1'] }),
      'ci.issuers.0.algorithms.0',
      /unknown algorithm/,
    ],
    ['no audience', withIssuer({ audience: undefined }), 'ci.issuers.0.audience', /./],
    ['empty audience', withIssuer({ audience: '' }), 'ci.issuers.0.audience', /./],
    ['unknown kind', withIssuer({ kind: 'jenkins' }), 'ci.issuers.0.kind', /./],
    ['http issuer', withIssuer({ issuer: 'http://ci.example.com' }), 'ci.issuers.0.issuer', /https/],
    ['not a URL', withIssuer({ issuer: 'token.actions' }), 'ci.issuers.0.issuer', /not a URL/],
    ['issuer with query', withIssuer({ issuer: 'https://x.example/?a=1' }), 'ci.issuers.0.issuer', /query/],
    ['bad leeway', withIssuer({ leeway: '30 seconds' }), 'ci.issuers.0.leeway', /not a duration/],
    ['unknown issuer key', withIssuer({ audiences: ['x'] }), 'ci.issuers.0', /./],
    ['no issuers', { issuers: [], rules: [] }, 'ci.issuers', /./],
    [
      'duplicate issuer URL',
      { issuers: [issuer, { ...issuer, name: 'gh2' }], rules: [] },
      'ci.issuers.1.issuer',
      /twice/,
    ],
    [
      'rule of an unknown issuer',
      withRule({ issuer: 'gitlab' }),
      'ci.rules.0.issuer',
      /no issuer named gitlab/,
    ],
    [
      'misspelt claim',
      withRule({ match: { repository: 'o/r', refs: 'main' } }),
      'ci.rules.0.match.refs',
      /unknown github claim/,
    ],
    [
      'rule pinned to no repository',
      withRule({ match: { ref: 'refs/heads/main' } }),
      'ci.rules.0.match',
      /every repository/,
    ],
    ['empty match', withRule({ match: {} }), 'ci.rules.0.match', /at least one/],
    ['bad max_duration', withRule({ max_duration: '15' }), 'ci.rules.0.max_duration', /not a duration/],
    ['bad approval', withRule({ approval: 'maybe' }), 'ci.rules.0.approval', /./],
    [
      'approval without approvers',
      withRule({ approval: 'required' }),
      'ci.rules.0.approvers',
      /needs approvers/,
    ],
    ['manager as a CI approver', withRule({ approvers: ['manager'] }), 'ci.rules.0.approvers.0', /./],
    ['number as a match', withRule({ match: { repository: 7 } }), 'ci.rules.0.match.repository', /./],
    ['zero rate', { issuers: [issuer], rate_limit: { per_subject: 0 } }, 'ci.rate_limit.per_subject', /./],
  ];
  for (const [name, input, path, message] of bad) {
    it(`refuses ${name} at ${path}`, () => {
      assert.throws(
        () => parseCiConfig(input),
        (e: unknown) =>
          e instanceof ConfigError &&
          e.code === 'ERR_CONFIG_INVALID' &&
          e.path === path &&
          message.test(e.message),
      );
    });
  }

  it('lets a generic issuer match on mapped claims only', () => {
    const generic = {
      name: 'ci',
      issuer: 'https://ci.example.com',
      audience: 'w',
      kind: 'generic',
      claims: { repository: 'project' },
    };
    parseCiConfig({ issuers: [generic], rules: [{ ...rule, issuer: 'ci', match: { repository: 'infra' } }] });
    assert.throws(
      () =>
        parseCiConfig({ issuers: [generic], rules: [{ ...rule, issuer: 'ci', match: { branch: 'main' } }] }),
      (e: unknown) => e instanceof ConfigError && e.path === 'ci.rules.0.match.branch',
    );
  });
});
