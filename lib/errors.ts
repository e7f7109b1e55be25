/**
 * The root of every Warden error, in the style of panva/jose: one class with a stable `code`
 * that callers branch on, a message for people, and non-secret `details`. Each area (broker, bot,
 * proxy, cli, ...) keeps its own `errors.ts` with a family base class extending
 * {@link WardenError}, the union of its codes, and a subclass per failure a caller may handle.
 *
 * Misconfiguration is told apart the same way in every family: a configuration error carries the
 * config key at fault in {@link WardenError.configPath}, and {@link isConfigurationError} is the
 * one test for it. (A family's config error must stay an instance of its family, so the marker
 * is a property of the root rather than a second base class.) Edges translate errors: the CLI into
 * exit codes, the API into HTTP statuses, the proxies into protocol errors; the core never does.
 *
 * This module depends on nothing of Warden's, so every area may import it.
 */

/** What any Warden error may carry besides its code and message. */
export interface WardenErrorOptions extends ErrorOptions {
  /** Non-secret facts a caller may show or log (a limit, a name, the closest match). Never a secret. */
  details?: Record<string, unknown>;
  /**
   * Set only by configuration errors: the key of `warden.yaml` at fault, as the file reads
   * (`targets.prod-db.proxy.masking.columns[0].style`); `''` when no key is to blame (the file
   * cannot be read or is not YAML).
   */
  configPath?: string;
}

/** Base class of every error Warden raises on purpose. */
export class WardenError<Code extends string = string> extends Error {
  /** Stable, machine-readable: `ERR_<AREA>_<WHAT>`. Callers branch on it, never on the message. */
  readonly code: Code;
  /** Non-secret facts a caller may show or log. */
  readonly details: Record<string, unknown>;
  /** The config key at fault when this error is a misconfiguration (see {@link isConfigurationError}). */
  readonly configPath: string | undefined;

  constructor(
    code: Code,
    message: string,
    { details = {}, configPath, ...options }: WardenErrorOptions = {},
  ) {
    super(message, options);
    // Like the built-in errors' `name`: not enumerable, so logs and JSON show it once, as the type.
    Object.defineProperty(this, 'name', { value: new.target.name, enumerable: false, configurable: true });
    this.code = code;
    this.details = details;
    this.configPath = configPath;
  }
}

/** A Warden error raised because the configuration is wrong: the fix is in `warden.yaml` or the environment. */
export interface ConfigurationError<Code extends string = string> extends WardenError<Code> {
  readonly configPath: string;
}

/** The one test for misconfiguration, whatever the family: true for errors made with a `configPath`. */
export function isConfigurationError(error: unknown): error is ConfigurationError {
  return error instanceof WardenError && error.configPath !== undefined;
}

/** Tells whether a value is a {@link WardenError}, optionally with the given code. */
export function isWardenError(error: unknown, code?: string): error is WardenError {
  return error instanceof WardenError && (code === undefined || error.code === code);
}

/**
 * The message of a configuration error: `<path>: <message>`, so the key to fix comes first (the
 * bare message when no key is to blame).
 */
export function formatConfigMessage(path: string, message: string): string {
  return path ? `${path}: ${message}` : message;
}
