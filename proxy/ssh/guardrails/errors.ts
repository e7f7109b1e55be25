/** Errors of the SSH command guardrails. Each has a stable `code`. */

export type GuardrailErrorCode = 'ERR_GUARDRAIL_CONFIG';

/** Base class of every guardrail error. */
export class GuardrailError extends Error {
  readonly code: GuardrailErrorCode;
  readonly details: Record<string, unknown>;

  constructor(code: GuardrailErrorCode, message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.details = details;
  }
}

/** The guardrail configuration is invalid; `details.path` names the offending key. */
export class GuardrailConfigError extends GuardrailError {
  constructor(path: string, message: string) {
    super('ERR_GUARDRAIL_CONFIG', path ? `${path}: ${message}` : message, { path });
  }
}

/** Returns whether `error` is a {@link GuardrailError}, optionally with the given code. */
export function isGuardrailError(error: unknown, code?: GuardrailErrorCode): error is GuardrailError {
  return error instanceof GuardrailError && (code === undefined || error.code === code);
}
