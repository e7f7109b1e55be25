/**
 * The command checker: judges each simple command of a shell reading (shell-syntax.ts) as what it
 * runs, looking through wrappers, reading scripts given to shells, `eval`, `alias` and
 * `find -exec`, resolving relative deletes against the directories the shell may be in, and
 * refusing what depends on text it cannot compute (see rules.ts for the rules and configuration).
 * About 700 lines: one class whose cases share the check's state; its data is in command-table.ts.
 */
import { posix } from 'node:path';
import {
  AWKS,
  DEVICE,
  DEVICE_SAMPLES,
  DEVICE_WRITERS,
  FORK_BOMBS,
  INTERPRETERS,
  POWER_COMMANDS,
  POWER_TARGETS,
  POWER_VERBS,
  ROOT_SAMPLES,
  SHELLS,
  STDIN_RUNNERS,
  UNIT_VERBS,
  WRAPPERS,
  type WrapperSpec,
} from './command-table.ts';
import type { DefaultRuleId, Guardrails, ShellState } from './rules.ts';
import { parseShell, type ShellCommand, type ShellWord, UNKNOWN } from './shell-syntax.ts';

/** Deepest nesting of scripts in scripts (`bash -c "sh -c '...'"`). */
const MAX_SCRIPT_DEPTH = 8;

/** The command name without its directory (`/usr/bin/rm` → `rm`). */
export function commandName(word: string): string {
  return word.slice(word.lastIndexOf('/') + 1);
}

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
export class Checker {
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
        {
          value: UNKNOWN,
          static: false,
          glob: false,
          variables: [],
          computed: [],
          history: false,
          raw: '<input>',
        },
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
        : [{ value: '.', static: true, glob: false, variables: [], computed: [], history: false, raw: '.' }];
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
