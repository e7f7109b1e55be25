/**
 * Parses the text of an `/access` command (what follows `/access`) into a command. Pure: no
 * broker, no chat. Values are only split here; the broker validates targets, levels and durations.
 */
import { BotError, UsageError } from '../errors.ts';

/** Longest command text accepted; Slack itself caps slash command text near 4,000 characters. */
export const MAX_COMMAND_LENGTH = 2000;

export type Command =
  | { kind: 'help' }
  | { kind: 'list' }
  | { kind: 'status'; id: string }
  | { kind: 'cancel'; id: string }
  | { kind: 'revoke'; id: string; reason: string | undefined }
  | { kind: 'extend'; id: string; duration: string }
  | { kind: 'approve'; id: string }
  | { kind: 'deny'; id: string; reason: string }
  | { kind: 'review'; verb: 'approve' | 'deny'; id: string; reason: string }
  | {
      kind: 'request';
      target: string;
      level: string | undefined;
      duration: string | undefined;
      reason: string;
      breakGlass: boolean;
    };

/** Usage lines shown by `help` and in replies to mistakes. */
export const USAGE = [
  '/access <target>[:<level>] <duration> <reason…>   ask for access, e.g. /access prod-db 30m fixing invoice 4411',
  '/access list                                      your requests and grants, and what waits on you',
  '/access status <id>                               one request in detail',
  '/access revoke <id> [reason]                      end a grant now',
  '/access extend <id> <duration>                    lengthen a grant, e.g. /access extend r1a2b3c4d5e 15m',
  '/access cancel <id>                               withdraw a pending request',
  '/access approve <id> | deny <id> <reason>         decide a request (approvers)',
  '/access review approve|deny <id> [reason]         decide a statement the proxy holds for review',
  '/access <target> <duration> --break-glass <reason> immediate access in an emergency (if your rule allows it)',
];

const ID = /^[a-z][0-9a-z]{1,63}$/;
const TARGET = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const LOOKS_LIKE_DURATION = /^\d/;

function requireId(word: string | undefined, usage: string): string {
  if (!word) throw new UsageError(`say which request: ${usage}`);
  const id = word.toLowerCase();
  if (!ID.test(id))
    throw new UsageError(`"${word.slice(0, 64)}" is not a request id: ${usage}`, { id: word.slice(0, 64) });
  return id;
}

function rest(words: string[], from: number): string {
  return words.slice(from).join(' ').trim();
}

/** Parses command text. Throws `ERR_BOT_USAGE` or `ERR_BOT_INPUT_TOO_LONG` with a helpful message. */
export function parseCommand(text: string): Command {
  if (text.length > MAX_COMMAND_LENGTH) {
    throw new BotError(
      'ERR_BOT_INPUT_TOO_LONG',
      `that command is longer than ${MAX_COMMAND_LENGTH} characters`,
    );
  }
  const words = text.trim().split(/\s+/).filter(Boolean);
  const verb = words[0]?.toLowerCase();
  switch (verb) {
    case undefined:
    case 'help':
      return { kind: 'help' };
    case 'list':
      return { kind: 'list' };
    case 'status':
    case 'show':
      return { kind: 'status', id: requireId(words[1], '/access status <id>') };
    case 'cancel':
      return { kind: 'cancel', id: requireId(words[1], '/access cancel <id>') };
    case 'revoke':
      return {
        kind: 'revoke',
        id: requireId(words[1], '/access revoke <id> [reason]'),
        reason: rest(words, 2) || undefined,
      };
    case 'extend': {
      const id = requireId(words[1], '/access extend <id> <duration>');
      if (!words[2]) throw new UsageError('say by how long: /access extend <id> <duration>, e.g. 15m');
      return { kind: 'extend', id, duration: words[2] };
    }
    case 'approve':
      return { kind: 'approve', id: requireId(words[1], '/access approve <id>') };
    case 'deny': {
      const id = requireId(words[1], '/access deny <id> <reason>');
      const reason = rest(words, 2);
      if (!reason) throw new UsageError('say why you deny it: /access deny <id> <reason>');
      return { kind: 'deny', id, reason };
    }
    case 'review': {
      const usage = '/access review approve|deny <id> [reason]';
      const decision = words[1]?.toLowerCase();
      if (decision !== 'approve' && decision !== 'deny')
        throw new UsageError(`say approve or deny: ${usage}`);
      return { kind: 'review', verb: decision, id: requireId(words[2], usage), reason: rest(words, 3) };
    }
    default:
      return parseRequest(words);
  }
}

function parseRequest(words: string[]): Command {
  const [spec, ...others] = words as [string, ...string[]];
  const colon = spec.indexOf(':');
  const target = (colon === -1 ? spec : spec.slice(0, colon)).toLowerCase();
  const level = colon === -1 ? undefined : spec.slice(colon + 1).toLowerCase();
  if (!TARGET.test(target) || level === '' || (level !== undefined && !TARGET.test(level))) {
    throw new UsageError(`"${spec.slice(0, 64)}" is not a command or a target: try /access help`, {
      input: spec.slice(0, 64),
    });
  }
  let breakGlass = false;
  const remaining = others.filter((w) => {
    if (w.toLowerCase() !== '--break-glass') return true;
    breakGlass = true;
    return false;
  });
  // The duration may be left out (the rule's default applies): only a word starting with a digit is one.
  const duration = remaining[0] && LOOKS_LIKE_DURATION.test(remaining[0]) ? remaining.shift() : undefined;
  return { kind: 'request', target, level, duration, reason: remaining.join(' ').trim(), breakGlass };
}

/** What a reply in a request's thread asks for. */
export type ThreadReply =
  | { kind: 'approve' }
  | { kind: 'deny'; reason: string }
  /** `deny` without a reason. */
  | { kind: 'deny-without-reason' }
  /** Reads like a decision but is not exactly one (`Approve??`, `lgtm`, `approve r1a2…`): nothing happens. */
  | { kind: 'unclear' };

/** First words that read like a decision; only the exact commands act on it. */
const DECISION_WORDS = new Set([
  'approve',
  'approved',
  'approves',
  'approving',
  'lgtm',
  'deny',
  'denied',
  'denies',
  'reject',
  'rejected',
  'decline',
  'declined',
]);

/**
 * Reads a reply in a request's thread. Only `approve` (alone) and `deny <reason>` decide, in any
 * case and with blanks around; a reply that starts like a decision but is not exactly one is
 * `unclear` (a question such as "Approve?? Not before you tell me which customer" must never
 * approve); anything else is conversation and gives undefined.
 */
export function parseThreadReply(text: string): ThreadReply | undefined {
  const trimmed = text.slice(0, MAX_COMMAND_LENGTH + 1).trim();
  if (/^approve$/i.test(trimmed)) return { kind: 'approve' };
  const deny = /^deny(?:\s+([\s\S]*))?$/i.exec(trimmed);
  if (deny) {
    const reason = (deny[1] ?? '').trim();
    return reason ? { kind: 'deny', reason } : { kind: 'deny-without-reason' };
  }
  const first = /^[^\s]+/
    .exec(trimmed)?.[0]
    .toLowerCase()
    .replace(/[^a-z]/g, '');
  return first && DECISION_WORDS.has(first) ? { kind: 'unclear' } : undefined;
}
