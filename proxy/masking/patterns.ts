/**
 * Custom patterns from configuration: regular expressions an operator adds for values the
 * built-in detectors do not know (employee ids, internal account numbers).
 *
 * Backtracking guard. JavaScript regular expressions backtrack, and an unlucky pattern can take
 * exponential time. Two defences:
 * 1. At load, patterns with a repeated group that holds a quantifier or an alternation (`(a+)+`,
 *    `(\w*x)*`, `(a|aa)*`) or with a back-reference are refused with `ERR_MASKING_PATTERN`;
 *    patterns are limited to {@link MAX_PATTERN_SOURCE} characters.
 * 2. At run time a pattern never sees more than {@link PATTERN_WINDOW} characters at once: a value
 *    is scanned in windows of that size overlapping by {@link PATTERN_OVERLAP}, so a pattern's
 *    worst case is paid per window, not per value, and a huge value costs time linear in its size.
 *    Consequence: a custom pattern finds matches of at most `PATTERN_OVERLAP` characters
 *    wherever they sit, and longer ones (up to `PATTERN_WINDOW`) only when they fall inside one
 *    window.
 */

import type { Span } from './detectors.ts';
import { MaskingConfigError } from './errors.ts';
import type { MaskStyle } from './styles.ts';

/** Longest accepted pattern source, in characters. */
export const MAX_PATTERN_SOURCE = 512;
/** Characters of a value a custom pattern sees at once. */
export const PATTERN_WINDOW = 4096;
/** Overlap between consecutive windows: the longest match found anywhere. */
export const PATTERN_OVERLAP = 256;

/** A compiled custom pattern. */
export interface CustomPattern {
  readonly name: string;
  /** Count and redaction label: `pattern:<name>`. */
  readonly label: string;
  readonly style: MaskStyle;
  readonly regex: RegExp;
}

const HAS_QUANTIFIER = 1;
const HAS_ALTERNATION = 2;

/**
 * True when a repeated group (`*`, `+`, `{n,m}`) holds a quantifier or an alternation
 * (`(a+)+`, `(a|aa)*`), or the pattern uses a back-reference: the shapes behind catastrophic
 * backtracking. Conservative on purpose: `(?:ab|cd)+` is refused too; write `(?:ab|cd)` without the
 * repeat or use a character class.
 */
function hasBacktrackingRisk(source: string): boolean {
  const stack: number[] = [];
  let inClass = false;
  for (let i = 0; i < source.length; i++) {
    const c = source[i];
    if (c === '\\') {
      if (!inClass && /[1-9k]/.test(source[i + 1] ?? '')) return true;
      i++;
      continue;
    }
    if (inClass) {
      if (c === ']') inClass = false;
      continue;
    }
    if (c === '[') inClass = true;
    else if (c === '(') stack.push(0);
    else if (c === ')') {
      const inner = stack.pop() ?? 0;
      const next = source[i + 1];
      const repeated = next === '*' || next === '+' || next === '{';
      if (repeated && inner !== 0) return true;
      if ((repeated || next === '?' || (inner & HAS_QUANTIFIER) !== 0) && stack.length > 0) {
        stack[stack.length - 1]! |= HAS_QUANTIFIER;
      }
    } else if (stack.length > 0 && (c === '*' || c === '+' || c === '{')) {
      stack[stack.length - 1]! |= HAS_QUANTIFIER;
    } else if (stack.length > 0 && c === '|') {
      stack[stack.length - 1]! |= HAS_ALTERNATION;
    }
  }
  return false;
}

/**
 * Compiles one custom pattern. `flags` may hold `i`, `m`, `s` and `u`; `g` is implied. Refuses
 * (with `ERR_MASKING_PATTERN`, naming `path`) a pattern that does not compile, is too long, risks
 * catastrophic backtracking or matches the empty string.
 */
export function compilePattern(
  name: string,
  source: string,
  flags: string,
  style: MaskStyle,
  path: string,
): CustomPattern {
  const fail = (why: string): never => {
    throw new MaskingConfigError(`${path}.regex`, why, 'ERR_MASKING_PATTERN');
  };
  if (source.length === 0 || source.length > MAX_PATTERN_SOURCE) {
    fail(`a pattern must have 1 to ${MAX_PATTERN_SOURCE} characters`);
  }
  let regex: RegExp;
  try {
    regex = new RegExp(source, `${flags}g`);
  } catch (error) {
    return fail(`not a valid regular expression (${(error as Error).message})`);
  }
  if (hasBacktrackingRisk(source)) {
    fail(
      'a repeated group holding a quantifier or an alternation, or a back-reference, can backtrack catastrophically; rewrite without it',
    );
  }
  if (new RegExp(source, flags.replace('g', '')).test('')) fail('the pattern matches the empty string');
  return { name, label: `pattern:${name}`, style, regex };
}

/** Finds the matches of `pattern` in `text`, scanning in bounded windows (see the module comment). */
export function findPatternMatches(text: string, pattern: CustomPattern): Span[] {
  const spans: Span[] = [];
  const { regex } = pattern;
  const step = PATTERN_WINDOW - PATTERN_OVERLAP;
  let lastEnd = 0;
  for (let offset = 0; offset < text.length; offset += step) {
    const window =
      offset === 0 && text.length <= PATTERN_WINDOW ? text : text.slice(offset, offset + PATTERN_WINDOW);
    regex.lastIndex = 0;
    let m = regex.exec(window);
    while (m) {
      const start = offset + m.index;
      const end = start + m[0].length;
      if (m[0].length === 0) regex.lastIndex++;
      else if (start >= lastEnd) {
        spans.push({ start, end });
        lastEnd = end;
      }
      m = regex.exec(window);
    }
    if (offset + PATTERN_WINDOW >= text.length) break;
  }
  return spans;
}
