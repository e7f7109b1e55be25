/**
 * Errors raised by the broker. Every error carries a stable `code` that callers branch on; the
 * message is for people. Edges (HTTP API, chat replies, CLI exit codes) translate these; the
 * core never formats transport-specific errors.
 */
import { formatConfigMessage, WardenError } from '../lib/errors.ts';

/** Every code a broker error can carry. */
export const BROKER_ERROR_CODES = [
  'ERR_CONFIG_INVALID',
  'ERR_CONFIG_SECRET',
  'ERR_DURATION_INVALID',
  'ERR_POLICY_DENIED',
  'ERR_POLICY_NO_APPROVER',
  'ERR_POLICY_OUTSIDE_WINDOW',
  'ERR_REQUEST_INVALID',
  'ERR_REQUEST_REASON',
  'ERR_REQUEST_DURATION',
  'ERR_TARGET_UNKNOWN',
  'ERR_LEVEL_UNKNOWN',
  'ERR_USER_UNKNOWN',
  'ERR_NOT_FOUND',
  'ERR_STATE_CONFLICT',
  'ERR_APPROVAL_SELF',
  'ERR_APPROVAL_NOT_ELIGIBLE',
  'ERR_APPROVAL_DUPLICATE',
  'ERR_FORBIDDEN',
  'ERR_PROVIDER_FAILED',
  'ERR_AUDIT_TAMPERED',
  'ERR_AUTH_REQUIRED',
  'ERR_AUTH_INVALID',
  'ERR_API_BAD_REQUEST',
  'ERR_SSH_GRANT_NOT_SSH',
  'ERR_SSH_KEY_INVALID',
  'ERR_STORE_FAILED',
  'ERR_STORE_MISSING',
  'ERR_CREDENTIAL_NOT_REQUESTER',
  'ERR_CREDENTIAL_NOT_REISSUABLE',
  'ERR_VAULT_UNREACHABLE',
  'ERR_VAULT_SEALED',
  'ERR_VAULT_DENIED',
  'ERR_VAULT_NOT_FOUND',
  'ERR_VAULT_REFUSED',
  'ERR_VAULT_BAD_RESPONSE',
] as const;

export type BrokerErrorCode = (typeof BROKER_ERROR_CODES)[number];

/** Base class of every broker error. */
export class BrokerError extends WardenError<BrokerErrorCode> {}

/** The configuration file is invalid; `path` names the offending key (`targets.prod-db.levels.write`). */
export class ConfigError extends BrokerError {
  readonly path: string;
  constructor(path: string, message: string, options: ErrorOptions = {}) {
    super('ERR_CONFIG_INVALID', formatConfigMessage(path, message), {
      ...options,
      details: { path },
      configPath: path,
    });
    this.path = path;
  }
}

/** A secret reference (`env:` or `file:`) could not be resolved. */
export class SecretError extends BrokerError {
  constructor(path: string, message: string) {
    super('ERR_CONFIG_SECRET', formatConfigMessage(path, message), { details: { path }, configPath: path });
  }
}

/** Input from a user or caller that cannot be accepted as it is. */
export class InvalidInputError extends BrokerError {}

/** The policy refuses the request, or nobody could approve it. */
export class PolicyDeniedError extends BrokerError {}

/** The id does not name a request or grant. */
export class NotFoundError extends BrokerError {
  constructor(what: string, id: string) {
    super('ERR_NOT_FOUND', `${what} ${id} does not exist`, { details: { id } });
  }
}

/** The operation does not apply to the request's current state (approve after deny, ...). */
export class StateConflictError extends BrokerError {
  constructor(
    message: string,
    details: Record<string, unknown> = {},
    code:
      | 'ERR_STATE_CONFLICT'
      | 'ERR_APPROVAL_DUPLICATE'
      | 'ERR_CREDENTIAL_NOT_REISSUABLE' = 'ERR_STATE_CONFLICT',
  ) {
    super(code, message, { details });
  }
}

/** The caller may not perform this operation on this request. */
export class ForbiddenError extends BrokerError {}

/** A credential provider failed (mint or revoke). The message never holds a secret. */
export class ProviderError extends BrokerError {
  constructor(message: string, options?: ErrorOptions) {
    super('ERR_PROVIDER_FAILED', message, options);
  }
}

/** The Vault codes of {@link VaultError}. */
export type VaultErrorCode = Extract<BrokerErrorCode, `ERR_VAULT_${string}`>;

/**
 * HashiCorp Vault answered with a failure, or not at all: unreachable, sealed (503), permission
 * denied (403), path or role not found (404), the request refused (400), or an answer that is not
 * what Vault documents. The message names what to fix; it never holds a token or a secret.
 */
export class VaultError extends BrokerError {
  /** The HTTP status Vault answered with, when it answered. */
  readonly status: number | undefined;
  constructor(code: VaultErrorCode, message: string, options: ErrorOptions & { status?: number } = {}) {
    const { status, ...rest } = options;
    super(code, message, { ...rest, details: status === undefined ? {} : { status } });
    this.status = status;
  }
}

/**
 * Authentication to the broker API failed. The message is fixed and generic on purpose: which
 * token was wrong, or how, is never told to the caller.
 */
export class AuthError extends BrokerError {
  constructor(code: 'ERR_AUTH_REQUIRED' | 'ERR_AUTH_INVALID') {
    super(code, code === 'ERR_AUTH_REQUIRED' ? 'authentication required' : 'invalid credentials');
  }
}

/** A command that reads the store was pointed at one that does not exist (it is never created). */
export class StoreMissingError extends BrokerError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('ERR_STORE_MISSING', message, { details });
  }
}

export function isBrokerError(error: unknown): error is BrokerError {
  return error instanceof BrokerError;
}
