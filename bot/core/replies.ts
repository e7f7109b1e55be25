/**
 * Turns errors into helpful replies: what went wrong, and what to type instead. This is the edge
 * where broker and bot error codes become chat text; the code travels along for tests and logs.
 * An error's message may quote input (a mistyped target, an id), so it is always literal text.
 */
import { formatDuration } from '../../lib/duration.ts';
import { isBotError } from '../errors.ts';
import { code, joinLines, type Line, line, literal, type Message, message, text } from './message.ts';

/** What the person who typed a command or clicked a button is told. */
export interface Reply {
  ok: boolean;
  message: Message;
  /** The error code when `ok` is false. */
  code?: string;
}

interface CodedError {
  code: string;
  message: string;
  details?: Record<string, unknown>;
}

function isCoded(error: unknown): error is CodedError {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && code.startsWith('ERR_');
}

/** A successful reply of one or more lines. */
export function okReply(...lines: Line[]): Reply {
  return { ok: true, message: message(...lines) };
}

/** A refusal with its code. */
export function failReply(errorCode: string, ...lines: Line[]): Reply {
  return { ok: false, code: errorCode, message: message(...lines) };
}

/** A reply for a failure. Unknown errors get a generic text (their details belong in logs). */
export function describeError(error: unknown, knownTargets: readonly string[]): Reply {
  if (!isCoded(error)) {
    return failReply(
      'ERR_BOT_INTERNAL',
      line`Something went wrong on Warden’s side; nothing was changed. Try again, or tell an admin.`,
    );
  }
  const details = error.details ?? {};
  const said = literal(capitalise(error.message));
  const fail = (...spans: Line): Reply => failReply(error.code, spans);
  switch (error.code) {
    case 'ERR_TARGET_UNKNOWN': {
      const closest = Array.isArray(details.closest) ? (details.closest as string[]) : [];
      const names = (list: readonly string[], separator: string) =>
        joinLines(
          list.map((c) => [code(c)]),
          separator,
        );
      const hint =
        closest.length > 0
          ? line` Did you mean ${names(closest, ' or ')}?`
          : knownTargets.length > 0
            ? line` Known targets: ${names(knownTargets, ', ')}.`
            : [];
      return fail(literal(capitalise(error.message.replace(/; did you mean.*$/, ''))), text('.'), ...hint);
    }
    case 'ERR_REQUEST_DURATION': {
      const max = typeof details.maxMs === 'number' ? formatDuration(details.maxMs) : undefined;
      return max ? fail(...line`${said}. Ask for ${max} or less.`) : fail(said, text('.'));
    }
    case 'ERR_LEVEL_UNKNOWN': {
      const levels = Array.isArray(details.levels) ? (details.levels as string[]) : [];
      const example = code(`/access <target>:${levels[0] ?? 'read'} 30m <reason>`);
      return fail(...line`${said}. Write the level after a colon, e.g. ${example}.`);
    }
    case 'ERR_REQUEST_REASON':
      return fail(...line`${said}. Example: ${code('/access prod-db 30m fixing invoice 4411')}.`);
    case 'ERR_APPROVAL_SELF':
      return fail(text('You cannot approve or deny your own request: someone else has to.'));
    case 'ERR_APPROVAL_NOT_ELIGIBLE': {
      const needs = /it needs (.*)$/.exec(error.message)?.[1];
      return fail(...line`You are not an approver of this request${needs ? line`: it needs ${needs}` : []}.`);
    }
    case 'ERR_APPROVAL_DUPLICATE':
      return fail(text('You already answered this request; your answer is counted once.'));
    case 'ERR_BOT_USAGE':
    case 'ERR_BOT_INPUT_TOO_LONG':
      return fail(...line`${said}. Type ${code('/access help')} for the commands.`);
    default:
      return error.message.endsWith('.') ? fail(said) : fail(said, text('.'));
  }
}

function capitalise(value: string): string {
  return value.charAt(0).toUpperCase() + value.slice(1);
}

/** Whether an error is one the bot expects (a person's mistake) rather than a fault to log loudly. */
export function isExpectedError(error: unknown): boolean {
  return isBotError(error) || isCoded(error);
}
