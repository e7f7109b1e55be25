/**
 * A small, conservative reading of POSIX shell text: enough to find every simple command a line
 * would run, including those behind `;`, `&&`, `||`, `|`, `&`, newlines, subshells, `$(...)`,
 * backticks, process substitution, `bash -c '...'`, `eval`, and wrappers such as `sudo`, `env`,
 * `nohup` or `timeout`. It does not expand variables or globs; a command whose name comes from a
 * variable is reported with its literal text.
 */

/** What a reading of shell text found. */
export interface ShellReading {
  /** Every simple command, wrappers and leading `VAR=value` removed, command name as written. */
  commands: string[][];
  /** Every script text read, the original first (for whole-text patterns such as fork bombs). */
  scripts: string[];
  /** False when a quote or substitution is left open, or nesting is too deep. */
  complete: boolean;
}

const MAX_DEPTH = 8;
const SEPARATORS = new Set([';', '&', '|', '\n', '(', ')']);
const KEYWORDS = new Set([
  '!',
  '{',
  '}',
  'then',
  'do',
  'else',
  'elif',
  'if',
  'while',
  'until',
  'time',
  'coproc',
]);
const SHELLS = new Set(['sh', 'bash', 'dash', 'zsh', 'ksh', 'ash', 'busybox']);
/** Wrappers whose options take a value (so the value is not mistaken for the command). */
const WRAPPER_OPTIONS_WITH_VALUE: Record<string, Set<string>> = {
  sudo: new Set(['-u', '-g', '-C', '-D', '-h', '-p', '-r', '-t', '-U', '-T', '-R']),
  doas: new Set(['-u', '-C']),
  env: new Set(['-u', '-C', '--unset', '--chdir']),
  nice: new Set(['-n', '--adjustment']),
  ionice: new Set(['-c', '-n', '-p', '-t']),
  timeout: new Set(['-s', '-k', '--signal', '--kill-after']),
  stdbuf: new Set(['-i', '-o', '-e']),
  chroot: new Set(['--userspec', '--groups']),
  watch: new Set(['-n', '-d', '--interval']),
  nohup: new Set(),
  exec: new Set(['-a']),
  command: new Set(),
  builtin: new Set(),
  setsid: new Set(),
  xargs: new Set(['-I', '-i', '-n', '-P', '-d', '-E', '-L', '-s', '-a']),
};
/** Wrappers that take one positional argument before the command. */
const WRAPPER_POSITIONAL: Record<string, number> = { timeout: 1, chroot: 1 };

/** The command name without its directory (`/usr/bin/rm` → `rm`). */
export function commandName(word: string): string {
  return word.slice(word.lastIndexOf('/') + 1);
}

/** Reads shell text into the simple commands it would run. */
export function readShell(text: string): ShellReading {
  const reading: ShellReading = { commands: [], scripts: [], complete: true };
  readScript(text, reading, 0);
  return reading;
}

function readScript(text: string, reading: ShellReading, depth: number): void {
  if (depth > MAX_DEPTH) {
    reading.complete = false;
    return;
  }
  reading.scripts.push(text);
  const nested = (inner: string) => readScript(inner, reading, depth + 1);
  for (const argv of splitCommands(text, reading, nested)) unwrap(argv, reading, nested);
}

/** Finds the end of a `$(`/`<(`-style group starting after its `(`; returns the index of `)` or -1. */
function findClose(text: string, from: number): number {
  let level = 1;
  for (let i = from; i < text.length; i++) {
    const c = text[i];
    if (c === '\\') i++;
    else if (c === "'") {
      const end = text.indexOf("'", i + 1);
      if (end === -1) return -1;
      i = end;
    } else if (c === '(') level++;
    else if (c === ')' && --level === 0) return i;
  }
  return -1;
}

function splitCommands(text: string, reading: ShellReading, nested: (inner: string) => void): string[][] {
  const commands: string[][] = [];
  let argv: string[] = [];
  let word: string | null = null;
  let skipNextWord = false;
  const endWord = () => {
    if (word !== null) {
      if (skipNextWord) skipNextWord = false;
      else argv.push(word);
    }
    word = null;
  };
  const endCommand = () => {
    endWord();
    if (argv.length > 0) commands.push(argv);
    argv = [];
  };
  const substitution = (i: number): number => {
    const close = findClose(text, i);
    if (close === -1) {
      reading.complete = false;
      nested(text.slice(i));
      return text.length;
    }
    nested(text.slice(i, close));
    word = (word ?? '') + text.slice(i - 2, close + 1);
    return close;
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '\\') {
      if (text[i + 1] !== '\n') word = (word ?? '') + (text[i + 1] ?? '');
      i++;
    } else if (c === "'") {
      const end = text.indexOf("'", i + 1);
      if (end === -1) {
        reading.complete = false;
        word = (word ?? '') + text.slice(i + 1);
        break;
      }
      word = (word ?? '') + text.slice(i + 1, end);
      i = end;
    } else if (c === '"') {
      word = word ?? '';
      let closed = false;
      for (i++; i < text.length; i++) {
        const d = text[i]!;
        if (d === '"') {
          closed = true;
          break;
        }
        if (d === '\\' && i + 1 < text.length) word += text[++i];
        else if (d === '$' && text[i + 1] === '(') i = substitution(i + 2);
        else if (d === '`') i = backtick(i);
        else word += d;
      }
      if (!closed) reading.complete = false;
    } else if (c === '`') {
      i = backtick(i);
    } else if ((c === '$' || c === '<' || c === '>') && text[i + 1] === '(') {
      i = substitution(i + 2);
    } else if (c === '>' || c === '<') {
      // A redirection: drop a file-descriptor number before it and the target word after it.
      if (word !== null && /^\d+$/.test(word)) word = null;
      endWord();
      while (text[i + 1] === '>' || text[i + 1] === '&' || text[i + 1] === '|') i++;
      if (text[i] === '&' && /[\d-]/.test(text[i + 1] ?? '')) {
        // `2>&1`, `>&-`: a descriptor, not a file name.
        while (/[\d-]/.test(text[i + 1] ?? '')) i++;
      } else {
        skipNextWord = true;
      }
    } else if (c === '#' && word === null) {
      const end = text.indexOf('\n', i);
      i = end === -1 ? text.length : end - 1;
    } else if (SEPARATORS.has(c)) {
      endCommand();
    } else if (c === ' ' || c === '\t' || c === '\r') {
      endWord();
    } else {
      word = (word ?? '') + c;
    }
  }
  endCommand();
  return commands;

  function backtick(i: number): number {
    let end = i + 1;
    while (end < text.length && text[end] !== '`') end += text[end] === '\\' ? 2 : 1;
    if (end >= text.length) {
      reading.complete = false;
      nested(text.slice(i + 1));
      return text.length;
    }
    nested(text.slice(i + 1, end).replace(/\\`/g, '`'));
    word = (word ?? '') + text.slice(i, end + 1);
    return end;
  }
}

function unwrap(input: string[], reading: ShellReading, nested: (inner: string) => void): void {
  let argv = input;
  for (let guard = 0; guard < 32 && argv.length > 0; guard++) {
    const first = argv[0]!;
    if (KEYWORDS.has(first) || /^[A-Za-z_][A-Za-z0-9_]*(\[[^\]]*\])?\+?=/.test(first)) {
      argv = argv.slice(1);
      continue;
    }
    const name = commandName(first);
    if (SHELLS.has(name) || name === 'su') {
      const index = argv.findIndex((arg, i) => i > 0 && /^-[A-Za-z]*c[A-Za-z]*$/.test(arg));
      if (index !== -1 && argv[index + 1] !== undefined) nested(argv[index + 1]!);
      if (name === 'busybox' && argv.length > 1 && index === -1) {
        argv = argv.slice(1);
        continue;
      }
      break;
    }
    if (name === 'eval') {
      nested(argv.slice(1).join(' '));
      return;
    }
    if (name === 'env' && argv.some((arg) => arg === '-S' || arg.startsWith('--split-string'))) {
      const index = argv.findIndex((arg) => arg === '-S' || arg.startsWith('--split-string'));
      const inline = argv[index]!.startsWith('--split-string=') ? argv[index]!.slice(15) : undefined;
      nested(
        [inline ?? argv[index + 1] ?? '', ...argv.slice(inline === undefined ? index + 2 : index + 1)].join(
          ' ',
        ),
      );
      return;
    }
    const withValue = WRAPPER_OPTIONS_WITH_VALUE[name];
    if (!withValue) break;
    let i = 1;
    while (i < argv.length && argv[i]!.startsWith('-') && argv[i] !== '--') {
      i += withValue.has(argv[i]!) ? 2 : 1;
    }
    if (argv[i] === '--') i++;
    if (name === 'env') while (i < argv.length && argv[i]!.includes('=')) i++;
    i += WRAPPER_POSITIONAL[name] ?? 0;
    argv = argv.slice(i);
  }
  if (argv.length > 0) reading.commands.push(argv);
}
