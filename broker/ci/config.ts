/**
 * The `ci:` section of the broker configuration: trusted OIDC issuers, CI rules and exchange
 * rate limits. `ciConfigSchema` validates the YAML shape (snake_case, durations like `15m`) and
 * outputs a typed {@link CiConfig} (camelCase, milliseconds, compiled globs).
 */
import { z } from 'zod';
import { parseDuration } from '../config/duration.ts';
import { ConfigError } from '../errors.ts';
import { compileGlob, type Glob } from './glob.ts';

/** Every default of the `ci:` section, in one place. */
export const CI_DEFAULTS = {
  algorithms: ['RS256', 'ES256'] as const,
  /** Clock skew tolerated on `exp`, `nbf` and `iat`: 30 s. */
  leewayMs: 30_000,
  /** Oldest `iat` accepted: 10 min. */
  maxTokenAgeMs: 600_000,
  /** Least time between two JWKS fetches caused by unknown `kid`s or failures: 30 s. */
  jwksRefreshMinIntervalMs: 30_000,
  /** How long a fetched JWKS is trusted before it is fetched again: 10 min. */
  jwksCacheTtlMs: 600_000,
  /** Time allowed for one discovery or JWKS request: 5 s. */
  jwksTimeoutMs: 5_000,
  /** Exchanges per minute for one subject (`sub` of one issuer). */
  perSubjectPerMinute: 10,
  /** Exchanges per minute for one issuer, all subjects together. */
  perIssuerPerMinute: 600,
  /** How long a CI request needing approval stays open, and an approved one collectable: 1 h. */
  pendingTimeoutMs: 3_600_000,
} as const;

/** Signature algorithms a CI issuer may be configured with. HMAC and `none` are never among them. */
export const ASYMMETRIC_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
] as const;

/** A JWS algorithm Warden verifies CI tokens with. */
export type CiAlgorithm = (typeof ASYMMETRIC_ALGORITHMS)[number];

/** Which claim vocabulary an issuer speaks. */
export type CiIssuerKind = 'github' | 'gitlab' | 'generic';

/** Claims of GitHub Actions ID tokens a rule may match on. */
export const GITHUB_CLAIMS = [
  'sub',
  'repository',
  'repository_id',
  'repository_owner',
  'repository_owner_id',
  'repository_visibility',
  'ref',
  'ref_type',
  'ref_protected',
  'environment',
  'job_workflow_ref',
  'job_workflow_sha',
  'workflow',
  'workflow_ref',
  'workflow_sha',
  'event_name',
  'actor',
  'actor_id',
  'runner_environment',
  'head_ref',
  'base_ref',
  'enterprise',
] as const;

/** Claims of GitLab CI ID tokens a rule may match on. */
export const GITLAB_CLAIMS = [
  'sub',
  'project_id',
  'project_path',
  'namespace_id',
  'namespace_path',
  'user_id',
  'user_login',
  'pipeline_source',
  'ref',
  'ref_type',
  'ref_path',
  'ref_protected',
  'environment',
  'environment_protected',
  'deployment_tier',
  'runner_environment',
  'ci_config_ref_uri',
  'project_visibility',
] as const;

/**
 * Claims that pin a rule to a repository or project. A GitHub or GitLab rule must match on one
 * of them, or it would accept every job of every repository the issuer serves.
 */
const IDENTIFYING_CLAIMS: Record<Exclude<CiIssuerKind, 'generic'>, readonly string[]> = {
  github: [
    'sub',
    'repository',
    'repository_id',
    'repository_owner',
    'repository_owner_id',
    'job_workflow_ref',
  ],
  gitlab: ['sub', 'project_path', 'project_id', 'namespace_path', 'namespace_id', 'ci_config_ref_uri'],
};

/** One configured matcher: any of the globs, or a boolean (`ref_protected`). */
export type CiMatcher =
  | { readonly kind: 'globs'; readonly globs: readonly Glob[] }
  | { readonly kind: 'boolean'; readonly value: boolean };

/** A trusted OIDC issuer. */
export interface CiIssuerConfig {
  /** Name rules refer to. */
  readonly name: string;
  /** Exact `iss` value, also the discovery base URL. */
  readonly issuer: string;
  /** `aud` a token must carry. */
  readonly audience: string;
  readonly kind: CiIssuerKind;
  readonly algorithms: readonly CiAlgorithm[];
  /** Milliseconds, default 30 s. */
  readonly leewayMs: number;
  /** Milliseconds since `iat`, default 10 min. */
  readonly maxTokenAgeMs: number;
  /** Our claim name → the issuer's claim name (generic issuers; applies to every kind). */
  readonly claims: Readonly<Record<string, string>>;
  /** JWKS URL; when absent it is discovered from `<issuer>/.well-known/openid-configuration`. */
  readonly jwksUri: string | undefined;
  /** Milliseconds, default 30 s. */
  readonly jwksRefreshMinIntervalMs: number;
  /** Milliseconds, default 10 min. */
  readonly jwksCacheTtlMs: number;
  /** Milliseconds, default 5 s. */
  readonly jwksTimeoutMs: number;
}

/** Who may approve a CI grant: members of a directory group, or one named person. */
export type CiApprover = { readonly group: string } | { readonly user: string };

/** A CI rule: which jobs of which issuer may get which level on which target, for how long. */
export interface CiRuleConfig {
  readonly name: string;
  /** Name of a configured issuer. */
  readonly issuer: string;
  /** Our claim name → matcher; every entry must match. */
  readonly match: Readonly<Record<string, CiMatcher>>;
  readonly target: string;
  readonly level: string;
  /** Milliseconds. */
  readonly maxDurationMs: number;
  readonly approval: 'auto' | 'required';
  /** Who approves when `approval` is `required` (CI jobs have no manager); empty when auto. */
  readonly approvers: readonly CiApprover[];
  /** Distinct approvals needed; default 1. */
  readonly approvals: number;
  /** Milliseconds to wait for an approval when `approval` is `required`; undefined when not set. */
  readonly waitMs: number | undefined;
  /** Whether sessions under the grant are recorded; default true. */
  readonly recorded: boolean;
}

/** The parsed `ci:` section. */
export interface CiConfig {
  readonly issuers: readonly CiIssuerConfig[];
  readonly rules: readonly CiRuleConfig[];
  readonly rateLimit: { readonly perSubjectPerMinute: number; readonly perIssuerPerMinute: number };
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

const name = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'use lowercase letters, digits, . _ -');

/** HTTPS URL; plain HTTP only on loopback (tests, local development). No query, no fragment. */
const httpsUrl = z.string().superRefine((text, ctx) => {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    ctx.addIssue({ code: 'custom', message: 'not a URL' });
    return;
  }
  const loopbackHttp = url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname);
  if (url.protocol !== 'https:' && !loopbackHttp) {
    ctx.addIssue({ code: 'custom', message: 'must be an https:// URL (http:// only on 127.0.0.1)' });
  }
  if (url.search || url.hash || url.username || url.password) {
    ctx.addIssue({ code: 'custom', message: 'must not have a query, fragment or credentials' });
  }
});

const duration = z.string().transform((text, ctx) => {
  try {
    return parseDuration(text);
  } catch {
    ctx.addIssue({ code: 'custom', message: `"${text.slice(0, 32)}" is not a duration (like 30s, 15m, 1h)` });
    return z.NEVER;
  }
});

const algorithm = z.string().superRefine((alg, ctx) => {
  if (alg === 'none' || /^HS\d+$/i.test(alg)) {
    ctx.addIssue({ code: 'custom', message: `${alg} is never accepted for CI tokens: use RS256 or ES256` });
  } else if (!(ASYMMETRIC_ALGORITHMS as readonly string[]).includes(alg)) {
    ctx.addIssue({
      code: 'custom',
      message: `unknown algorithm ${alg}; one of ${ASYMMETRIC_ALGORITHMS.join(', ')}`,
    });
  }
});

const claimName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/, 'not a claim name');

const issuerSchema = z.strictObject({
  name,
  issuer: httpsUrl,
  audience: z.string().min(1).max(256),
  kind: z.enum(['github', 'gitlab', 'generic']),
  algorithms: z
    .array(algorithm)
    .min(1)
    .default([...CI_DEFAULTS.algorithms]),
  leeway: duration.optional(),
  max_token_age: duration.optional(),
  claims: z.record(claimName, claimName).default({}),
  jwks_uri: httpsUrl.optional(),
  jwks_refresh_min_interval: duration.optional(),
  jwks_cache_ttl: duration.optional(),
  jwks_timeout: duration.optional(),
});

const pattern = z.string().min(1).max(256);
const matchValue = z.union([pattern, z.array(pattern).min(1).max(32), z.boolean()]);

const ruleSchema = z.strictObject({
  name,
  issuer: name,
  match: z
    .record(claimName, matchValue)
    .refine((m) => Object.keys(m).length > 0, 'must name at least one claim'),
  target: z.string().min(1).max(128),
  level: z.string().min(1).max(64),
  max_duration: duration,
  approval: z.enum(['auto', 'required']).default('auto'),
  approvers: z
    .array(z.union([z.strictObject({ group: name }), z.strictObject({ user: name })]))
    .max(16)
    .default([]),
  approvals: z.number().int().min(1).max(10).default(1),
  wait: duration.optional(),
  recorded: z.boolean().default(true),
});

const positive = z.number().int().positive().max(1_000_000);

/** Zod schema of the `ci:` section; its output is a {@link CiConfig}. */
export const ciConfigSchema = z
  .strictObject({
    issuers: z.array(issuerSchema).min(1),
    rules: z.array(ruleSchema).default([]),
    rate_limit: z
      .strictObject({ per_subject: positive.optional(), per_issuer: positive.optional() })
      .default({}),
  })
  .superRefine((ci, ctx) => {
    const issuers = new Map<string, (typeof ci.issuers)[number]>();
    const urls = new Set<string>();
    ci.issuers.forEach((issuer, i) => {
      if (issuers.has(issuer.name)) {
        ctx.addIssue({
          code: 'custom',
          path: ['issuers', i, 'name'],
          message: `duplicate issuer ${issuer.name}`,
        });
      }
      if (urls.has(issuer.issuer)) {
        ctx.addIssue({ code: 'custom', path: ['issuers', i, 'issuer'], message: `issuer URL listed twice` });
      }
      issuers.set(issuer.name, issuer);
      urls.add(issuer.issuer);
    });
    const rules = new Set<string>();
    ci.rules.forEach((rule, i) => {
      if (rules.has(rule.name)) {
        ctx.addIssue({ code: 'custom', path: ['rules', i, 'name'], message: `duplicate rule ${rule.name}` });
      }
      rules.add(rule.name);
      const issuer = issuers.get(rule.issuer);
      if (!issuer) {
        ctx.addIssue({
          code: 'custom',
          path: ['rules', i, 'issuer'],
          message: `no issuer named ${rule.issuer}`,
        });
        return;
      }
      if (rule.approval === 'required' && rule.approvers.length === 0) {
        ctx.addIssue({
          code: 'custom',
          path: ['rules', i, 'approvers'],
          message: 'approval: required needs approvers (a {group: name} or {user: id} list)',
        });
      }
      checkMatchKeys(issuer.kind, Object.keys(issuer.claims), Object.keys(rule.match), (key, message) =>
        ctx.addIssue({ code: 'custom', path: ['rules', i, 'match', ...(key ? [key] : [])], message }),
      );
    });
  })
  .transform(
    (ci): CiConfig => ({
      issuers: ci.issuers.map((i) => ({
        name: i.name,
        issuer: i.issuer,
        audience: i.audience,
        kind: i.kind,
        algorithms: [...new Set(i.algorithms)] as CiAlgorithm[],
        leewayMs: i.leeway ?? CI_DEFAULTS.leewayMs,
        maxTokenAgeMs: i.max_token_age ?? CI_DEFAULTS.maxTokenAgeMs,
        claims: i.claims,
        jwksUri: i.jwks_uri,
        jwksRefreshMinIntervalMs: i.jwks_refresh_min_interval ?? CI_DEFAULTS.jwksRefreshMinIntervalMs,
        jwksCacheTtlMs: i.jwks_cache_ttl ?? CI_DEFAULTS.jwksCacheTtlMs,
        jwksTimeoutMs: i.jwks_timeout ?? CI_DEFAULTS.jwksTimeoutMs,
      })),
      rules: ci.rules.map((r) => ({
        name: r.name,
        issuer: r.issuer,
        match: Object.fromEntries(
          Object.entries(r.match).map(([key, value]) => [key, compileMatcher(value)]),
        ),
        target: r.target,
        level: r.level,
        maxDurationMs: r.max_duration,
        approval: r.approval,
        approvers: r.approvers,
        approvals: r.approvals,
        waitMs: r.wait,
        recorded: r.recorded,
      })),
      rateLimit: {
        perSubjectPerMinute: ci.rate_limit.per_subject ?? CI_DEFAULTS.perSubjectPerMinute,
        perIssuerPerMinute: ci.rate_limit.per_issuer ?? CI_DEFAULTS.perIssuerPerMinute,
      },
    }),
  );

function checkMatchKeys(
  kind: CiIssuerKind,
  mapped: readonly string[],
  keys: readonly string[],
  report: (key: string | undefined, message: string) => void,
): void {
  const known: readonly string[] =
    kind === 'github' ? GITHUB_CLAIMS : kind === 'gitlab' ? GITLAB_CLAIMS : ['sub'];
  for (const key of keys) {
    if (!known.includes(key) && !mapped.includes(key)) {
      report(
        key,
        `unknown ${kind} claim ${key}${kind === 'generic' ? ' (map it under the issuer claims:)' : ''}`,
      );
    }
  }
  if (kind !== 'generic' && !keys.some((key) => IDENTIFYING_CLAIMS[kind].includes(key))) {
    report(
      undefined,
      `must match one of ${IDENTIFYING_CLAIMS[kind].join(', ')}, or it accepts every repository`,
    );
  }
}

function compileMatcher(value: string | string[] | boolean): CiMatcher {
  if (typeof value === 'boolean') return { kind: 'boolean', value };
  return { kind: 'globs', globs: (Array.isArray(value) ? value : [value]).map(compileGlob) };
}

/**
 * Validates the `ci:` section. Throws `ConfigError` (`ERR_CONFIG_INVALID`) naming the first
 * offending key, such as `ci.issuers.0.algorithms.1: HS256 is never accepted ...`.
 */
export function parseCiConfig(input: unknown, path = 'ci'): CiConfig {
  const result = ciConfigSchema.safeParse(input);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const where = [path, ...issue.path.map(String)].filter(Boolean).join('.');
  throw new ConfigError(where, issue.message);
}
