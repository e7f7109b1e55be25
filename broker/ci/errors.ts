/**
 * Errors of the CI OIDC exchange. Every refusal has its own stable `code`; the message is fixed
 * and generic so a caller probing with forged tokens learns nothing it did not send, while
 * `details` carries the facts (claim values, limits) meant for the audit log only. So unlike the
 * other families, a CI error takes no message: its code picks one from a fixed table.
 */
import { WardenError, type WardenErrorOptions } from '../../lib/errors.ts';

/** Every code a CI refusal can carry. */
export const CI_ERROR_CODES = [
  'ERR_CI_TOKEN_TOO_LARGE',
  'ERR_CI_TOKEN_MALFORMED',
  'ERR_CI_ALG_NOT_ALLOWED',
  'ERR_CI_ISSUER_UNKNOWN',
  'ERR_CI_AUDIENCE_MISSING',
  'ERR_CI_AUDIENCE_MISMATCH',
  'ERR_CI_TOKEN_EXPIRED',
  'ERR_CI_TOKEN_NOT_YET_VALID',
  'ERR_CI_TOKEN_TOO_OLD',
  'ERR_CI_CLAIM_MISSING',
  'ERR_CI_SIGNATURE_INVALID',
  'ERR_CI_KEY_UNKNOWN',
  'ERR_CI_JWKS_UNAVAILABLE',
  'ERR_CI_DISCOVERY_INVALID',
  'ERR_CI_TOKEN_REPLAYED',
  'ERR_CI_REPLAY_CACHE_FULL',
  'ERR_CI_NO_RULE',
  'ERR_CI_REF_NOT_ALLOWED',
  'ERR_CI_DURATION_TOO_LONG',
  'ERR_CI_REQUEST_INVALID',
  'ERR_CI_RATE_LIMITED',
  'ERR_CI_TOKEN_MISSING',
  'ERR_CI_BODY_TOO_LARGE',
  'ERR_CI_PENDING_NOT_FOUND',
  'ERR_CI_PENDING_REFUSED',
  'ERR_CI_ALREADY_COLLECTED',
  'ERR_CI_GRANT_FAILED',
  'ERR_CI_UNAVAILABLE',
  'ERR_CI_NOT_CONFIGURED',
] as const;

export type CiErrorCode = (typeof CI_ERROR_CODES)[number];

const MESSAGES: Record<CiErrorCode, string> = {
  ERR_CI_TOKEN_TOO_LARGE: 'CI token refused: too large',
  ERR_CI_TOKEN_MALFORMED: 'CI token refused: malformed',
  ERR_CI_ALG_NOT_ALLOWED: 'CI token refused: algorithm not allowed',
  ERR_CI_ISSUER_UNKNOWN: 'CI token refused: issuer not trusted',
  ERR_CI_AUDIENCE_MISSING: 'CI token refused: audience missing',
  ERR_CI_AUDIENCE_MISMATCH: 'CI token refused: audience not accepted',
  ERR_CI_TOKEN_EXPIRED: 'CI token refused: expired',
  ERR_CI_TOKEN_NOT_YET_VALID: 'CI token refused: not yet valid',
  ERR_CI_TOKEN_TOO_OLD: 'CI token refused: issued too long ago',
  ERR_CI_CLAIM_MISSING: 'CI token refused: a required claim is missing',
  ERR_CI_SIGNATURE_INVALID: 'CI token refused: signature invalid',
  ERR_CI_KEY_UNKNOWN: 'CI token refused: signing key unknown',
  ERR_CI_JWKS_UNAVAILABLE: 'CI token refused: issuer keys unavailable',
  ERR_CI_DISCOVERY_INVALID: 'CI token refused: issuer discovery document invalid',
  ERR_CI_TOKEN_REPLAYED: 'CI token refused: already used',
  ERR_CI_REPLAY_CACHE_FULL: 'CI token refused: too many tokens in flight',
  ERR_CI_NO_RULE: 'no CI rule allows this job',
  ERR_CI_REF_NOT_ALLOWED: 'a CI rule matches this job but not its ref',
  ERR_CI_DURATION_TOO_LONG: 'requested duration is longer than the CI rule allows',
  ERR_CI_REQUEST_INVALID: 'CI exchange request invalid',
  ERR_CI_RATE_LIMITED: 'too many CI exchanges, retry later',
  ERR_CI_TOKEN_MISSING: 'CI token required: send it as "Authorization: Bearer <jwt>"',
  ERR_CI_BODY_TOO_LARGE: 'CI exchange request body too large',
  ERR_CI_PENDING_NOT_FOUND: 'no pending CI exchange with this id for this job',
  ERR_CI_PENDING_REFUSED: 'the CI exchange was denied, cancelled or timed out',
  ERR_CI_ALREADY_COLLECTED: 'the credential of this CI exchange was already collected',
  ERR_CI_GRANT_FAILED: 'the credential could not be minted',
  ERR_CI_UNAVAILABLE: 'CI exchange temporarily unavailable',
  ERR_CI_NOT_CONFIGURED: 'this Warden does not exchange CI tokens: its configuration has no ci: section',
};

/**
 * Base class of every CI refusal. `details` holds facts for the audit log (claim values, limits);
 * never key material, never the token.
 */
export class CiError extends WardenError<CiErrorCode> {
  constructor(code: CiErrorCode, options?: WardenErrorOptions) {
    super(code, MESSAGES[code], options);
  }
}

/** The token was refused: shape, algorithm, issuer, audience, time claims, signature or replay. */
export class CiTokenError extends CiError {}

/** The issuer's keys could not be obtained or did not contain the token's key. */
export class CiJwksError extends CiError {}

/** The token is valid but no CI rule grants what was asked. */
export class CiRuleError extends CiError {}

/** The exchange itself failed or was refused after the rule matched (pending, collection, minting). */
export class CiExchangeError extends CiError {}

/** The subject or issuer exceeded its exchange budget; `details.retryAfterMs` says when to retry. */
export class CiRateLimitError extends CiError {
  constructor(details: { scope: 'subject' | 'issuer'; key: string; retryAfterMs: number }) {
    super('ERR_CI_RATE_LIMITED', { details });
  }
}

/** Narrows an unknown error to a CI refusal. */
export function isCiError(error: unknown): error is CiError {
  return error instanceof CiError;
}
