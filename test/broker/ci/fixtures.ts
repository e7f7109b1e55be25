/** Shared builders for the CI tests: configurations around a running test issuer. */
import assert from 'node:assert/strict';
import { type CiConfig, parseCiConfig } from '../../../broker/ci/config.ts';
import { type CiErrorCode, isCiError } from '../../../broker/ci/errors.ts';
import type { OidcIssuer } from '../../helpers/oidc-issuer.ts';

/** A `ci:` section trusting `github` (GitHub shaped) and optionally `gitlab` issuers. */
export function makeCiConfig(
  github: OidcIssuer,
  gitlab?: OidcIssuer,
  issuerExtra: Record<string, unknown> = {},
): CiConfig {
  const issuers: Record<string, unknown>[] = [
    { name: 'github', issuer: github.url, audience: github.audience, kind: 'github', ...issuerExtra },
  ];
  const rules: Record<string, unknown>[] = [
    {
      name: 'nightly-report',
      issuer: 'github',
      match: {
        repository: 'octo-org/reports',
        ref: ['refs/heads/main', 'refs/heads/release/*'],
        job_workflow_ref: 'octo-org/reports/.github/workflows/*.yml@**',
      },
      target: 'reporting-db',
      level: 'read',
      max_duration: '15m',
    },
  ];
  if (gitlab) {
    issuers.push({ name: 'gitlab', issuer: gitlab.url, audience: gitlab.audience, kind: 'gitlab' });
    rules.push({
      name: 'gitlab-export',
      issuer: 'gitlab',
      match: { project_path: 'data-team/*', ref_protected: true, pipeline_source: 'schedule' },
      target: 'reporting-db',
      level: 'read',
      max_duration: '30m',
    });
  }
  return parseCiConfig({ issuers, rules });
}

/** Asserts that `promise` rejects with a CI error carrying `code`. */
export async function rejectsWith(promise: Promise<unknown>, code: CiErrorCode): Promise<void> {
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(isCiError(e), `expected a CiError, got ${String(e)}`);
    assert.equal(e.code, code);
    return true;
  });
}
