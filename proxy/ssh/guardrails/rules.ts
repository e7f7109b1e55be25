/**
 * Command guardrails: commands are read as Bash reads them (shell-syntax.ts) and each simple
 * command is judged as what it runs. Wrappers are looked through with their options (`sudo -iu
 * root reboot`, `env`, `timeout`, `nohup`, `xargs`, ...); scripts given to shells (`bash -c`,
 * `sh -c -- ...`, `su -c`, here-documents and here-strings fed to a shell), to `eval`, to `alias`
 * and to `find -exec` are read and judged in turn; text a shell or interpreter would read from a
 * pipe (`... | base64 -d | sh`), and inline code in other languages (`python -c`, `perl -e`), cannot
 * be seen and is refused. Default rules: deletes of the root file system (also `find / -delete`,
 * and relative deletes after `cd /`), file-system creation, power actions (also `systemctl isolate
 * poweroff.target`), Kubernetes deletes, raw writes to block devices (`dd of=`, redirections, tee),
 * fork bombs. A command whose outcome depends on what the checker cannot compute (a computed
 * command name, a variable set in the same text, a computed target of a destructive command) is
 * refused under `dynamic-command`.
 *
 * In `allow` mode only listed commands may run: every command, wrapper and nested script must be
 * on the list, and any computed word is refused. Pure: text in, verdict out.
 */

import { z } from 'zod';
import { Checker } from './checker.ts';
import { GuardrailConfigError } from './errors.ts';
import { parseShell, type ShellWord, UNKNOWN } from './shell-syntax.ts';

/** Ids of the built-in rules. */
export const DEFAULT_RULE_IDS = [
  'rm-root',
  'mkfs',
  'power',
  'kubectl-delete',
  'dd-device',
  'device-write',
  'fork-bomb',
  'interpreter',
  'dynamic-command',
] as const;
export type DefaultRuleId = (typeof DEFAULT_RULE_IDS)[number];

/** Longest command or line checked; longer text is blocked (`too-long`). */
export const MAX_COMMAND_LENGTH = 65_536;

function isValidRegex(value: { pattern: string; flags: string }): boolean {
  try {
    new RegExp(value.pattern, value.flags);
    return true;
  } catch {
    return false;
  }
}

const allowEntrySchema = z.union([
  z.string().min(1).max(200),
  z
    .object({
      /** A command name (`systemctl`) or absolute path (`/usr/bin/systemctl`). */
      command: z.string().min(1).max(200),
      /** When given, the first argument that is not an option must be one of these. */
      args: z.array(z.string().min(1)).min(1).optional(),
    })
    .strict(),
]);

/**
 * Zod schema of the `guardrails` configuration fragment. Defaults: every built-in rule on, no
 * custom pattern, unknown interactive lines blocked, unparseable text blocked, deny mode.
 */
export const guardrailRulesSchema = z.object({
  /** `deny` (default): refuse what a rule matches. `allow`: run only the commands in `allow`. */
  mode: z.enum(['deny', 'allow']).default('deny'),
  /** `allow` mode: the commands that may run (`ls`, `{ command: systemctl, args: [status] }`). */
  allow: z.array(allowEntrySchema).max(1_000).default([]),
  /** Built-in rules to turn off. */
  disabledDefaults: z.array(z.enum(DEFAULT_RULE_IDS)).default([]),
  /** Custom patterns, tested against the whole text and against each command found in it. */
  patterns: z
    .array(
      z
        .object({
          id: z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/, 'use lowercase letters, digits and -'),
          pattern: z.string().min(1).max(1_000),
          flags: z
            .string()
            .regex(/^[imsu]*$/, 'flags may be i, m, s and u')
            .default(''),
          reason: z.string().max(200).optional(),
        })
        .refine(isValidRegex, { message: 'not a valid regular expression', path: ['pattern'] }),
    )
    .max(200)
    .default([]),
  /**
   * What to do with an interactive line the editor model no longer knows exactly (history
   * recall, completion, unknown keys): `block` it, or `check` the best-known text.
   */
  unknownLine: z.enum(['block', 'check']).default('block'),
  /** Block text the shell reader cannot fully read (open quote, deep nesting). */
  blockUnparseable: z.boolean().default(true),
});

/** Configuration as written (defaults optional). */
export type GuardrailRulesInput = z.input<typeof guardrailRulesSchema>;
/** Configuration after defaults. */
export type GuardrailRulesConfig = z.output<typeof guardrailRulesSchema>;

/** Ready-to-use guardrails, built by {@link compileGuardrails}. */
export interface Guardrails {
  readonly config: GuardrailRulesConfig;
  readonly patterns: readonly { id: string; regex: RegExp; reason: string }[];
  /** `allow` mode: command name or path → allowed first arguments (undefined: any). */
  readonly allowList?: ReadonlyMap<string, readonly string[] | undefined>;
}

/** A verdict on a command or line. */
export type GuardrailVerdict =
  | { allowed: true }
  | {
      allowed: false;
      /** A built-in rule id, a custom pattern id, or `too-long`, `unparseable`, `unknown-line`, `not-allowed`. */
      ruleId: string;
      reason: string;
      /** The simple command that matched, words joined by spaces, when one did. */
      command?: string;
    };

/**
 * What the checker knows of the shell between checks of one interactive session: the working
 * directories it may be in (`home` for the login directory, `unknown` after a computed `cd`) and
 * the variables earlier lines assigned. Updated by {@link checkCommand}.
 */
export interface ShellState {
  cwds: Set<string>;
  assigned: Set<string>;
}

/** A fresh {@link ShellState}: in the login directory, no variables assigned. */
export function createShellState(): ShellState {
  return { cwds: new Set(['home']), assigned: new Set() };
}

/** Options of {@link checkCommand}. */
export interface CheckOptions {
  /** An interactive line: history expansion (`!!`, `!rm`) and `fc` re-run earlier text. */
  readonly interactive?: boolean;
  /** Session state to read and update (interactive sessions); a fresh one when absent. */
  readonly state?: ShellState;
  /** Judge the commands of an incomplete text (the shell waits for more) instead of refusing it. */
  readonly allowIncomplete?: boolean;
}

/**
 * Validates a configuration fragment and compiles its patterns. Throws `ERR_GUARDRAIL_CONFIG`
 * naming the offending path under `basePath` (default `guardrails`).
 */
export function compileGuardrails(input: GuardrailRulesInput = {}, basePath = 'guardrails'): Guardrails {
  const parsed = guardrailRulesSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new GuardrailConfigError([basePath, ...issue.path.map(String)].join('.'), issue.message);
  }
  const config = parsed.data;
  if (config.mode === 'allow' && config.allow.length === 0) {
    throw new GuardrailConfigError(`${basePath}.allow`, 'allow mode needs at least one allowed command');
  }
  const allowList = new Map<string, readonly string[] | undefined>();
  for (const entry of config.allow) {
    if (typeof entry === 'string') allowList.set(entry, undefined);
    else allowList.set(entry.command, entry.args);
  }
  return {
    config,
    patterns: config.patterns.map((p) => ({
      id: p.id,
      regex: new RegExp(p.pattern, p.flags),
      reason: p.reason ?? `matches the blocked pattern ${p.id}`,
    })),
    ...(config.mode === 'allow' ? { allowList } : {}),
  };
}

export { commandName } from './checker.ts';

/**
 * Checks a command (an exec request, or a completed interactive line) against the rules. Every
 * simple command the shell would run is checked, however it is chained, nested or wrapped.
 */
export function checkCommand(
  text: string,
  guardrails: Guardrails,
  options: CheckOptions = {},
): GuardrailVerdict {
  if (text.length > MAX_COMMAND_LENGTH) {
    return {
      allowed: false,
      ruleId: 'too-long',
      reason: `commands longer than ${MAX_COMMAND_LENGTH} characters are blocked`,
    };
  }
  const state = options.state ?? createShellState();
  const checker = new Checker(guardrails, state, options.interactive === true);
  const found = checker.script(text, 0, options.allowIncomplete === true);
  if (found && found.ruleId !== 'unparseable') return { allowed: false, ...found };
  const patterns = patternVerdict(guardrails, checker.scripts, text);
  if (patterns && patterns.ruleId !== 'dynamic-command') return patterns;
  if (found) return { allowed: false, ...found };
  return patterns ?? { allowed: true };
}

/**
 * Variables whose value the client cannot choose (set by login or by the shell itself). Others,
 * `LANG`, `LC_*`, `TERM` among them, may come from the client's environment requests.
 */
const SHELL_SET_VARIABLES = new Set([
  'HOME',
  'USER',
  'LOGNAME',
  'PWD',
  'OLDPWD',
  'SHELL',
  'PATH',
  'HOSTNAME',
  'UID',
  'EUID',
  'PPID',
  'RANDOM',
  'SECONDS',
  'LINENO',
  'BASHPID',
  '$',
  '?',
  '!',
  '#',
  '@',
  '*',
  '-',
  '0',
  '1',
  '2',
  '3',
  '4',
  '5',
  '6',
  '7',
  '8',
  '9',
]);

/**
 * A word whose text a pattern cannot read before the shell computes it: a glob, a brace
 * expansion, a command substitution's output, a variable the client may set. (Arithmetic yields a
 * number; the text of substitutions is checked as commands of its own.)
 */
function hidesFromPatterns(word: ShellWord): boolean {
  if (word.glob) return true;
  if (word.computed.some((c) => c === 'command' || c === 'brace')) return true;
  return word.variables.some((v) => !SHELL_SET_VARIABLES.has(v));
}

/** Custom patterns over every script text read and every command found in it. */
function patternVerdict(
  guardrails: Guardrails,
  scripts: readonly string[],
  text: string,
): (GuardrailVerdict & { allowed: false }) | undefined {
  if (guardrails.patterns.length === 0) return undefined;
  const texts = [...scripts];
  const computed: string[] = [];
  for (const script of scripts) {
    for (const command of parseShell(script).commands) {
      texts.push(command.words.map((w) => w.value.replaceAll(UNKNOWN, '')).join(' '));
      const word = command.words.find(hidesFromPatterns);
      if (word) computed.push(word.raw);
    }
  }
  for (const pattern of guardrails.patterns) {
    const hit = texts.find((t) => pattern.regex.test(t));
    if (hit !== undefined)
      return { allowed: false, ruleId: pattern.id, reason: pattern.reason, command: hit };
  }
  // A pattern reads text: a word the shell computes at run time could become what it forbids.
  if (computed.length > 0 && !guardrails.config.disabledDefaults.includes('dynamic-command')) {
    return {
      allowed: false,
      ruleId: 'dynamic-command',
      reason: `"${computed[0]}" is computed at run time and this target has command patterns`,
      command: text.slice(0, 200),
    };
  }
  return undefined;
}
