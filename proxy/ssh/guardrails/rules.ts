/**
 * Command guardrails: default rules for commands that destroy a host or a cluster, plus custom
 * regular expressions from the configuration. Pure: text in, verdict out.
 */
import { posix } from 'node:path';
import { z } from 'zod';
import { GuardrailConfigError } from './errors.ts';
import { commandName, readShell } from './shell-words.ts';

/** Ids of the built-in rules. */
export const DEFAULT_RULE_IDS = [
  'rm-root',
  'mkfs',
  'power',
  'kubectl-delete',
  'dd-device',
  'fork-bomb',
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

/**
 * Zod schema of the `guardrails` configuration fragment. Defaults: every built-in rule on, no
 * custom pattern, unknown interactive lines blocked, unparseable text blocked.
 */
export const guardrailRulesSchema = z.object({
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
}

/** A verdict on a command or line. */
export type GuardrailVerdict =
  | { allowed: true }
  | {
      allowed: false;
      /** A built-in rule id, a custom pattern id, or `too-long`, `unparseable`, `unknown-line`. */
      ruleId: string;
      reason: string;
      /** The simple command that matched, words joined by spaces, when one did. */
      command?: string;
    };

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
  return {
    config: parsed.data,
    patterns: parsed.data.patterns.map((p) => ({
      id: p.id,
      regex: new RegExp(p.pattern, p.flags),
      reason: p.reason ?? `matches the blocked pattern ${p.id}`,
    })),
  };
}

const ROOT_LIKE = new Set(['/', '/*', '/.*']);

/** `/`, `//`, `/.`, `/..`, `/*` and similar spellings of the whole file system. */
function isRootPath(path: string): boolean {
  if (!path.startsWith('/')) return false;
  const normal = posix.normalize(path).replace(/\/+$/, '') || '/';
  return ROOT_LIKE.has(normal);
}

function isRmRoot(args: string[]): boolean {
  let recursive = false;
  let optionsDone = false;
  const targets: string[] = [];
  for (const arg of args) {
    if (arg === '--no-preserve-root') return true;
    if (!optionsDone && arg === '--') optionsDone = true;
    else if (!optionsDone && arg === '--recursive') recursive = true;
    else if (!optionsDone && /^-[A-Za-z]+$/.test(arg)) recursive ||= /[rR]/.test(arg);
    else if (!optionsDone && arg.startsWith('--')) continue;
    else targets.push(arg);
  }
  return recursive && targets.some(isRootPath);
}

const POWER_COMMANDS = new Set(['shutdown', 'reboot', 'halt', 'poweroff']);
const BLOCK_DEVICE = /^of=\/dev\/(sd|hd|vd|xvd|nvme|mmcblk|disk|dm-|md|mapper\/)/;
const FORK_BOMBS = [
  /(?:^|[\s;&|(])([^\s(){};&|]+)\s*\(\s*\)\s*\{[^}]*?\1\s*\|\s*\1\s*&/,
  /\bfunction\s+([^\s(){};&|]+)\s*(?:\(\s*\))?\s*\{[^}]*?\1\s*\|\s*\1\s*&/,
];

const DEFAULT_RULES: Record<
  Exclude<DefaultRuleId, 'fork-bomb'>,
  { reason: string; test(argv: string[]): boolean }
> = {
  'rm-root': {
    reason: 'recursive delete of the root file system',
    test: ([n, ...a]) => n === 'rm' && isRmRoot(a),
  },
  mkfs: {
    reason: 'creates a file system (erases a device)',
    test: ([n]) => /^(mkfs|mke2fs|mkswap)/.test(n!),
  },
  power: {
    reason: 'shuts down or reboots the host',
    test: ([n, ...a]) =>
      POWER_COMMANDS.has(n!) ||
      (n === 'systemctl' && a.some((x) => POWER_COMMANDS.has(x) || x === 'kexec')) ||
      ((n === 'init' || n === 'telinit') && (a[0] === '0' || a[0] === '6')),
  },
  'kubectl-delete': {
    reason: 'deletes Kubernetes resources',
    test: ([n, ...a]) => (n === 'kubectl' || n === 'oc') && a.includes('delete'),
  },
  'dd-device': {
    reason: 'writes raw data to a block device',
    test: ([n, ...a]) => n === 'dd' && a.some((x) => BLOCK_DEVICE.test(x)),
  },
};

/**
 * Checks a command (an exec request, or a completed interactive line) against the rules. Every
 * simple command the shell would run is checked, however it is chained, nested or wrapped.
 */
export function checkCommand(text: string, guardrails: Guardrails): GuardrailVerdict {
  if (text.length > MAX_COMMAND_LENGTH) {
    return {
      allowed: false,
      ruleId: 'too-long',
      reason: `commands longer than ${MAX_COMMAND_LENGTH} characters are blocked`,
    };
  }
  const disabled = new Set<string>(guardrails.config.disabledDefaults);
  const reading = readShell(text);
  if (!disabled.has('fork-bomb')) {
    for (const script of reading.scripts) {
      if (FORK_BOMBS.some((re) => re.test(script))) {
        return { allowed: false, ruleId: 'fork-bomb', reason: 'fork bomb' };
      }
    }
  }
  for (const argv of reading.commands) {
    const normal = [commandName(argv[0]!), ...argv.slice(1)];
    for (const [id, rule] of Object.entries(DEFAULT_RULES)) {
      if (!disabled.has(id) && rule.test(normal)) {
        return { allowed: false, ruleId: id, reason: rule.reason, command: argv.join(' ') };
      }
    }
  }
  const texts = [...reading.scripts, ...reading.commands.map((argv) => argv.join(' '))];
  for (const pattern of guardrails.patterns) {
    const hit = texts.find((t) => pattern.regex.test(t));
    if (hit !== undefined)
      return { allowed: false, ruleId: pattern.id, reason: pattern.reason, command: hit };
  }
  if (!reading.complete && guardrails.config.blockUnparseable) {
    return {
      allowed: false,
      ruleId: 'unparseable',
      reason: 'the command has an open quote or substitution, or nests too deep',
    };
  }
  return { allowed: true };
}
