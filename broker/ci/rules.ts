/**
 * CI rule matching: which rule, if any, lets a verified CI job have a level on a target, and for
 * how long. Rules are tried in configuration order; the first rule whose every matcher fits and
 * whose maximum covers the requested duration wins. Deny by default: no fitting rule, no grant.
 */
import type { CiMatcher, CiRuleConfig } from './config.ts';
import { CiRuleError } from './errors.ts';
import { matchGlob } from './glob.ts';
import type { CiClaimValue, VerifiedCiToken } from './verify.ts';

/** What the CI job asks for. */
export interface CiExchangeRequest {
  readonly target: string;
  readonly level: string;
  /** Requested lifetime in milliseconds; undefined means the rule's maximum. */
  readonly durationMs?: number | undefined;
}

/** The rule that applies and the granted lifetime in milliseconds. */
export interface CiRuleMatch {
  readonly rule: CiRuleConfig;
  readonly durationMs: number;
}

/**
 * Claims that describe the ref a job runs on. A rule that fits a job except on these gets the
 * distinct refusal `ERR_CI_REF_NOT_ALLOWED` ("right repository, wrong branch").
 */
const REF_CLAIMS = new Set(['ref', 'ref_type', 'ref_protected', 'ref_path', 'head_ref', 'base_ref']);

/**
 * The claims of `verified` that `rule` does not allow (empty when the rule fits the token); a
 * token of another issuer fits no rule (`iss` is reported).
 */
export function unmatchedClaims(
  rule: Pick<CiRuleConfig, 'issuer' | 'match'>,
  verified: Pick<VerifiedCiToken, 'issuerName' | 'claims'>,
): string[] {
  if (rule.issuer !== verified.issuerName) return ['iss'];
  return Object.entries(rule.match)
    .filter(([claim, matcher]) => !matchClaim(matcher, verified.claims[claim]))
    .map(([claim]) => claim);
}

/**
 * Finds the rule for `request`, or throws `ERR_CI_NO_RULE`, `ERR_CI_REF_NOT_ALLOWED`,
 * `ERR_CI_DURATION_TOO_LONG` or `ERR_CI_REQUEST_INVALID` (details name the rules and claims
 * involved, for the audit log).
 */
export function matchCiRule(
  verified: VerifiedCiToken,
  request: CiExchangeRequest,
  rules: readonly CiRuleConfig[],
): CiRuleMatch {
  const { durationMs } = request;
  if (durationMs !== undefined && (!Number.isSafeInteger(durationMs) || durationMs <= 0)) {
    throw new CiRuleError('ERR_CI_REQUEST_INVALID', {
      details: { reason: 'duration must be a positive number of ms' },
    });
  }
  const candidates = rules.filter(
    (r) => r.issuer === verified.issuerName && r.target === request.target && r.level === request.level,
  );
  const fitting: CiRuleConfig[] = [];
  const wrongRef: { rule: string; claims: string[] }[] = [];
  for (const rule of candidates) {
    const failed = unmatchedClaims(rule, verified);
    if (failed.length === 0) fitting.push(rule);
    else if (failed.every((claim) => REF_CLAIMS.has(claim)))
      wrongRef.push({ rule: rule.name, claims: failed });
  }
  const facts = {
    issuer: verified.issuerName,
    sub: verified.subject,
    target: request.target,
    level: request.level,
  };
  if (fitting.length === 0) {
    if (wrongRef.length > 0) {
      throw new CiRuleError('ERR_CI_REF_NOT_ALLOWED', {
        details: {
          ...facts,
          ref: verified.claims.ref,
          rules: wrongRef,
        },
      });
    }
    throw new CiRuleError('ERR_CI_NO_RULE', { details: facts });
  }
  if (durationMs === undefined) return { rule: fitting[0]!, durationMs: fitting[0]!.maxDurationMs };
  const rule = fitting.find((r) => r.maxDurationMs >= durationMs);
  if (!rule) {
    const maxDurationMs = Math.max(...fitting.map((r) => r.maxDurationMs));
    throw new CiRuleError('ERR_CI_DURATION_TOO_LONG', { details: { ...facts, durationMs, maxDurationMs } });
  }
  return { rule, durationMs };
}

/**
 * Tests one claim. Globs match strings and numbers (as decimal text); a boolean matcher matches
 * a boolean claim or GitLab's string form `"true"`/`"false"`. A missing claim never matches.
 */
export function matchClaim(matcher: CiMatcher, value: CiClaimValue | undefined): boolean {
  if (value === undefined) return false;
  if (matcher.kind === 'boolean') return value === matcher.value || value === String(matcher.value);
  const text = String(value);
  return matcher.globs.some((glob) => matchGlob(glob, text));
}

/** Audit facts about the CI job behind a token. */
export interface CiIdentity {
  readonly issuer: string;
  readonly subject: string;
  /** GitHub `repository`, GitLab `project_path`. */
  readonly repository: string | undefined;
  /** GitHub `job_workflow_ref` (else `workflow`), GitLab `ci_config_ref_uri`. */
  readonly workflow: string | undefined;
  /** GitHub `run_id`, GitLab `pipeline_id`. */
  readonly runId: string | undefined;
  /** `sha`. */
  readonly commit: string | undefined;
  readonly ref: string | undefined;
  readonly environment: string | undefined;
  /** GitHub `actor`, GitLab `user_login`. */
  readonly actor: string | undefined;
}

/** Extracts the audit facts of a verified token, whatever its issuer's vocabulary. */
export function describeCiIdentity(verified: VerifiedCiToken): CiIdentity {
  const c = verified.claims;
  const pick = (...names: string[]): string | undefined => {
    for (const name of names) if (c[name] !== undefined) return String(c[name]);
    return undefined;
  };
  return {
    issuer: verified.issuer,
    subject: verified.subject,
    repository: pick('repository', 'project_path'),
    workflow: pick('job_workflow_ref', 'workflow', 'ci_config_ref_uri'),
    runId: pick('run_id', 'pipeline_id'),
    commit: pick('sha'),
    ref: pick('ref'),
    environment: pick('environment'),
    actor: pick('actor', 'user_login'),
  };
}
