/**
 * HTTP edge of the CI exchange: `POST /v1/ci/exchange` and `GET /v1/ci/exchange/<id>`. These routes
 * authenticate with the job's OIDC token instead of an API token, cap the body before buffering it,
 * and translate CI error codes to HTTP statuses (401 token, 403 rule, 429 rate, 503 JWKS).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { runAsCaller } from '../audit/caller.ts';
import type { CiErrorCode } from '../ci/errors.ts';
import { type CiError, CiRuleError, isCiError } from '../ci/errors.ts';
import type { CiExchange, CiExchangeOutcome } from '../ci/exchange.ts';
import { MAX_CI_BODY_BYTES, parseJsonBody } from '../ci/exchange-request.ts';
import type { Logger } from '../log.ts';
import { type PublicRoute, send, toErrorResponse } from './server.ts';

/** HTTP status of every CI refusal. */
export const CI_STATUS_BY_CODE: Readonly<Record<CiErrorCode, number>> = {
  ERR_CI_TOKEN_TOO_LARGE: 401,
  ERR_CI_TOKEN_MALFORMED: 401,
  ERR_CI_ALG_NOT_ALLOWED: 401,
  ERR_CI_ISSUER_UNKNOWN: 401,
  ERR_CI_AUDIENCE_MISSING: 401,
  ERR_CI_AUDIENCE_MISMATCH: 401,
  ERR_CI_TOKEN_EXPIRED: 401,
  ERR_CI_TOKEN_NOT_YET_VALID: 401,
  ERR_CI_TOKEN_TOO_OLD: 401,
  ERR_CI_CLAIM_MISSING: 401,
  ERR_CI_SIGNATURE_INVALID: 401,
  ERR_CI_KEY_UNKNOWN: 401,
  ERR_CI_TOKEN_REPLAYED: 401,
  ERR_CI_TOKEN_MISSING: 401,
  ERR_CI_JWKS_UNAVAILABLE: 503,
  ERR_CI_DISCOVERY_INVALID: 503,
  ERR_CI_REPLAY_CACHE_FULL: 503,
  ERR_CI_UNAVAILABLE: 503,
  ERR_CI_NOT_CONFIGURED: 404,
  ERR_CI_NO_RULE: 403,
  ERR_CI_REF_NOT_ALLOWED: 403,
  ERR_CI_DURATION_TOO_LONG: 403,
  ERR_CI_PENDING_REFUSED: 403,
  ERR_CI_REQUEST_INVALID: 400,
  ERR_CI_BODY_TOO_LARGE: 413,
  ERR_CI_RATE_LIMITED: 429,
  ERR_CI_PENDING_NOT_FOUND: 404,
  ERR_CI_ALREADY_COLLECTED: 409,
  ERR_CI_GRANT_FAILED: 502,
};

const ID = /^\/v1\/ci\/exchange\/([a-z0-9]{1,64})$/;

/** `via` of the CI routes' audit entries: a CI job's OIDC token. */
const CI_VIA = 'oidc';

/** The two CI routes, for `ApiServer`'s `publicRoutes`. */
export function createCiRoutes(exchange: CiExchange, logger: Logger): PublicRoute[] {
  return [
    {
      method: 'POST',
      pattern: /^\/v1\/ci\/exchange$/,
      async handle(req, res) {
        const read = await readCappedBody(req);
        // The job's OIDC token made the call; the entries' actor names the issuer and subject.
        await answer(res, logger, () =>
          runAsCaller(CI_VIA, () => exchange.exchange({ authorization: req.headers.authorization, ...read })),
        );
      },
    },
    {
      method: 'GET',
      pattern: ID,
      async handle(req, res, params) {
        await answer(res, logger, () =>
          runAsCaller(CI_VIA, () =>
            exchange.collect({ authorization: req.headers.authorization }, params[0]!),
          ),
        );
      },
    },
  ];
}

/** Reads at most {@link MAX_CI_BODY_BYTES}; a larger or non-JSON body becomes a `bodyError`. */
export function readCappedBody(req: IncomingMessage): Promise<{ body?: unknown; bodyError?: CiError }> {
  return new Promise((resolve) => {
    const tooLarge = () =>
      new CiRuleError('ERR_CI_BODY_TOO_LARGE', { details: { maxBytes: MAX_CI_BODY_BYTES } });
    if (Number(req.headers['content-length'] ?? 0) > MAX_CI_BODY_BYTES) {
      req.resume();
      resolve({ bodyError: tooLarge() });
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (value: { body?: unknown; bodyError?: CiError }) => {
      if (done) return;
      done = true;
      resolve(value);
    };
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_CI_BODY_BYTES) {
        // Stop buffering; the rest is read and dropped so the answer can still be sent.
        chunks.length = 0;
        req.removeAllListeners('data');
        req.resume();
        finish({ bodyError: tooLarge() });
        return;
      }
      chunks.push(chunk);
    });
    req.on('error', () => finish({ bodyError: tooLarge() }));
    req.on('end', () => {
      try {
        finish({ body: parseJsonBody(Buffer.concat(chunks)) });
      } catch (error) {
        finish({ bodyError: error as CiError });
      }
    });
  });
}

async function answer(
  res: ServerResponse,
  logger: Logger,
  call: () => Promise<CiExchangeOutcome>,
): Promise<void> {
  let outcome: CiExchangeOutcome;
  try {
    outcome = await call();
  } catch (error) {
    sendError(res, logger, error);
    return;
  }
  if (outcome.status === 'pending') {
    const seconds = Math.max(1, Math.ceil(outcome.retryAfterMs / 1000));
    res.setHeader('retry-after', String(seconds));
    send(res, 202, {
      pending: outcome.requestId,
      poll: `/v1/ci/exchange/${outcome.requestId}`,
      retry_after: seconds,
    });
    return;
  }
  const c = outcome.connection;
  send(res, 200, {
    request_id: outcome.requestId,
    uri: c.uri,
    host: c.host,
    port: c.port,
    database: c.database,
    user: c.user,
    password: c.password,
    expires_at: new Date(c.expiresAt).toISOString(),
    route: c.route,
    recorded: c.recorded,
  });
}

/** CI refusals carry their fixed message only: details stay in the audit log. */
function sendError(res: ServerResponse, logger: Logger, error: unknown): void {
  if (isCiError(error)) {
    const status = CI_STATUS_BY_CODE[error.code];
    const retryAfterMs = error.details.retryAfterMs;
    if (status === 429 && typeof retryAfterMs === 'number') {
      res.setHeader('retry-after', String(Math.max(1, Math.ceil(retryAfterMs / 1000))));
    }
    send(res, status, { error: { code: error.code, message: error.message } });
    return;
  }
  const { status, body } = toErrorResponse(error);
  if (status >= 500) logger.error({ err: error }, 'CI exchange failed');
  send(res, status, { error: { code: body.error.code, message: body.error.message } });
}
