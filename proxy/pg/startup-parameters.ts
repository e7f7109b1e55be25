/**
 * The client's startup parameters, checked before they reach the server. PostgreSQL applies
 * every startup parameter it does not reserve as a setting (`role=admin`,
 * `standard_conforming_strings=off`), and the `options` parameter carries more as command-line
 * switches (`-c role=admin`). Passed through unseen they would get around the guardrails that
 * check `SET`. So each one is checked as the `SET` statement it amounts to, with the session's
 * rules: anything but `allow` refuses the connection. `options` is parsed the way the server
 * parses it (whitespace-separated, backslash escapes), only `-c name=value` and `--name=value`
 * switches are accepted, and it is rebuilt from what was checked, so the server reads exactly that.
 * Pure: parameters in, parameters out.
 */
import type { Verdict } from '../guardrails/sql/index.ts';
import { PgStartupParameterError } from './errors.ts';

/** Parameters the proxy sets itself or handles before this check. */
const RESERVED = new Set(['user', 'database', 'replication', 'options']);
/** Longest `options` value accepted (the whole startup message is capped at 10,000 bytes). */
const MAX_OPTIONS = 4_096;

/**
 * Splits an `options` value into `[name, value]` settings (names with `-` read as `_`, as the
 * server does).
 * @throws PgStartupParameterError for a switch other than `-c`/`--name=value`, a setting without
 *   `=`, or a value longer than {@link MAX_OPTIONS}.
 */
export function parseOptionsParameter(options: string): [string, string][] {
  if (options.length > MAX_OPTIONS) throw new PgStartupParameterError('the options parameter is too long');
  // pg_split_opts: whitespace separates words, a backslash makes the next character literal.
  const words: string[] = [];
  let word = '';
  let inWord = false;
  for (let i = 0; i < options.length; i++) {
    let ch = options[i]!;
    if (ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r' || ch === '\f' || ch === '\v') {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
      continue;
    }
    if (ch === '\\' && i + 1 < options.length) ch = options[++i]!;
    word += ch;
    inWord = true;
  }
  if (inWord) words.push(word);

  const settings: [string, string][] = [];
  for (let i = 0; i < words.length; i++) {
    const current = words[i]!;
    let assignment: string;
    if (current === '-c') {
      if (i + 1 >= words.length) throw new PgStartupParameterError('options: -c needs name=value');
      assignment = words[++i]!;
    } else if (current.startsWith('-c')) {
      assignment = current.slice(2);
    } else if (current.startsWith('--')) {
      assignment = current.slice(2);
    } else {
      throw new PgStartupParameterError(
        `options: only -c name=value and --name=value are accepted through Warden (got "${current.slice(0, 40)}")`,
      );
    }
    const equals = assignment.indexOf('=');
    if (equals <= 0)
      throw new PgStartupParameterError(`options: "${assignment.slice(0, 40)}" is not name=value`);
    settings.push([assignment.slice(0, equals).replaceAll('-', '_'), assignment.slice(equals + 1)]);
  }
  return settings;
}

/** Writes settings back as an `options` value the server splits into exactly these settings. */
export function formatOptionsParameter(settings: readonly (readonly [string, string])[]): string {
  const protect = (text: string) => text.replace(/[\\\s]/g, (ch) => `\\${ch}`);
  return settings.map(([name, value]) => `-c ${protect(name)}=${protect(value)}`).join(' ');
}

/** The `SET` statement a setting amounts to, quoted so that the parser reads exactly it. */
export function settingAsStatement(name: string, value: string): string {
  return `SET "${name.replaceAll('"', '""')}" TO '${value.replaceAll("'", "''")}'`;
}

/**
 * Checks every setting the startup parameters make (other than the reserved `user`, `database`,
 * `replication`) with `check`, and returns the parameters to send upstream (`options` rebuilt
 * from what was checked).
 * @throws PgStartupParameterError naming the parameter and the rule that refused it.
 */
export function checkStartupParameters(
  parameters: ReadonlyMap<string, string>,
  check: (sql: string) => Verdict,
): Map<string, string> {
  const forwarded = new Map<string, string>();
  const settings: [string, string, 'parameter' | 'options'][] = [];
  for (const [name, value] of parameters) {
    if (!RESERVED.has(name)) settings.push([name, value, 'parameter']);
  }
  const options = parameters.get('options');
  const fromOptions = options === undefined ? [] : parseOptionsParameter(options);
  for (const [name, value] of fromOptions) settings.push([name, value, 'options']);

  for (const [name, value, source] of settings) {
    const verdict = check(settingAsStatement(name, value));
    if (verdict.action !== 'allow') {
      const where =
        source === 'options' ? `setting "${name}" in the options parameter` : `startup parameter "${name}"`;
      const rule = verdict.rule ? ` (rule ${verdict.rule})` : '';
      throw new PgStartupParameterError(
        `${where} is refused by Warden's guardrails${rule}: ${verdict.message ?? 'not allowed'}`,
      );
    }
    if (source === 'parameter') forwarded.set(name, value);
  }
  for (const name of ['user', 'database', 'replication']) {
    const value = parameters.get(name);
    if (value !== undefined) forwarded.set(name, value);
  }
  if (fromOptions.length > 0) forwarded.set('options', formatOptionsParameter(fromOptions));
  return forwarded;
}
