/**
 * Errors raised by the chat bot. Every error carries a stable `code`; the message is for people.
 * Broker errors pass through unchanged and are turned into replies at the edge (`describeError`).
 */

export type BotErrorCode =
  | 'ERR_BOT_CONFIG'
  | 'ERR_BOT_USAGE'
  | 'ERR_BOT_INPUT_TOO_LONG'
  | 'ERR_BOT_USER_UNKNOWN'
  | 'ERR_BOT_NO_CHANNEL'
  | 'ERR_BOT_SIGNATURE'
  | 'ERR_BOT_REPLAY'
  | 'ERR_BOT_BODY_TOO_LARGE'
  | 'ERR_BOT_SLACK_NOT_IN_CHANNEL'
  | 'ERR_BOT_SLACK_API'
  | 'ERR_BOT_INTERNAL';

/** What a bot error may carry besides its message: non-secret facts to show, and a cause. */
export interface BotErrorOptions extends ErrorOptions {
  details?: Record<string, unknown>;
}

/** Base class of every bot error. */
export class BotError extends Error {
  readonly code: BotErrorCode;
  /** Extra, non-secret facts a reply may show. */
  readonly details: Record<string, unknown>;

  constructor(code: BotErrorCode, message: string, { details = {}, ...options }: BotErrorOptions = {}) {
    super(message, options);
    Object.defineProperty(this, 'name', { value: new.target.name, enumerable: false });
    this.code = code;
    this.details = details;
  }
}

/** A chat command that does not parse; the message says how to write it. */
export class UsageError extends BotError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('ERR_BOT_USAGE', message, { details });
  }
}

/** The chat user maps to nobody in the Warden directory. */
export class UnknownUserError extends BotError {
  constructor(chatUser: string) {
    super(
      'ERR_BOT_USER_UNKNOWN',
      'Warden does not know who you are: ask an admin to add your chat id or e-mail to the people list',
      { details: { chatUser } },
    );
  }
}

/**
 * An inbound Slack request failed authentication. The message is fixed and generic on purpose;
 * `reason` is for debug logs only.
 */
export class SignatureError extends BotError {
  readonly reason: string;
  constructor(code: 'ERR_BOT_SIGNATURE' | 'ERR_BOT_REPLAY', reason: string) {
    super(code, 'request refused');
    this.reason = reason;
  }
}

/** A Slack Web API call failed for good (after retries, or with an error retrying cannot fix). */
export class SlackApiError extends BotError {
  constructor(
    code: 'ERR_BOT_SLACK_API' | 'ERR_BOT_SLACK_NOT_IN_CHANNEL',
    message: string,
    options: BotErrorOptions = {},
  ) {
    super(code, message, options);
  }
}

export function isBotError(error: unknown): error is BotError {
  return error instanceof BotError;
}
