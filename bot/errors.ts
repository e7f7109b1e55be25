/**
 * Errors raised by the chat bot. Every error carries a stable `code`; the message is for people.
 * Broker errors pass through unchanged and are turned into replies at the edge (`describeError`).
 */
import { formatConfigMessage, WardenError, type WardenErrorOptions } from '../lib/errors.ts';

/** Every code a bot error can carry. */
export const BOT_ERROR_CODES = [
  'ERR_BOT_CONFIG',
  'ERR_BOT_USAGE',
  'ERR_BOT_INPUT_TOO_LONG',
  'ERR_BOT_USER_UNKNOWN',
  'ERR_BOT_NO_CHANNEL',
  'ERR_BOT_SIGNATURE',
  'ERR_BOT_REPLAY',
  'ERR_BOT_BODY_TOO_LARGE',
  'ERR_BOT_SLACK_NOT_IN_CHANNEL',
  'ERR_BOT_SLACK_API',
  'ERR_BOT_TEAMS_API',
  'ERR_BOT_INTERNAL',
] as const;

export type BotErrorCode = (typeof BOT_ERROR_CODES)[number];

/** Base class of every bot error. */
export class BotError extends WardenError<BotErrorCode> {}

/** The `chat:` section is invalid (`chat.slack.signing_secret`, ...); the message starts with the key. */
export class BotConfigError extends BotError {
  constructor(path: string, message: string) {
    super('ERR_BOT_CONFIG', formatConfigMessage(path, message), { details: { path }, configPath: path });
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

/** A Teams user Warden does not know; the message names whom to ask. */
export class UnknownTeamsUserError extends BotError {
  constructor(contact: string, user: string) {
    super(
      'ERR_BOT_USER_UNKNOWN',
      `Warden does not know who you are in Teams: ask ${contact} to add your Entra object id (people[].teams) or your e-mail to Warden's people list`,
      { details: { chatUser: user.slice(0, 64) } },
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
    options: WardenErrorOptions = {},
  ) {
    super(code, message, options);
  }
}

/** A Bot Connector (or token endpoint) call failed for good (after retries, or with an error retrying cannot fix). */
export class TeamsApiError extends BotError {
  constructor(message: string, options: WardenErrorOptions = {}) {
    super('ERR_BOT_TEAMS_API', message, options);
  }
}

export function isBotError(error: unknown): error is BotError {
  return error instanceof BotError;
}
