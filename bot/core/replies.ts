/**
 * Turns errors into helpful replies: what went wrong, and what to type instead. This is the edge
 * where broker and bot error codes become chat text; the code travels along for tests and logs.
 */
import { formatDuration } from '../../broker/config/duration.ts';
import { isBotError } from '../errors.ts';

/** What the person who typed a command or clicked a button is told. */
export interface Reply {
  ok: boolean;
  text: string;
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

/** A reply for a failure. Unknown errors get a generic text (their details belong in logs). */
export function describeError(error: unknown, knownTargets: readonly string[]): Reply {
  if (!isCoded(error)) {
    return {
      ok: false,
      code: 'ERR_BOT_INTERNAL',
      text: 'Something went wrong on Warden’s side; nothing was changed. Try again, or tell an admin.',
    };
  }
  const details = error.details ?? {};
  const fail = (text: string): Reply => ({ ok: false, code: error.code, text });
  switch (error.code) {
    case 'ERR_TARGET_UNKNOWN': {
      const closest = Array.isArray(details.closest) ? (details.closest as string[]) : [];
      const hint =
        closest.length > 0
          ? ` Did you mean ${closest.map((c) => `\`${c}\``).join(' or ')}?`
          : knownTargets.length > 0
            ? ` Known targets: ${knownTargets.map((c) => `\`${c}\``).join(', ')}.`
            : '';
      return fail(`${capitalise(error.message.replace(/; did you mean.*$/, ''))}.${hint}`);
    }
    case 'ERR_REQUEST_DURATION': {
      const max = typeof details.maxMs === 'number' ? formatDuration(details.maxMs) : undefined;
      return fail(
        max ? `${capitalise(error.message)}. Ask for ${max} or less.` : `${capitalise(error.message)}.`,
      );
    }
    case 'ERR_LEVEL_UNKNOWN': {
      const levels = Array.isArray(details.levels) ? (details.levels as string[]) : [];
      return fail(
        `${capitalise(error.message)}. Write the level after a colon, e.g. \`/access <target>:${levels[0] ?? 'read'} 30m <reason>\`.`,
      );
    }
    case 'ERR_REQUEST_REASON':
      return fail(`${capitalise(error.message)}. Example: \`/access prod-db 30m fixing invoice 4411\`.`);
    case 'ERR_APPROVAL_SELF':
      return fail('You cannot approve or deny your own request: someone else has to.');
    case 'ERR_APPROVAL_NOT_ELIGIBLE': {
      const needs = /it needs (.*)$/.exec(error.message)?.[1];
      return fail(`You are not an approver of this request${needs ? `: it needs ${needs}` : ''}.`);
    }
    case 'ERR_APPROVAL_DUPLICATE':
      return fail('You already answered this request; your answer is counted once.');
    case 'ERR_BOT_USAGE':
    case 'ERR_BOT_INPUT_TOO_LONG':
      return fail(`${capitalise(error.message)}. Type \`/access help\` for the commands.`);
    default:
      return fail(`${capitalise(error.message)}.`.replace(/\.\.$/, '.'));
  }
}

function capitalise(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** Whether an error is one the bot expects (a person's mistake) rather than a fault to log loudly. */
export function isExpectedError(error: unknown): boolean {
  return isBotError(error) || isCoded(error);
}
