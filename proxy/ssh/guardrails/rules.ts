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
import { posix } from 'node:path';
import { z } from 'zod';
import { GuardrailConfigError } from './errors.ts';
import { parseShell, type ShellCommand, type ShellWord, UNKNOWN } from './shell-syntax.ts';

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
/** Deepest nesting of scripts in scripts (`bash -c "sh -c '...'"`). */
const MAX_SCRIPT_DEPTH = 8;

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

/** The command name without its directory (`/usr/bin/rm` → `rm`). */
export function commandName(word: string): string {
  return word.slice(word.lastIndexOf('/') + 1);
}

const SHELLS = new Set([
  'sh',
  'bash',
  'dash',
  'zsh',
  'ksh',
  'ash',
  'mksh',
  'yash',
  'fish',
  'rbash',
  'csh',
  'tcsh',
]);
/** Interpreters and the options that give them code inline. */
const INTERPRETERS: Record<string, ReadonlySet<string>> = {
  python: new Set(['-c']),
  python2: new Set(['-c']),
  python3: new Set(['-c']),
  pypy: new Set(['-c']),
  pypy3: new Set(['-c']),
  perl: new Set(['-e', '-E']),
  ruby: new Set(['-e']),
  node: new Set(['-e', '--eval', '-p', '--print']),
  nodejs: new Set(['-e', '--eval', '-p', '--print']),
  deno: new Set(['eval']),
  bun: new Set(['-e', '--eval']),
  php: new Set(['-r']),
  lua: new Set(['-e']),
  tclsh: new Set([]),
  wish: new Set([]),
  expect: new Set(['-c']),
  Rscript: new Set(['-e']),
  pwsh: new Set(['-c', '-command', '-Command', '-EncodedCommand', '-e', '-ec']),
  powershell: new Set(['-c', '-command', '-Command', '-EncodedCommand', '-e', '-ec']),
  osascript: new Set(['-e']),
  jshell: new Set([]),
  irb: new Set([]),
  gdb: new Set(['-ex', '--eval-command']),
};
const AWKS = new Set(['awk', 'gawk', 'mawk', 'nawk', 'busybox-awk']);
/** Commands that read commands to run from their input. */
const STDIN_RUNNERS = new Set(['at', 'batch']);

interface WrapperSpec {
  /** Options that take a value (short letters as `-u`, long as `--user`). */
  readonly values: ReadonlySet<string>;
  /** Positional arguments before the command (`timeout DURATION cmd`, `chroot DIR cmd`). */
  readonly positional?: number;
  /** An option whose value is a shell command (`su -c`, `runuser -c`, `flock -c`, `script -c`). */
  readonly script?: ReadonlySet<string>;
  /** All remaining arguments are joined into a shell command (`watch`). */
  readonly joinsScript?: boolean;
  /** Options after which the command runs through the target user's shell (`sudo -s`, `sudo -i`). */
  readonly viaShell?: ReadonlySet<string>;
  /** Takes no command (`su` without -c opens a shell). */
  readonly noCommand?: boolean;
  /** Appends arguments read from its input (`xargs`). */
  readonly appendsInput?: boolean;
}

const spec = (values: string[], extra: Partial<WrapperSpec> = {}): WrapperSpec => ({
  values: new Set(values),
  ...extra,
});

const WRAPPERS: Record<string, WrapperSpec> = {
  sudo: spec(
    [
      '-u',
      '--user',
      '-g',
      '--group',
      '-C',
      '--close-from',
      '-D',
      '--chdir',
      '-h',
      '--host',
      '-p',
      '--prompt',
      '-r',
      '--role',
      '-t',
      '--type',
      '-U',
      '--other-user',
      '-T',
      '--command-timeout',
      '-R',
      '--chroot',
    ],
    {
      viaShell: new Set(['-s', '--shell', '-i', '--login']),
    },
  ),
  doas: spec(['-u', '-C'], { viaShell: new Set(['-s']) }),
  su: spec(['-s', '--shell', '-g', '--group', '-G', '--supp-group', '-w', '--whitelist-environment'], {
    script: new Set(['-c', '--command', '--session-command']),
    noCommand: true,
  }),
  runuser: spec(['-u', '--user', '-s', '--shell', '-g', '--group', '-G', '--supp-group', '-w'], {
    script: new Set(['-c', '--command', '--session-command']),
  }),
  pkexec: spec(['--user']),
  sg: spec([], { script: new Set(['-c']), positional: 1 }),
  env: spec(['-u', '--unset', '-C', '--chdir', '-S', '--split-string']),
  nice: spec(['-n', '--adjustment']),
  ionice: spec(['-c', '--class', '-n', '--classdata', '-p', '--pid', '-P', '--pgid', '-u', '--uid']),
  timeout: spec(['-s', '--signal', '-k', '--kill-after'], { positional: 1 }),
  stdbuf: spec(['-i', '--input', '-o', '--output', '-e', '--error']),
  chroot: spec(['--userspec', '--groups'], { positional: 1 }),
  nohup: spec([]),
  setsid: spec([]),
  exec: spec(['-a']),
  command: spec([]),
  builtin: spec([]),
  time: spec(['-f', '--format', '-o', '--output']),
  strace: spec(['-o', '-p', '-e', '-s', '-u', '-E', '-P', '-S', '-a', '-b', '-I', '-X']),
  ltrace: spec(['-o', '-p', '-e', '-s', '-u', '-n', '-a']),
  flock: spec(['-w', '--timeout', '-E', '--conflict-exit-code'], {
    script: new Set(['-c', '--command']),
    positional: 1,
  }),
  xargs: spec(
    [
      '-I',
      '-i',
      '-n',
      '--max-args',
      '-P',
      '--max-procs',
      '-d',
      '--delimiter',
      '-E',
      '-L',
      '-s',
      '-a',
      '--arg-file',
    ],
    {
      appendsInput: true,
    },
  ),
  watch: spec(['-n', '--interval', '-d', '--differences', '-q', '--equexit'], { joinsScript: true }),
  script: spec(
    ['-E', '--echo', '-O', '--log-out', '-I', '--log-in', '-T', '--log-timing', '-B', '--log-io', '-m'],
    {
      script: new Set(['-c', '--command']),
      noCommand: true,
    },
  ),
  unshare: spec([
    '-S',
    '--setuid',
    '-G',
    '--setgid',
    '-w',
    '--wd',
    '-R',
    '--root',
    '--map-user',
    '--map-group',
  ]),
  nsenter: spec(['-t', '--target', '-S', '--setuid', '-G', '--setgid', '-w', '--wd', '-r', '--root']),
  setpriv: spec([
    '--reuid',
    '--regid',
    '--groups',
    '--inh-caps',
    '--ambient-caps',
    '--bounding-set',
    '--securebits',
    '--selinux-label',
    '--apparmor-profile',
  ]),
  chrt: spec([], { positional: 1 }),
  taskset: spec([], { positional: 1 }),
  'systemd-run': spec([
    '-p',
    '--property',
    '-u',
    '--unit',
    '-M',
    '--machine',
    '-H',
    '--host',
    '--uid',
    '--gid',
    '--nice',
    '-E',
    '--setenv',
    '--working-directory',
    '--description',
    '--slice',
    '--on-calendar',
    '--on-active',
    '--timer-property',
  ]),
  busybox: spec([]),
  caffeinate: spec([]),
};

const POWER_COMMANDS = new Set(['shutdown', 'reboot', 'halt', 'poweroff', 'kexec']);
const POWER_VERBS = new Set([
  'reboot',
  'poweroff',
  'halt',
  'kexec',
  'suspend',
  'hibernate',
  'hybrid-sleep',
  'suspend-then-hibernate',
  'soft-reboot',
  'emergency',
  'rescue',
]);
const POWER_TARGETS = new Set([
  'poweroff',
  'reboot',
  'halt',
  'kexec',
  'ctrl-alt-del',
  'rescue',
  'emergency',
  'shutdown',
  'soft-reboot',
  'suspend',
  'hibernate',
  'hybrid-sleep',
  'suspend-then-hibernate',
  'sleep',
  'final',
  'exit',
]);
const UNIT_VERBS = new Set([
  'isolate',
  'start',
  'restart',
  'try-restart',
  'reload-or-restart',
  'try-reload-or-restart',
  'force-reload',
  'condrestart',
  'enable',
  'set-default',
]);
const DEVICE =
  /^\/dev\/(sd|hd|vd|xvd|nvme|mmcblk|disk\/|dm-|md|mapper\/|loop|nbd|rbd|zd|mtd|sr|mem$|kmem$|port$)|^\/proc\/sysrq-trigger$/;
const DEVICE_SAMPLES = [
  '/dev/sda',
  '/dev/nvme0n1',
  '/dev/vda',
  '/dev/xvda',
  '/dev/mmcblk0',
  '/dev/mapper/root',
  '/dev/disk/by-id/x',
  '/dev/md0',
  '/dev/dm-0',
  '/dev/mem',
  '/proc/sysrq-trigger',
];
const ROOT_SAMPLES = ['/', '/.', '/*', '//'];
const DEVICE_WRITERS = new Set([
  'tee',
  'shred',
  'wipefs',
  'blkdiscard',
  'cp',
  'mv',
  'install',
  'pv',
  'badblocks',
]);
const FORK_BOMBS = [
  /(?:^|[\s;&|(])([^\s(){};&|]+)\s*\(\s*\)\s*\{[^}]*?\1\s*\|\s*\1\s*&/,
  /\bfunction\s+([^\s(){};&|]+)\s*(?:\(\s*\))?\s*\{[^}]*?\1\s*\|\s*\1\s*&/,
];

/** Could the word be one of `samples` (its unknown parts standing for any text)? */
function mayBe(word: ShellWord, samples: readonly string[], test: (value: string) => boolean): boolean {
  if (word.static && !word.glob) return test(word.value);
  if (!word.value.includes(UNKNOWN) && !word.glob) return test(word.value);
  const escaped = word.value
    .split(UNKNOWN)
    .map((part) =>
      part.replace(/[.*+?^${}()|[\]\\]/g, (c) =>
        word.glob && (c === '*' || c === '?') ? `.${c === '*' ? '*' : ''}` : `\\${c}`,
      ),
    )
    .join('.*');
  const pattern = new RegExp(`^${escaped}$`, 's');
  return samples.some((s) => pattern.test(s)) || test(word.value.replaceAll(UNKNOWN, ''));
}

/** `/`, `//`, `/.`, `/..`, `/*` and similar spellings of the whole file system. */
function isRootPath(path: string): boolean {
  if (!path.startsWith('/')) return false;
  const normal = posix.normalize(path).replace(/\/+$/, '') || '/';
  if (normal === '/' || normal === '/*' || normal === '/.*') return true;
  // A glob in the first segment (`/[a-z]*`, `/?*`) expands to top-level directories.
  return /^\/[^/]*[*?[][^/]*$/.test(normal);
}

/**
 * The paths a relative target may designate, given the directories the shell may be in; `unknown`
 * is set when one of those directories is not known (or is the login directory and the target
 * climbs out of it: `..` from /root is `/`).
 */
function resolveTargets(target: string, cwds: ReadonlySet<string>): { paths: string[]; unknown: boolean } {
  if (target.startsWith('/')) return { paths: [target], unknown: false };
  const paths: string[] = [];
  let unknown = false;
  for (const cwd of cwds) {
    if (cwd === 'unknown') unknown = true;
    else if (cwd === 'home') {
      if (onlyDotsAndGlobs(target) && posix.normalize(target).split('/').includes('..')) unknown = true;
    } else paths.push(posix.join(cwd, target));
  }
  return { paths, unknown };
}

/** True when every segment of `target` is `.`, `..` or glob-only: it may name the directory itself or one above. */
function onlyDotsAndGlobs(target: string): boolean {
  return posix
    .normalize(target)
    .split('/')
    .filter((segment) => segment !== '')
    .every((segment) => segment === '.' || segment === '..' || /^[*?[\]!.]+$/.test(segment));
}

interface Judgement {
  ruleId: string;
  reason: string;
  command?: string;
}

/** Per check: configuration, session state, and the scripts seen (for patterns and fork bombs). */
class Checker {
  readonly disabled: ReadonlySet<string>;
  readonly scripts: string[] = [];
  constructor(
    readonly guardrails: Guardrails,
    readonly state: ShellState,
    readonly interactive: boolean,
  ) {
    this.disabled = new Set(guardrails.config.disabledDefaults);
  }

  private on(rule: DefaultRuleId): boolean {
    return !this.disabled.has(rule);
  }

  private dynamic(reason: string, command?: string): Judgement | undefined {
    if (!this.on('dynamic-command') && !this.guardrails.allowList) return undefined;
    return { ruleId: 'dynamic-command', reason, ...(command ? { command } : {}) };
  }

  /** Judges shell text (the command, or a script nested in it). */
  script(text: string, depth: number, allowIncomplete: boolean): Judgement | undefined {
    if (depth > MAX_SCRIPT_DEPTH) return { ruleId: 'unparseable', reason: 'scripts are nested too deep' };
    this.scripts.push(text);
    if (this.on('fork-bomb') && FORK_BOMBS.some((re) => re.test(text)))
      return { ruleId: 'fork-bomb', reason: 'fork bomb' };
    const script = parseShell(text);
    for (const name of script.assignedPlainly) this.state.assigned.add(name);
    for (const command of script.commands) {
      const found = this.command(command, depth, script.assignedPlainly);
      if (found) return found;
    }
    if (script.errors && this.guardrails.config.blockUnparseable && !(allowIncomplete && script.incomplete)) {
      return {
        ruleId: 'unparseable',
        reason: 'the command has an open quote or substitution, or nests too deep',
      };
    }
    return undefined;
  }

  private command(
    command: ShellCommand,
    depth: number,
    assignedHere: ReadonlySet<string>,
  ): Judgement | undefined {
    const text = command.words.map((w) => w.raw).join(' ');
    for (const redirect of command.redirects) {
      const found = this.redirect(redirect.op, redirect.target, text);
      if (found) return found;
    }
    const all = [
      ...command.words,
      ...command.assignments.map((a) => a.value),
      ...command.redirects.flatMap((r) => (r.target ? [r.target] : [])),
    ];
    // A variable set earlier in the same text (or an earlier line) hides a word from every rule.
    const hidden = all.find((w) =>
      w.variables.some((v) => assignedHere.has(v) || (this.interactive && this.state.assigned.has(v))),
    );
    if (hidden)
      return this.dynamic(
        `"${hidden.raw}" uses a variable set in the same command; write the value itself`,
        text,
      );
    if (this.interactive) {
      const history = command.words.find((w) => w.history);
      if (history) return this.dynamic(`"${history.raw}" re-runs history; type the command itself`, text);
    }
    if (command.words.length === 0) return undefined;
    return this.argv(command.words, command, depth, text);
  }

  private redirect(op: string, target: ShellWord | undefined, command: string): Judgement | undefined {
    if (!target || !/>/.test(op) || /^\d+$|^-$/.test(target.value)) return undefined;
    if (this.guardrails.allowList && target.value !== '/dev/null' && !/^&/.test(op)) {
      return {
        ruleId: 'not-allowed',
        reason: 'writing files by redirection is not allowed on this target',
        command,
      };
    }
    if (this.on('device-write') && mayBe(target, DEVICE_SAMPLES, (v) => DEVICE.test(v))) {
      return target.static
        ? {
            ruleId: 'device-write',
            reason: 'writes raw data to a block device or kernel interface',
            command: `${command} ${op} ${target.value}`,
          }
        : this.dynamic(
            `the redirection target "${target.raw}" is computed at run time and may be a device`,
            command,
          );
    }
    return undefined;
  }

  /** Judges one command line `words` (after assignments), looking through wrappers. */
  private argv(
    input: readonly ShellWord[],
    command: ShellCommand,
    depth: number,
    text: string,
  ): Judgement | undefined {
    let words = [...input];
    for (let guard = 0; guard < 32 && words.length > 0; guard++) {
      const first = words[0]!;
      if (!first.static || first.glob) {
        return this.dynamic(`the command name "${first.raw}" is computed at run time`, text);
      }
      const name = commandName(first.value);
      const args = words.slice(1);
      const shown = words.map((w) => (w.static ? w.value : w.raw)).join(' ');
      const allowed = this.allowListed(first.value, args);
      if (allowed) return { ...allowed, command: shown };
      if (SHELLS.has(name)) return this.shell(args, command, depth, shown);
      if (name === 'busybox' && args[0]?.static && SHELLS.has(args[0].value)) {
        words = args;
        continue;
      }
      if (name === 'eval') return this.nested(args, depth, shown, 'eval');
      if (name === 'alias') {
        for (const arg of args) {
          const at = arg.value.indexOf('=');
          if (at < 0) continue;
          if (!arg.static) return this.dynamic('the alias value is computed at run time', shown);
          const found = this.script(arg.value.slice(at + 1), depth + 1, false);
          if (found) return found;
        }
        return undefined;
      }
      if (name === 'fc' && this.interactive)
        return this.dynamic('fc re-runs history; type the command itself', shown);
      if (
        (name === 'source' || name === '.') &&
        args[0] &&
        (!args[0].static || /^\/(dev\/stdin|dev\/fd\/|proc\/self\/fd\/)/.test(args[0].value))
      ) {
        return this.dynamic('source of text produced at run time', shown);
      }
      if (name in INTERPRETERS) return this.interpreter(name, args, command, shown);
      if (AWKS.has(name)) return this.awk(args, shown);
      if (STDIN_RUNNERS.has(name)) return this.stdinRunner(command, depth, shown);
      const wrapper = WRAPPERS[name];
      if (wrapper) {
        const next = this.unwrap(name, wrapper, args, depth, shown);
        if (next === undefined || 'ruleId' in next) return next;
        words = next.words;
        continue;
      }
      if (name === 'cd' || name === 'pushd' || name === 'popd') {
        this.changeDirectory(name, args);
        return undefined;
      }
      if (name === 'find') return this.find(args, command, depth, shown);
      return this.defaults(name, args, shown);
    }
    return undefined;
  }

  /** `allow` mode: the command (and its first argument when listed) must be on the list. */
  private allowListed(path: string, args: readonly ShellWord[]): Judgement | undefined {
    const list = this.guardrails.allowList;
    if (!list) return undefined;
    const key = list.has(path)
      ? path
      : list.has(commandName(path)) && !path.includes('/')
        ? commandName(path)
        : undefined;
    if (key === undefined)
      return {
        ruleId: 'not-allowed',
        reason: `${commandName(path)} is not in the allow list of this target`,
      };
    const computed = args.find((a) => !a.static || a.glob);
    if (computed) return { ruleId: 'dynamic-command', reason: `"${computed.raw}" is computed at run time` };
    const subcommands = list.get(key);
    if (subcommands) {
      const sub = args.find((a) => !a.value.startsWith('-'));
      if (!sub || !subcommands.includes(sub.value)) {
        return {
          ruleId: 'not-allowed',
          reason: `${key} ${sub?.value ?? ''} is not in the allow list of this target`.trim(),
        };
      }
    }
    return undefined;
  }

  /** A script given as words (`eval a b`, `watch a b`): joined with spaces, as the shell does. */
  private nested(
    args: readonly ShellWord[],
    depth: number,
    shown: string,
    what: string,
  ): Judgement | undefined {
    const computed = args.find((a) => !a.static);
    if (computed) return this.dynamic(`the text given to ${what} is computed at run time`, shown);
    return this.script(args.map((a) => a.value).join(' '), depth + 1, false);
  }

  private shell(
    args: readonly ShellWord[],
    command: ShellCommand,
    depth: number,
    shown: string,
  ): Judgement | undefined {
    let script: ShellWord | undefined;
    let takesScript = false;
    let operand: ShellWord | undefined;
    let readsStdin = false;
    for (let i = 0; i < args.length; i++) {
      const arg = args[i]!;
      if (!arg.static) {
        if (takesScript && script === undefined) script = arg;
        else if (operand === undefined) operand = arg;
        break;
      }
      const v = arg.value;
      if (v === '--' || v === '-') {
        if (takesScript) script = args[i + 1];
        else operand = args[i + 1];
        if (v === '-') readsStdin = true;
        break;
      }
      if (/^[-+]o$/.test(v) || v === '-O' || v === '+O' || v === '--rcfile' || v === '--init-file') {
        i++;
        continue;
      }
      if (/^-[A-Za-z]+$/.test(v)) {
        if (v.includes('c')) takesScript = true;
        if (v.includes('s')) readsStdin = true;
        continue;
      }
      if (v.startsWith('--') || /^\+[A-Za-z]+$/.test(v)) continue;
      if (takesScript) script = arg;
      else operand = arg;
      break;
    }
    if (takesScript) {
      if (!script) return undefined;
      if (!script.static) return this.dynamic('the script given to the shell is computed at run time', shown);
      return this.script(script.value, depth + 1, false);
    }
    if (operand && !readsStdin) {
      if (!operand.static || /^\/(dev\/stdin|dev\/fd\/|proc\/self\/fd\/)/.test(operand.value)) {
        return this.dynamic('the shell runs a script produced at run time', shown);
      }
      // A script file: its content is not visible to the checker (see docs/guardrails.md).
      return undefined;
    }
    return this.stdinRunner(command, depth, shown);
  }

  /** A command that runs the text on its standard input (a shell without a script, `at`). */
  private stdinRunner(command: ShellCommand, depth: number, shown: string): Judgement | undefined {
    const input = command.redirects.find((r) => r.input !== undefined);
    if (input?.input) {
      if (!input.input.static)
        return this.dynamic('the script fed to the shell is computed at run time', shown);
      return this.script(input.input.value, depth + 1, false);
    }
    if (command.pipedInput || command.redirects.some((r) => r.op === '<' || r.op === '<&')) {
      return this.dynamic(
        'a shell reading its script from a pipe or file runs text the checker cannot see',
        shown,
      );
    }
    return undefined;
  }

  private interpreter(
    name: string,
    args: readonly ShellWord[],
    command: ShellCommand,
    shown: string,
  ): Judgement | undefined {
    if (!this.on('interpreter')) return undefined;
    const inline = INTERPRETERS[name]!;
    const refuse = { ruleId: 'interpreter', reason: `code run by ${name} cannot be checked`, command: shown };
    for (const arg of args) {
      if (!arg.static) return refuse;
      if (
        inline.has(arg.value) ||
        [...inline].some(
          (o) =>
            o.startsWith('-') &&
            o.length === 2 &&
            /^-[A-Za-z]+$/.test(arg.value) &&
            arg.value.endsWith(o[1]!),
        )
      ) {
        return refuse;
      }
      if (arg.value === '-') return refuse;
      if (!arg.value.startsWith('-')) return undefined; // a script file
    }
    // No script file: it reads its program from its input.
    if (command.pipedInput || command.redirects.some((r) => r.input !== undefined || r.op === '<'))
      return refuse;
    return undefined;
  }

  private awk(args: readonly ShellWord[], shown: string): Judgement | undefined {
    if (!this.on('interpreter')) return undefined;
    const program = args.find(
      (a, i) => !a.value.startsWith('-') && !['-f', '-v', '-F'].includes(args[i - 1]?.value ?? ''),
    );
    if (!program) return undefined;
    if (!program.static || /\bsystem\s*\(|\|\s*getline|\bprintf?\b[^;]*\|/.test(program.value)) {
      return {
        ruleId: 'interpreter',
        reason: 'awk programs that run commands cannot be checked',
        command: shown,
      };
    }
    return undefined;
  }

  /** Looks through a wrapper: the wrapped command's words, or a verdict on its script. */
  private unwrap(
    name: string,
    wrapper: WrapperSpec,
    args: readonly ShellWord[],
    depth: number,
    shown: string,
  ): { words: ShellWord[] } | Judgement | undefined {
    let i = 0;
    let viaShell = false;
    let script: ShellWord | undefined;
    const takesValue = (option: string) => wrapper.values.has(option);
    while (i < args.length) {
      const arg = args[i]!;
      if (!arg.static) return this.dynamic(`the options of ${name} are computed at run time`, shown);
      const v = arg.value;
      if (v === '--') {
        i++;
        break;
      }
      if (name === 'env' && /^[A-Za-z_][A-Za-z0-9_]*=/.test(v)) {
        i++;
        continue;
      }
      if (name === 'env' && (v === '-S' || v.startsWith('--split-string'))) {
        const inline = v.startsWith('--split-string=') ? v.slice(15) : undefined;
        const rest = args.slice(inline === undefined ? i + 2 : i + 1);
        const head = inline ?? args[i + 1]?.value ?? '';
        if (inline === undefined && args[i + 1] && !args[i + 1]!.static)
          return this.dynamic('env -S text is computed at run time', shown);
        return this.nested([{ ...args[i]!, value: head, raw: head }, ...rest], depth, shown, 'env -S');
      }
      if (!v.startsWith('-') || v === '-') {
        if (name === 'su' || name === 'runuser') {
          // su [options] [-] [user] [args]: the user, then options again.
          i++;
          continue;
        }
        break;
      }
      if (v.startsWith('--')) {
        const [option, inline] = v.includes('=')
          ? [v.slice(0, v.indexOf('=')), v.slice(v.indexOf('=') + 1)]
          : [v, undefined];
        if (wrapper.script?.has(option)) {
          script = inline !== undefined ? { ...arg, value: inline } : args[++i];
        } else if (wrapper.viaShell?.has(option)) viaShell = true;
        else if (takesValue(option) && inline === undefined) i++;
        i++;
        continue;
      }
      // A cluster of short options (`-iu root`): a letter taking a value ends the cluster.
      let consumed = false;
      for (let k = 1; k < v.length; k++) {
        const option = `-${v[k]}`;
        if (wrapper.script?.has(option)) {
          script = k + 1 < v.length ? { ...arg, value: v.slice(k + 1) } : args[++i];
          consumed = true;
          break;
        }
        if (wrapper.viaShell?.has(option)) viaShell = true;
        if (takesValue(option)) {
          if (k + 1 === v.length) i++;
          consumed = true;
          break;
        }
      }
      void consumed;
      i++;
    }
    if (script !== undefined) {
      if (!script.static) return this.dynamic(`the command given to ${name} is computed at run time`, shown);
      return this.script(script.value, depth + 1, false);
    }
    let rest = args.slice(i);
    if (wrapper.joinsScript) return rest.length ? this.nested(rest, depth, shown, name) : undefined;
    if (name === 'sg' && rest.length >= 2) return this.nested(rest.slice(1), depth, shown, name);
    rest = rest.slice(wrapper.positional ?? 0);
    if (rest.length === 0) return undefined;
    if (viaShell) return this.nested(rest, depth, shown, name);
    if (wrapper.noCommand) return undefined;
    if (wrapper.appendsInput)
      rest = [
        ...rest,
        { value: UNKNOWN, static: false, glob: false, variables: [], history: false, raw: '<input>' },
      ];
    return { words: rest };
  }

  private changeDirectory(name: string, args: readonly ShellWord[]): void {
    const target = args.find((a) => !a.value.startsWith('-') || a.value === '-');
    if (name === 'popd' || target?.value === '-' || (target && !target.static)) {
      this.state.cwds.add('unknown');
      return;
    }
    if (!target || target.value === '~' || target.value.startsWith('~/')) {
      this.state.cwds.add('home');
      return;
    }
    const next = resolveTargets(target.value, this.state.cwds);
    if (next.unknown) this.state.cwds.add('unknown');
    for (const path of next.paths) this.state.cwds.add(posix.normalize(path));
    // A relative cd from the login directory lands somewhere the checker cannot name.
    if (!target.value.startsWith('/') && this.state.cwds.has('home')) this.state.cwds.add('unknown');
  }

  /** `find PATH... EXPR`: `-delete` is a recursive delete of PATH; `-exec CMD {} ;` runs CMD. */
  private find(
    args: readonly ShellWord[],
    command: ShellCommand,
    depth: number,
    shown: string,
  ): Judgement | undefined {
    let i = 0;
    while (i < args.length && args[i]!.value.startsWith('-') && /^-[HLP]$|^-D$|^-O\d$/.test(args[i]!.value))
      i += args[i]!.value === '-D' ? 2 : 1;
    const paths: ShellWord[] = [];
    while (i < args.length && !/^[-(!)]/.test(args[i]!.value)) paths.push(args[i++]!);
    const expression = args.slice(i);
    const starts =
      paths.length > 0
        ? paths
        : [{ value: '.', static: true, glob: false, variables: [], history: false, raw: '.' }];
    if (expression.some((a) => a.value === '-delete')) {
      const found = this.removesRoot(starts, shown);
      if (found) return found;
    }
    for (let k = 0; k < expression.length; k++) {
      if (!['-exec', '-execdir', '-ok', '-okdir'].includes(expression[k]!.value)) continue;
      const end = expression.findIndex((a, j) => j > k && (a.value === ';' || a.value === '+'));
      const inner = expression.slice(k + 1, end < 0 ? undefined : end);
      // `{}` is each file found, the start paths included.
      for (const start of starts) {
        const words = inner.map((w) =>
          w.value.includes('{}') && start.static ? { ...w, value: w.value.replaceAll('{}', start.value) } : w,
        );
        const found = this.argv(words, { ...command, words, redirects: [] }, depth, shown);
        if (found) return found;
      }
      if (end < 0) break;
      k = end;
    }
    return this.defaults('find', args, shown);
  }

  /** A recursive delete of `targets`: the root file system, or a path that may be it. */
  private removesRoot(targets: readonly ShellWord[], shown: string): Judgement | undefined {
    if (!this.on('rm-root')) return undefined;
    const refuse = { ruleId: 'rm-root', reason: 'recursive delete of the root file system', command: shown };
    for (const target of targets) {
      if (!target.static) {
        const rootish =
          mayBe(target, ROOT_SAMPLES, isRootPath) ||
          (target.value.startsWith(UNKNOWN) && !target.value.includes('/', 1)) ||
          target.value === UNKNOWN;
        if (rootish)
          return this.dynamic(
            `the delete target "${target.raw}" is computed at run time and may be /`,
            shown,
          );
        continue;
      }
      const resolved = resolveTargets(target.value, this.state.cwds);
      if ([target.value, ...resolved.paths].some(isRootPath)) return refuse;
      if (resolved.unknown && onlyDotsAndGlobs(target.value)) {
        return this.dynamic(`"${target.value}" is relative to a directory the checker cannot know`, shown);
      }
    }
    return undefined;
  }

  private defaults(name: string, args: readonly ShellWord[], shown: string): Judgement | undefined {
    if (name === 'rm') {
      let recursive = false;
      let optionsDone = false;
      const targets: ShellWord[] = [];
      for (const arg of args) {
        const v = arg.value;
        if (!optionsDone && v === '--no-preserve-root' && this.on('rm-root')) recursive = true;
        if (!optionsDone && v === '--') optionsDone = true;
        else if (!optionsDone && v === '--recursive') recursive = true;
        else if (!optionsDone && arg.static && /^-[A-Za-z]+$/.test(v)) recursive ||= /[rR]/.test(v);
        else if (!optionsDone && arg.static && v.startsWith('--')) continue;
        else targets.push(arg);
      }
      if (args.some((a) => a.value === '--no-preserve-root') && this.on('rm-root')) {
        return { ruleId: 'rm-root', reason: 'recursive delete of the root file system', command: shown };
      }
      if (recursive) {
        const found = this.removesRoot(targets, shown);
        if (found) return found;
      }
    }
    if (this.on('mkfs') && /^(mkfs|mke2fs|mkswap|mkdosfs|mkntfs)/.test(name)) {
      return { ruleId: 'mkfs', reason: 'creates a file system (erases a device)', command: shown };
    }
    if (this.on('power')) {
      const power = this.power(name, args);
      if (power === 'dynamic')
        return this.dynamic('the arguments of a power-management command are computed at run time', shown);
      if (power) return { ruleId: 'power', reason: 'shuts down or reboots the host', command: shown };
    }
    if (
      this.on('kubectl-delete') &&
      (name === 'kubectl' || name === 'oc') &&
      args.some((a) => a.value === 'delete')
    ) {
      return { ruleId: 'kubectl-delete', reason: 'deletes Kubernetes resources', command: shown };
    }
    if (name === 'dd' && this.on('dd-device')) {
      for (const arg of args) {
        if (!arg.value.startsWith('of=') && !arg.value.startsWith(UNKNOWN)) continue;
        const target = { ...arg, value: arg.value.startsWith('of=') ? arg.value.slice(3) : arg.value };
        if (mayBe(target, DEVICE_SAMPLES, (v) => DEVICE.test(v))) {
          return arg.static
            ? { ruleId: 'dd-device', reason: 'writes raw data to a block device', command: shown }
            : this.dynamic('the output of dd is computed at run time and may be a device', shown);
        }
      }
    }
    if (DEVICE_WRITERS.has(name) && this.on('device-write')) {
      const targets = args.filter((a) => !a.value.startsWith('-'));
      const written = name === 'cp' || name === 'mv' || name === 'install' ? targets.slice(-1) : targets;
      const device = written.find((a) => mayBe(a, DEVICE_SAMPLES, (v) => DEVICE.test(v)));
      if (device) {
        return device.static
          ? {
              ruleId: 'device-write',
              reason: 'writes raw data to a block device or kernel interface',
              command: shown,
            }
          : this.dynamic(`"${device.raw}" is computed at run time and may be a device`, shown);
      }
    }
    return undefined;
  }

  /** True for a power action; `dynamic` when it depends on computed arguments. */
  private power(name: string, args: readonly ShellWord[]): boolean | 'dynamic' {
    if (POWER_COMMANDS.has(name)) return true;
    const plain = args.filter((a) => !a.value.startsWith('-'));
    if (name === 'systemctl' || name === 'loginctl') {
      const verb = plain[0];
      if (!verb) return false;
      if (!verb.static) return 'dynamic';
      if (POWER_VERBS.has(verb.value)) return true;
      if (name === 'systemctl' && UNIT_VERBS.has(verb.value)) {
        for (const unit of plain.slice(1)) {
          if (!unit.static) return 'dynamic';
          const base = unit.value.replace(/\.target$/, '');
          if (
            POWER_TARGETS.has(base) &&
            (unit.value.endsWith('.target') || verb.value === 'isolate' || verb.value === 'set-default')
          )
            return true;
        }
      }
      return false;
    }
    if (name === 'init' || name === 'telinit') {
      const level = plain[0];
      if (level && !level.static) return 'dynamic';
      return level !== undefined && /^[0156sSqQ]$/.test(level.value) && !/^[qQ]$/.test(level.value);
    }
    return false;
  }
}

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
      const word = command.words.find((w) => !w.static || w.glob);
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
