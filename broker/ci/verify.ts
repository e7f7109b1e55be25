/**
 * Verification of CI OIDC tokens (compact JWS). The checks run cheapest and least trusting first:
 * size cap before any parsing, algorithm allow-list (never `none`, never HMAC, whatever the issuer
 * config says) before any key lookup, signature before any claim is believed, and the one-time
 * `jti` record last, so a refused token never burns its id.
 */
import { type CryptoKey, compactVerify } from 'jose';
import type { CiAlgorithm, CiConfig, CiIssuerConfig, CiIssuerKind } from './config.ts';
import { CiTokenError } from './errors.ts';
import { type CiFetch, type CiKeyResolver, CiKeyStore, type JwksStats } from './jwks.ts';
import { MemoryReplayCache, type ReplayCache } from './replay-cache.ts';

/** Largest compact JWS accepted, in bytes: 16 KiB (real CI tokens are 1-2 KiB). */
export const MAX_CI_TOKEN_BYTES = 16 * 1024;

const MAX_JTI_LENGTH = 256;

/** A scalar claim value as rules see it. */
export type CiClaimValue = string | number | boolean;

/** A token that passed every check. */
export interface VerifiedCiToken {
  /** `iss` as sent (the configured issuer URL). */
  readonly issuer: string;
  /** Configured name of the issuer; rules refer to it. */
  readonly issuerName: string;
  readonly kind: CiIssuerKind;
  /** `sub`. */
  readonly subject: string;
  /** The configured audience the token carried. */
  readonly audience: string;
  readonly jti: string;
  readonly alg: CiAlgorithm;
  readonly kid: string | undefined;
  /** `iat`, `nbf` and `exp` in epoch milliseconds. */
  readonly issuedAtMs: number;
  readonly notBeforeMs: number | undefined;
  readonly expiresAtMs: number;
  /** Scalar claims under our names (issuer `claims:` map applied), for rule matching. */
  readonly claims: Readonly<Record<string, CiClaimValue>>;
  /** The verified payload as sent. */
  readonly payload: Readonly<Record<string, unknown>>;
}

/** What {@link verifyCiToken} checks against. */
export interface VerifyCiTokenContext {
  /** Current time: epoch milliseconds or a Date. */
  readonly now: number | Date;
  readonly issuers: readonly CiIssuerConfig[];
  readonly keys: CiKeyResolver;
  readonly replay: ReplayCache;
  /** Default {@link MAX_CI_TOKEN_BYTES}. */
  readonly maxTokenBytes?: number;
}

const SEGMENT = /^[A-Za-z0-9_-]*$/;

/**
 * Verifies a CI token and returns its facts, or throws a `CiError` whose code names the
 * first failed check (`ERR_CI_TOKEN_MALFORMED`, `ERR_CI_ALG_NOT_ALLOWED`, ...).
 */
export async function verifyCiToken(jwt: unknown, context: VerifyCiTokenContext): Promise<VerifiedCiToken> {
  const nowMs = typeof context.now === 'number' ? context.now : context.now.getTime();
  const maxBytes = context.maxTokenBytes ?? MAX_CI_TOKEN_BYTES;
  if (typeof jwt !== 'string')
    throw new CiTokenError('ERR_CI_TOKEN_MALFORMED', { details: { reason: 'not a string' } });
  // Characters, not bytes: a valid token is ASCII, and anything else is refused below anyway.
  if (jwt.length > maxBytes)
    throw new CiTokenError('ERR_CI_TOKEN_TOO_LARGE', { details: { length: jwt.length, maxBytes } });

  const { header, payload } = decodeUnverified(jwt);
  const alg = header.alg;
  if (typeof alg !== 'string' || alg.toLowerCase() === 'none' || /^HS/i.test(alg)) {
    throw new CiTokenError('ERR_CI_ALG_NOT_ALLOWED', { details: { alg: String(alg).slice(0, 16) } });
  }
  const issuer = context.issuers.find((i) => i.issuer === payload.iss);
  if (!issuer)
    throw new CiTokenError('ERR_CI_ISSUER_UNKNOWN', { details: { iss: String(payload.iss).slice(0, 256) } });
  if (!(issuer.algorithms as readonly string[]).includes(alg)) {
    throw new CiTokenError('ERR_CI_ALG_NOT_ALLOWED', {
      details: { alg: alg.slice(0, 16), issuer: issuer.name },
    });
  }
  const kid = header.kid;
  if (kid !== undefined && typeof kid !== 'string')
    throw new CiTokenError('ERR_CI_TOKEN_MALFORMED', { details: { reason: 'kid' } });

  const key = await context.keys.getKey(issuer, { alg: alg as CiAlgorithm, kid }, nowMs);
  await checkSignature(jwt, key, alg);

  const times = checkTimes(payload, issuer, nowMs);
  const audience = checkAudience(payload.aud, issuer);
  const subject = requireString(payload, 'sub', 1024);
  const jti = requireString(payload, 'jti', MAX_JTI_LENGTH);

  // Accepted until exp or iat + max age, whichever is first, plus the leeway.
  const acceptableUntil =
    Math.min(times.expiresAtMs, times.issuedAtMs + issuer.maxTokenAgeMs) + issuer.leewayMs;
  const firstUse = await context.replay.markUsed(`${issuer.issuer}\u0000${jti}`, acceptableUntil, nowMs);
  if (!firstUse)
    throw new CiTokenError('ERR_CI_TOKEN_REPLAYED', { details: { issuer: issuer.name, sub: subject, jti } });

  return {
    issuer: issuer.issuer,
    issuerName: issuer.name,
    kind: issuer.kind,
    subject,
    audience,
    jti,
    alg: alg as CiAlgorithm,
    kid,
    ...times,
    claims: normaliseClaims(payload, issuer),
    payload,
  };
}

interface Decoded {
  header: Record<string, unknown>;
  payload: Record<string, unknown>;
}

function decodeUnverified(jwt: string): Decoded {
  const parts = jwt.split('.');
  if (parts.length !== 3 || !parts.every((p) => SEGMENT.test(p)) || !parts[0] || !parts[1]) {
    throw new CiTokenError('ERR_CI_TOKEN_MALFORMED', { details: { reason: 'not a compact JWS' } });
  }
  const header = decodeJsonSegment(parts[0], 'header');
  if (header.crit !== undefined || header.b64 !== undefined) {
    // No critical extension is understood here, so RFC 7515 §4.1.11 says refuse.
    throw new CiTokenError('ERR_CI_TOKEN_MALFORMED', { details: { reason: 'crit' } });
  }
  return { header, payload: decodeJsonSegment(parts[1], 'payload') };
}

function decodeJsonSegment(segment: string, what: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
    if (typeof value === 'object' && value !== null && !Array.isArray(value))
      return value as Record<string, unknown>;
  } catch {
    // reported below
  }
  throw new CiTokenError('ERR_CI_TOKEN_MALFORMED', { details: { reason: `${what} is not a JSON object` } });
}

async function checkSignature(jwt: string, key: CryptoKey, alg: string): Promise<void> {
  try {
    await compactVerify(jwt, key, { algorithms: [alg] });
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    throw new CiTokenError(
      code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED'
        ? 'ERR_CI_SIGNATURE_INVALID'
        : 'ERR_CI_TOKEN_MALFORMED',
      { details: { reason: typeof code === 'string' ? code : 'verification failed' }, cause: error },
    );
  }
}

function checkTimes(
  payload: Record<string, unknown>,
  issuer: CiIssuerConfig,
  nowMs: number,
): { issuedAtMs: number; notBeforeMs: number | undefined; expiresAtMs: number } {
  const exp = numericDate(payload, 'exp', true)!;
  const iat = numericDate(payload, 'iat', true)!;
  const nbf = numericDate(payload, 'nbf', false);
  const leeway = issuer.leewayMs;
  if (exp + leeway <= nowMs)
    throw new CiTokenError('ERR_CI_TOKEN_EXPIRED', { details: { exp: exp / 1000, now: nowMs / 1000 } });
  if ((nbf !== undefined && nbf > nowMs + leeway) || iat > nowMs + leeway) {
    throw new CiTokenError('ERR_CI_TOKEN_NOT_YET_VALID', {
      details: {
        nbf: nbf && nbf / 1000,
        iat: iat / 1000,
        now: nowMs / 1000,
      },
    });
  }
  if (nowMs - iat > issuer.maxTokenAgeMs + leeway) {
    throw new CiTokenError('ERR_CI_TOKEN_TOO_OLD', {
      details: { iat: iat / 1000, maxAgeMs: issuer.maxTokenAgeMs },
    });
  }
  return { issuedAtMs: iat, notBeforeMs: nbf, expiresAtMs: exp };
}

function numericDate(payload: Record<string, unknown>, claim: string, required: boolean): number | undefined {
  const value = payload[claim];
  if (value === undefined && !required) return undefined;
  if (value === undefined) throw new CiTokenError('ERR_CI_CLAIM_MISSING', { details: { claim } });
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new CiTokenError('ERR_CI_TOKEN_MALFORMED', {
      details: { reason: `${claim} is not a NumericDate` },
    });
  }
  return value * 1000;
}

function checkAudience(aud: unknown, issuer: CiIssuerConfig): string {
  if (aud === undefined || aud === '' || (Array.isArray(aud) && aud.length === 0)) {
    throw new CiTokenError('ERR_CI_AUDIENCE_MISSING', { details: { issuer: issuer.name } });
  }
  const list = Array.isArray(aud) ? aud : [aud];
  if (!list.every((a) => typeof a === 'string'))
    throw new CiTokenError('ERR_CI_TOKEN_MALFORMED', { details: { reason: 'aud' } });
  if (!list.includes(issuer.audience)) {
    throw new CiTokenError('ERR_CI_AUDIENCE_MISMATCH', {
      details: { aud: list.slice(0, 8), expected: issuer.audience },
    });
  }
  return issuer.audience;
}

function requireString(payload: Record<string, unknown>, claim: string, maxLength: number): string {
  const value = payload[claim];
  if (value === undefined || value === '')
    throw new CiTokenError('ERR_CI_CLAIM_MISSING', { details: { claim } });
  if (typeof value !== 'string' || value.length > maxLength) {
    throw new CiTokenError('ERR_CI_TOKEN_MALFORMED', {
      details: {
        reason: `${claim} is not a string of at most ${maxLength}`,
      },
    });
  }
  return value;
}

function isScalar(value: unknown): value is CiClaimValue {
  return (
    typeof value === 'string' ||
    typeof value === 'boolean' ||
    (typeof value === 'number' && Number.isFinite(value))
  );
}

function normaliseClaims(
  payload: Record<string, unknown>,
  issuer: CiIssuerConfig,
): Record<string, CiClaimValue> {
  const claims: Record<string, CiClaimValue> = Object.create(null);
  if (issuer.kind !== 'generic') {
    for (const [name, value] of Object.entries(payload)) if (isScalar(value)) claims[name] = value;
  } else {
    claims.sub = payload.sub as string;
  }
  for (const [ours, theirs] of Object.entries(issuer.claims)) {
    const value = payload[theirs];
    if (isScalar(value)) claims[ours] = value;
  }
  return claims;
}

/** A verifier bound to a configuration: its JWKS caches and replay cache live as long as it. */
export interface CiVerifier {
  /** {@link verifyCiToken} with this configuration's issuers, keys and replay cache. */
  verifyCiToken(jwt: unknown, options: { now: number | Date }): Promise<VerifiedCiToken>;
  /** JWKS network counters per issuer name. */
  jwksStats(): Record<string, JwksStats>;
}

/** Dependencies of {@link createCiVerifier}; each has a production default. */
export interface CiVerifierDeps {
  /** Default: the global `fetch`. */
  readonly fetch?: CiFetch;
  /** Default: a {@link MemoryReplayCache}. */
  readonly replay?: ReplayCache;
  /** Default: {@link MAX_CI_TOKEN_BYTES}. */
  readonly maxTokenBytes?: number;
}

/** Wires {@link verifyCiToken} to the configured issuers' remote JWKS. */
export function createCiVerifier(config: CiConfig, deps: CiVerifierDeps = {}): CiVerifier {
  const keys = new CiKeyStore(config.issuers, deps.fetch ? { fetch: deps.fetch } : {});
  const replay = deps.replay ?? new MemoryReplayCache();
  return {
    verifyCiToken: (jwt, { now }) =>
      verifyCiToken(jwt, {
        now,
        issuers: config.issuers,
        keys,
        replay,
        ...(deps.maxTokenBytes ? { maxTokenBytes: deps.maxTokenBytes } : {}),
      }),
    jwksStats: () => keys.stats(),
  };
}
