/**
 * What a CI job sends to `POST /v1/ci/exchange`, checked before anything is believed: the bearer
 * token's shape and the JSON body `{target, level, ttl | duration}`. Pure: strings in, values out.
 */
import { parseDuration } from '../config/duration.ts';
import { CiRuleError, CiTokenError } from './errors.ts';
import type { CiExchangeRequest } from './rules.ts';

/** Largest exchange body accepted, in bytes: 4 KiB (a real one is under 100 bytes). */
export const MAX_CI_BODY_BYTES = 4 * 1024;

const BODY_KEYS = new Set(['target', 'level', 'ttl', 'duration']);
const NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const BEARER = /^Bearer +([^\s]+)$/i;

/**
 * Extracts the JWT of an `Authorization: Bearer <jwt>` header. Throws `ERR_CI_TOKEN_MISSING` when
 * there is none; the token's own shape is checked by the verifier.
 */
export function parseBearerToken(header: string | undefined): string {
  if (header === undefined || header === '') throw new CiTokenError('ERR_CI_TOKEN_MISSING');
  const match = BEARER.exec(header);
  if (!match)
    throw new CiTokenError('ERR_CI_TOKEN_MALFORMED', { details: { reason: 'not a Bearer authorization' } });
  return match[1]!;
}

/**
 * Validates the exchange body. `ttl` and `duration` are synonyms (`15m`); when both are absent the
 * rule's maximum applies. Throws `ERR_CI_REQUEST_INVALID` naming the problem.
 */
export function parseCiExchangeBody(body: unknown): CiExchangeRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw invalid('the body must be a JSON object');
  }
  const fields = body as Record<string, unknown>;
  const unknown = Object.keys(fields).find((key) => !BODY_KEYS.has(key));
  if (unknown !== undefined) throw invalid(`unknown field "${unknown.slice(0, 32)}"`);
  const target = requireName(fields, 'target');
  const level = requireName(fields, 'level');
  if (fields.ttl !== undefined && fields.duration !== undefined) {
    throw invalid('give ttl or duration, not both');
  }
  const text = fields.ttl ?? fields.duration;
  if (text === undefined) return { target, level };
  if (typeof text !== 'string' || text.length > 32) throw invalid('ttl must be a duration like 15m');
  try {
    return { target, level, durationMs: parseDuration(text) };
  } catch {
    throw invalid('ttl must be a duration like 15m');
  }
}

function requireName(fields: Record<string, unknown>, key: 'target' | 'level'): string {
  const value = fields[key];
  if (typeof value !== 'string' || !NAME.test(value)) {
    throw invalid(`"${key}" must be a name of lower-case letters, digits, "-" or "_"`);
  }
  return value;
}

function invalid(reason: string): CiRuleError {
  return new CiRuleError('ERR_CI_REQUEST_INVALID', { details: { reason } });
}

/** Parses a raw body (already size-capped by the caller) as JSON; `ERR_CI_REQUEST_INVALID` if it is not. */
export function parseJsonBody(bytes: Buffer): unknown {
  if (bytes.length > MAX_CI_BODY_BYTES) {
    throw new CiRuleError('ERR_CI_BODY_TOO_LARGE', { details: { maxBytes: MAX_CI_BODY_BYTES } });
  }
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    throw invalid('the body is not valid JSON');
  }
}
