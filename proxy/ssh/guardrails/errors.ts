/** Errors of the SSH command guardrails. Each has a stable `code`. */
import { formatConfigMessage, WardenError } from '../../../lib/errors.ts';

/** Every code a guardrail error can carry. */
export const GUARDRAIL_ERROR_CODES = ['ERR_GUARDRAIL_CONFIG'] as const;

export type GuardrailErrorCode = (typeof GUARDRAIL_ERROR_CODES)[number];

/** Base class of every guardrail error. */
export class GuardrailError extends WardenError<GuardrailErrorCode> {}

/** The guardrail configuration is invalid; `details.path` names the offending key. */
export class GuardrailConfigError extends GuardrailError {
  constructor(path: string, message: string) {
    super('ERR_GUARDRAIL_CONFIG', formatConfigMessage(path, message), {
      details: { path },
      configPath: path,
    });
  }
}

/** Returns whether `error` is a {@link GuardrailError}, optionally with the given code. */
export function isGuardrailError(error: unknown, code?: GuardrailErrorCode): error is GuardrailError {
  return error instanceof GuardrailError && (code === undefined || error.code === code);
}
