/**
 * Errors of the SSH proxy. Each has a stable `code`. Authentication refusals reach the client as
 * a plain SSH failure (no details); the code goes to the debug log and the audit log.
 */
import { formatConfigMessage, WardenError } from '../../lib/errors.ts';

/** Every code an SSH proxy error can carry. */
export const SSH_PROXY_ERROR_CODES = [
  'ERR_SSH_PROXY_CONFIG',
  'ERR_SSH_PROXY_LOGIN_NAME',
  'ERR_SSH_PROXY_TARGET_UNKNOWN',
  'ERR_SSH_PROXY_AUTH_METHOD',
  'ERR_SSH_PROXY_TOKEN_INVALID',
  'ERR_SSH_PROXY_KEY_TYPE',
  'ERR_SSH_PROXY_SIGNATURE',
  'ERR_SSH_PROXY_GRANT_UNKNOWN',
  'ERR_SSH_PROXY_GRANT_NOT_ACTIVE',
  'ERR_SSH_PROXY_GRANT_TARGET',
  'ERR_SSH_PROXY_PRINCIPAL',
  'ERR_SSH_PROXY_SOURCE_ADDRESS',
  'ERR_SSH_PROXY_UPSTREAM',
  'ERR_SSH_PROXY_HOST_KEY',
  'ERR_SSH_PROXY_RECORDING_TIMEOUT',
] as const;

export type SshProxyErrorCode = (typeof SSH_PROXY_ERROR_CODES)[number];

/** Base class of every SSH proxy error. */
export class SshProxyError extends WardenError<SshProxyErrorCode> {}

/** The SSH proxy's settings of a target are invalid (a masking key reference, a host key pin); `path` names the key. */
export class SshProxyConfigError extends SshProxyError {
  constructor(path: string, message: string, options: ErrorOptions = {}) {
    super('ERR_SSH_PROXY_CONFIG', formatConfigMessage(path, message), {
      ...options,
      details: { path },
      configPath: path,
    });
  }
}

/** Returns whether `error` is an {@link SshProxyError}, optionally with the given code. */
export function isSshProxyError(error: unknown, code?: SshProxyErrorCode): error is SshProxyError {
  return error instanceof SshProxyError && (code === undefined || error.code === code);
}
