import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type CiConfig, parseCiConfig } from '../../../broker/ci/config.ts';
import { type CiErrorCode, isCiError } from '../../../broker/ci/errors.ts';
import { type CiExchangeRequest, describeCiIdentity, matchCiRule } from '../../../broker/ci/rules.ts';
import type { CiClaimValue, VerifiedCiToken } from '../../../broker/ci/verify.ts';

const config: CiConfig = parseCiConfig({
  issuers: [
    { name: 'gh', issuer: 'https://token.actions.githubusercontent.com', audience: 'warden', kind: 'github' },
    { name: 'gl', issuer: 'https://gitlab.example.com', audience: 'warden', kind: 'gitlab' },
    {
      name: 'ci',
      issuer: 'https://ci.example.com',
      audience: 'warden',
      kind: 'generic',
      claims: { repository: 'project', ref: 'branch', run_id: 'build', sha: 'commit' },
    },
  ],
  rules: [
    {
      name: 'reports-main',
      issuer: 'gh',
      match: {
        repository: 'octo-org/reports',
        ref: 'refs/heads/main',
        event_name: ['schedule', 'workflow_dispatch'],
      },
      target: 'reporting-db',
      level: 'read',
      max_duration: '15m',
    },
    {
      name: 'reports-release',
      issuer: 'gh',
      match: { repository_owner: 'octo-org', ref: 'refs/heads/release/*', environment: 'production' },
      target: 'reporting-db',
      level: 'read',
      max_duration: '1h',
      approval: 'required',
      approvers: [{ group: 'dba' }],
      wait: '10m',
    },
    {
      name: 'reports-main-long',
      issuer: 'gh',
      match: { repository: 'octo-org/reports', ref: 'refs/heads/main', environment: 'production' },
      target: 'reporting-db',
      level: 'read',
      max_duration: '2h',
      approval: 'required',
      approvers: [{ group: 'dba' }],
    },
    {
      name: 'gitlab-protected',
      issuer: 'gl',
      match: { project_path: 'data-team/**', ref_protected: true },
      target: 'warehouse',
      level: 'write',
      max_duration: '30m',
      recorded: false,
    },
    {
      name: 'generic',
      issuer: 'ci',
      match: { repository: 'infra', ref: 'main' },
      target: 'reporting-db',
      level: 'read',
      max_duration: '5m',
    },
  ],
});

function verified(issuerName: string, claims: Record<string, CiClaimValue>): VerifiedCiToken {
  const issuer = config.issuers.find((i) => i.name === issuerName)!;
  return {
    issuer: issuer.issuer,
    issuerName,
    kind: issuer.kind,
    subject: String(claims.sub ?? 'sub'),
    audience: 'warden',
    jti: 'j',
    alg: 'RS256',
    kid: 'k',
    issuedAtMs: 0,
    notBeforeMs: 0,
    expiresAtMs: 300_000,
    claims,
    payload: claims,
  };
}

const gh = (claims: Record<string, CiClaimValue>) =>
  verified('gh', {
    repository: 'octo-org/reports',
    repository_owner: 'octo-org',
    ref: 'refs/heads/main',
    event_name: 'schedule',
    environment: 'staging',
    run_id: '77',
    sha: 'abc',
    ...claims,
  });
const read = (durationMs?: number): CiExchangeRequest => ({
  target: 'reporting-db',
  level: 'read',
  durationMs,
});

describe('matchCiRule', () => {
  const good: [string, VerifiedCiToken, CiExchangeRequest, string, number][] = [
    ['GitHub main on a schedule', gh({}), read(600_000), 'reports-main', 600_000],
    ['duration defaults to the rule maximum', gh({}), read(), 'reports-main', 900_000],
    ['manual dispatch', gh({ event_name: 'workflow_dispatch' }), read(), 'reports-main', 900_000],
    [
      'a release branch in production',
      gh({ ref: 'refs/heads/release/7', environment: 'production', repository: 'octo-org/other' }),
      read(3_600_000),
      'reports-release',
      3_600_000,
    ],
    [
      'a longer duration falls to the next fitting rule',
      gh({ environment: 'production' }),
      read(5_400_000),
      'reports-main-long',
      5_400_000,
    ],
    [
      'GitLab protected ref given as a string',
      verified('gl', { project_path: 'data-team/etl/nightly', ref_protected: 'true', ref: 'main' }),
      { target: 'warehouse', level: 'write' },
      'gitlab-protected',
      1_800_000,
    ],
    [
      'GitLab protected ref given as a boolean',
      verified('gl', { project_path: 'data-team/etl', ref_protected: true }),
      { target: 'warehouse', level: 'write', durationMs: 60_000 },
      'gitlab-protected',
      60_000,
    ],
    [
      'generic issuer through its claim map',
      verified('ci', { repository: 'infra', ref: 'main' }),
      read(),
      'generic',
      300_000,
    ],
  ];
  for (const [name, token, request, rule, durationMs] of good) {
    it(`grants: ${name}`, () => {
      const match = matchCiRule(token, request, config.rules);
      assert.equal(match.rule.name, rule);
      assert.equal(match.durationMs, durationMs);
    });
  }

  const bad: [string, VerifiedCiToken, CiExchangeRequest, CiErrorCode][] = [
    ['another repository', gh({ repository: 'octo-org/payroll' }), read(), 'ERR_CI_NO_RULE'],
    [
      'a look-alike owner',
      gh({ repository: 'octo-org-evil/reports', repository_owner: 'octo-org-evil' }),
      read(),
      'ERR_CI_NO_RULE',
    ],
    ['another target', gh({}), { target: 'prod-db', level: 'read' }, 'ERR_CI_NO_RULE'],
    ['another level', gh({}), { target: 'reporting-db', level: 'write' }, 'ERR_CI_NO_RULE'],
    ['a pull request event', gh({ event_name: 'pull_request' }), read(), 'ERR_CI_NO_RULE'],
    ['a missing claim', gh({ event_name: undefined as unknown as string }), read(), 'ERR_CI_NO_RULE'],
    ['a feature branch', gh({ ref: 'refs/heads/feature/x' }), read(), 'ERR_CI_REF_NOT_ALLOWED'],
    [
      'a nested release branch',
      gh({ ref: 'refs/heads/release/7/x', environment: 'production' }),
      read(),
      'ERR_CI_REF_NOT_ALLOWED',
    ],
    [
      'an unprotected GitLab ref',
      verified('gl', { project_path: 'data-team/etl', ref_protected: 'false' }),
      { target: 'warehouse', level: 'write' },
      'ERR_CI_REF_NOT_ALLOWED',
    ],
    ['a duration above every fitting rule', gh({}), read(900_001), 'ERR_CI_DURATION_TOO_LONG'],
    [
      'a duration above two fitting rules',
      gh({ environment: 'production' }),
      read(7_200_001),
      'ERR_CI_DURATION_TOO_LONG',
    ],
    ['a zero duration', gh({}), read(0), 'ERR_CI_REQUEST_INVALID'],
    ['a fractional duration', gh({}), read(1.5), 'ERR_CI_REQUEST_INVALID'],
    [
      'a rule of another issuer',
      verified('gl', { project_path: 'octo-org/reports' }),
      read(),
      'ERR_CI_NO_RULE',
    ],
  ];
  for (const [name, token, request, code] of bad) {
    it(`refuses: ${name} (${code})`, () => {
      assert.throws(
        () => matchCiRule(token, request, config.rules),
        (e: unknown) => isCiError(e) && e.code === code,
      );
    });
  }

  it('reports the rule maximum and the ref in the refusal details', () => {
    assert.throws(
      () => matchCiRule(gh({}), read(3_600_000), config.rules),
      (e: unknown) => isCiError(e) && e.details.maxDurationMs === 900_000,
    );
    assert.throws(
      () => matchCiRule(gh({ ref: 'refs/heads/dev' }), read(), config.rules),
      (e: unknown) =>
        isCiError(e) &&
        e.details.ref === 'refs/heads/dev' &&
        JSON.stringify(e.details.rules) === '[{"rule":"reports-main","claims":["ref"]}]',
    );
  });

  it('carries approval, wait and recording settings of the rule', () => {
    const { rule } = matchCiRule(
      gh({ environment: 'production', ref: 'refs/heads/release/1' }),
      read(),
      config.rules,
    );
    assert.equal(rule.approval, 'required');
    assert.equal(rule.waitMs, 600_000);
    assert.equal(rule.recorded, true);
  });
});

describe('describeCiIdentity', () => {
  it('reads the generic vocabulary through the claim map', () => {
    const identity = describeCiIdentity(
      verified('ci', { sub: 'build:42', repository: 'infra', ref: 'main', run_id: 42, sha: 'fff' }),
    );
    assert.deepEqual(
      { ...identity },
      {
        issuer: 'https://ci.example.com',
        subject: 'build:42',
        repository: 'infra',
        workflow: undefined,
        runId: '42',
        commit: 'fff',
        ref: 'main',
        environment: undefined,
        actor: undefined,
      },
    );
  });
});
