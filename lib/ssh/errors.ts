/**
 * Errors of the SSH certificate authority: loading the CA key, minting user certificates,
 * verifying them and building revocation lists. Every error carries a stable `code`; callers
 * branch on the code, the message is for people and never holds key material.
 */
import { WardenError } from '../errors.ts';

/** Every code an SSH CA error can carry. */
export const SSH_CA_ERROR_CODES = [
  'ERR_SSH_CA_KEY_INVALID',
  'ERR_SSH_CA_KEY_TYPE',
  'ERR_SSH_CA_KEY_ENCRYPTED',
  'ERR_SSH_CA_PRINCIPAL_INVALID',
  'ERR_SSH_CA_VALIDITY_INVERTED',
  'ERR_SSH_CA_INPUT_INVALID',
  'ERR_SSH_CA_CERT_MALFORMED',
  'ERR_SSH_CA_CERT_TYPE',
  'ERR_SSH_CA_CERT_FOREIGN_CA',
  'ERR_SSH_CA_CERT_SIGNATURE',
  'ERR_SSH_CA_CERT_EXPIRED',
  'ERR_SSH_CA_CERT_NOT_YET_VALID',
  'ERR_SSH_CA_CERT_WRONG_PRINCIPAL',
  'ERR_SSH_CA_CERT_CRITICAL_OPTION',
  'ERR_SSH_CA_CERT_REVOKED',
  'ERR_SSH_CA_KRL_INVALID',
] as const;

export type SshCaErrorCode = (typeof SSH_CA_ERROR_CODES)[number];

/**
 * Base class of every SSH CA error. `details` holds non-secret facts a caller may show or log
 * (a principal, a limit, ...). A CA key named by `ssh.ca_key` that cannot be used reaches the
 * CLI as the broker's `ConfigError` naming that key.
 */
export class SshCaError extends WardenError<SshCaErrorCode> {}

/** A key (CA private key, subject public key, CA public key line) cannot be used. */
export class SshKeyError extends SshCaError {}

/** The input of a mint or KRL call is not acceptable (principal, validity, serial, key id, option). */
export class SshCertificateInputError extends SshCaError {}

/**
 * A presented certificate was refused. The code says why (foreign CA, expired, wrong principal,
 * tampered signature, ...); authentication edges should answer with a generic message and log
 * the code.
 */
export class SshCertificateRejectedError extends SshCaError {}

/** Returns whether `error` is an {@link SshCaError}, optionally with the given code. */
export function isSshCaError(error: unknown, code?: SshCaErrorCode): error is SshCaError {
  return error instanceof SshCaError && (code === undefined || error.code === code);
}
