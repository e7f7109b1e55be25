/**
 * Content detectors: each finds the spans of one kind of sensitive value in a string.
 *
 * Every detector is linear in the input: the regular expressions have no nested or overlapping
 * quantifiers, and the email detector is a hand-written scanner anchored on `@`. All character
 * classes are ASCII-only (no `\s`, no `u` flag), so a detector run on Latin-1-decoded bytes never
 * matches inside a multi-byte UTF-8 sequence: spans always cover whole characters.
 */
import { isIbanValid, isLuhnValid, isSsnValid } from './checksums.ts';

/** A half-open range `[start, end)` of string indices. */
export interface Span {
  start: number;
  end: number;
}

/** Names of the built-in detectors, as used in configuration and in counts. */
export type DetectorName = 'card' | 'email' | 'ssn' | 'iban' | 'phone' | 'jwt' | 'api_key';

/** Every built-in detector name, in the order they run. */
export const DETECTOR_NAMES: readonly DetectorName[] = [
  'api_key',
  'jwt',
  'email',
  'card',
  'iban',
  'ssn',
  'phone',
];

/** Options of {@link findCards}. */
export interface CardOptions {
  /** Only report numbers whose prefix belongs to a common card network. Default `false`. */
  requireKnownIin?: boolean;
}

const CARD = /(?<![\dA-Za-z])\d(?:[ -]?\d){12,18}(?![\dA-Za-z])/g;
const NON_DIGIT = /\D/g;

/** Visa, Mastercard, Amex, Discover, JCB, Diners, UnionPay and Maestro prefixes. */
export function hasKnownIin(digits: string): boolean {
  const two = Number(digits.slice(0, 2));
  const three = Number(digits.slice(0, 3));
  const four = Number(digits.slice(0, 4));
  return (
    digits[0] === '4' ||
    (two >= 50 && two <= 55) ||
    (four >= 2221 && four <= 2720) ||
    two === 34 ||
    two === 37 ||
    (three >= 300 && three <= 305) ||
    two === 36 ||
    two === 38 ||
    two === 39 ||
    (four >= 3528 && four <= 3589) ||
    (two >= 56 && two <= 69)
  );
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function isHexOrDash(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102) || c === HYPHEN;
}

/** True when `[start, end)` lies in a UUID, whose last groups can be all digits. */
function isInsideUuid(text: string, start: number, end: number): boolean {
  let from = start;
  let to = end;
  while (from > 0 && end - from < 36 && isHexOrDash(text.charCodeAt(from - 1))) from--;
  while (to < text.length && to - start < 36 && isHexOrDash(text.charCodeAt(to))) to++;
  return to - from === 36 && UUID.test(text.slice(from, to));
}

/**
 * Finds payment card numbers: 13 to 19 digits, optionally grouped with single spaces or dashes,
 * that pass the Luhn check (all-zero numbers excepted). Digits glued to letters are not reported,
 * so hex strings and UUIDs do not yield false positives.
 */
export function findCards(text: string, options: CardOptions = {}): Span[] {
  const spans: Span[] = [];
  for (const m of text.matchAll(CARD)) {
    const digits = m[0].replace(NON_DIGIT, '');
    if (!isLuhnValid(digits) || /^0+$/.test(digits)) continue;
    if (isInsideUuid(text, m.index, m.index + m[0].length)) continue;
    if (options.requireKnownIin && !hasKnownIin(digits)) continue;
    spans.push({ start: m.index, end: m.index + m[0].length });
  }
  return spans;
}

const DOT = 46;
const HYPHEN = 45;
const MAX_LOCAL = 64;
const MAX_DOMAIN = 253;

function isAlnum(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
}

function isLocalChar(c: number): boolean {
  // RFC 5322 allows more, but these are the characters real addresses use.
  return isAlnum(c) || c === DOT || c === 95 || c === 37 || c === 43 || c === HYPHEN;
}

function isDomainChar(c: number): boolean {
  return isAlnum(c) || c === DOT || c === HYPHEN;
}

function isValidDomain(text: string, start: number, end: number): boolean {
  const domain = text.slice(start, end);
  if (domain.includes('..') || domain.startsWith('-') || domain.startsWith('.')) return false;
  const lastDot = domain.lastIndexOf('.');
  if (lastDot <= 0) return false;
  return /^[A-Za-z]{2,63}$/.test(domain.slice(lastDot + 1));
}

/**
 * Finds email addresses: a local part of up to 64 characters, `@`, and a dotted domain whose
 * last label is 2 to 63 letters. Scans outward from each `@`, so cost is linear in the input.
 */
export function findEmails(text: string): Span[] {
  const spans: Span[] = [];
  let at = text.indexOf('@');
  while (at !== -1) {
    let start = at;
    while (start > 0 && at - start < MAX_LOCAL && isLocalChar(text.charCodeAt(start - 1))) start--;
    while (start < at && text.charCodeAt(start) === DOT) start++;
    let end = at + 1;
    while (end < text.length && end - at <= MAX_DOMAIN && isDomainChar(text.charCodeAt(end))) end++;
    while (end > at + 1 && (text.charCodeAt(end - 1) === DOT || text.charCodeAt(end - 1) === HYPHEN)) end--;
    if (start < at && isValidDomain(text, at + 1, end)) {
      spans.push({ start, end });
      at = text.indexOf('@', end);
    } else {
      at = text.indexOf('@', at + 1);
    }
  }
  return spans;
}

const SSN = /(?<![\dA-Za-z-])(\d{3})-(\d{2})-(\d{4})(?![\dA-Za-z-])/g;

/** Finds US Social Security numbers written `AAA-GG-SSSS`, excluding never-issued ranges. */
export function findSsns(text: string): Span[] {
  const spans: Span[] = [];
  for (const m of text.matchAll(SSN)) {
    if (isSsnValid(m[1]!, m[2]!, m[3]!)) spans.push({ start: m.index, end: m.index + m[0].length });
  }
  return spans;
}

const IBAN = /(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}(?![A-Za-z0-9])/g;
const SPACES = / /g;

/**
 * Finds IBANs: country code, two check digits and up to 30 upper-case alphanumerics, optionally
 * grouped with single spaces, passing the mod-97 check. When a candidate fails, shorter
 * candidates ending at a group boundary are tried, so a trailing word (`... 00 BIC`) does not hide
 * the IBAN before it.
 */
export function findIbans(text: string): Span[] {
  const spans: Span[] = [];
  for (const m of text.matchAll(IBAN)) {
    let candidate = m[0];
    while (candidate.length >= 15) {
      if (isIbanValid(candidate.replace(SPACES, ''))) {
        spans.push({ start: m.index, end: m.index + candidate.length });
        break;
      }
      const lastSpace = candidate.lastIndexOf(' ');
      if (lastSpace === -1) break;
      candidate = candidate.slice(0, lastSpace);
    }
  }
  return spans;
}

const PHONE_INTERNATIONAL = /(?<![\w+])\+[1-9](?:[ .-]?(?:\(\d{1,4}\)|\d)){6,16}(?!\d)/g;
const PHONE_NANP =
  /(?<![\w.+-])(?:1[ .-]?)?(?:\(\d{3}\) ?\d{3}[ .-]\d{4}|\d{3}([ .-])\d{3}\1\d{4})(?!\w|[.-]\d)/g;
const PHONE_TRUNK = /(?<![\w.+-])0\d{2,4}([ -])\d{3,4}\1?\d{3,4}(?!\w|[.-]\d)/g;

/**
 * Sorts spans and keeps, of overlapping ones, the earliest; at the same start, the lowest `rank`
 * (the more specific detector), then the longest.
 */
export function dropOverlaps<T extends Span & { rank?: number }>(spans: T[]): T[] {
  spans.sort((a, b) => a.start - b.start || (a.rank ?? 0) - (b.rank ?? 0) || b.end - a.end);
  let cursor = 0;
  return spans.filter((span) => {
    if (span.start < cursor) return false;
    cursor = span.end;
    return true;
  });
}

function countDigits(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) n++;
  }
  return n;
}

/**
 * Finds phone numbers: E.164 (`+44 20 7946 0958`, 8 to 15 digits), North American
 * (`(415) 555-2671`, `415-555-2671`, `1 415 555 2671`) and trunk-prefixed national numbers
 * (`020 7946 0958`). Bare digit runs, dates, IP addresses and numbers glued to letters or dashes
 * (`ORD-415-555-2671`) are not reported.
 */
export function findPhones(text: string): Span[] {
  const spans: Span[] = [];
  for (const m of text.matchAll(PHONE_INTERNATIONAL)) {
    const digits = countDigits(m[0]);
    if (digits >= 8 && digits <= 15) spans.push({ start: m.index, end: m.index + m[0].length });
  }
  for (const m of text.matchAll(PHONE_NANP)) spans.push({ start: m.index, end: m.index + m[0].length });
  for (const m of text.matchAll(PHONE_TRUNK)) {
    const digits = countDigits(m[0]);
    if (digits >= 10 && digits <= 11) spans.push({ start: m.index, end: m.index + m[0].length });
  }
  return dropOverlaps(spans);
}

const JWT = /(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{2,2048}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*(?![A-Za-z0-9_-])/g;

function hasJwtHeader(segment: string): boolean {
  try {
    const header: unknown = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
    return (
      typeof header === 'object' &&
      header !== null &&
      typeof (header as Record<string, unknown>)['alg'] === 'string'
    );
  } catch {
    return false;
  }
}

/** Finds JSON Web Tokens: three base64url segments whose header decodes to JSON with `alg`. */
export function findJwts(text: string): Span[] {
  const spans: Span[] = [];
  for (const m of text.matchAll(JWT)) {
    if (hasJwtHeader(m[0].slice(0, m[0].indexOf('.')))) {
      spans.push({ start: m.index, end: m.index + m[0].length });
    }
  }
  return spans;
}

const API_KEY = new RegExp(
  [
    '(?<![A-Za-z0-9])(?:',
    '(?:AKIA|ASIA)[A-Z0-9]{16}',
    '|gh[pousr]_[A-Za-z0-9]{36,251}',
    '|github_pat_[A-Za-z0-9_]{22,255}',
    '|xox[abposr]-[A-Za-z0-9-]{10,250}',
    '|[sr]k_live_[A-Za-z0-9]{16,247}',
    '|AIza[0-9A-Za-z_-]{35}',
    ')(?![A-Za-z0-9])',
  ].join(''),
  'g',
);
const PEM_BEGIN = /-----BEGIN (?:[A-Z0-9]{1,16} ){0,3}PRIVATE KEY-----/g;
const PEM_END = /-----END (?:[A-Z0-9]{1,16} ){0,3}PRIVATE KEY-----/y;
/** A line of key material: base64, or an RFC 1421 header such as `Proc-Type: 4,ENCRYPTED`. */
const PEM_BODY_LINE = /^(?:[A-Za-z0-9+/=]*|[A-Za-z-]{1,40}: [ -~]*)\r?$/;

/** Where a private key block ends, and whether its text was cut before the block closed. */
export interface PrivateKeyBlock {
  end: number;
  /** True when the text ends inside the block (no END line, nothing but key material after BEGIN). */
  open: boolean;
}

/**
 * Follows a private key block whose BEGIN line ends at `from`: through lines of key material to
 * the END line. Without an END line, the block stops before the first line that is not key
 * material, or runs to the end of the text (then it is `open`).
 */
export function findPrivateKeyBlock(text: string, from: number): PrivateKeyBlock {
  let lineStart = from;
  for (;;) {
    const newline = text.indexOf('\n', lineStart);
    const lineEnd = newline === -1 ? text.length : newline;
    PEM_END.lastIndex = lineStart;
    if (PEM_END.test(text)) return { end: PEM_END.lastIndex, open: false };
    const line = text.slice(lineStart, lineEnd);
    if (lineStart > from && !PEM_BODY_LINE.test(line)) {
      // The block ends at the previous line break, which stays.
      return { end: lineStart - 1, open: false };
    }
    if (newline === -1) return { end: text.length, open: true };
    lineStart = newline + 1;
  }
}

/**
 * Finds API keys and secrets: AWS access key ids (`AKIA`/`ASIA`), GitHub tokens (`ghp_`, `gho_`,
 * `ghu_`, `ghs_`, `ghr_`, `github_pat_`), Slack tokens (`xoxb-`, `xoxp-`, ...), Stripe live keys
 * (`sk_live_`, `rk_live_`), Google API keys (`AIza`) and PEM private key blocks (see
 * {@link findPrivateKeyBlock}).
 */
export function findApiKeys(text: string): Span[] {
  const spans: Span[] = [];
  for (const m of text.matchAll(API_KEY)) spans.push({ start: m.index, end: m.index + m[0].length });
  PEM_BEGIN.lastIndex = 0;
  for (let begin = PEM_BEGIN.exec(text); begin; begin = PEM_BEGIN.exec(text)) {
    const block = findPrivateKeyBlock(text, begin.index + begin[0].length);
    spans.push({ start: begin.index, end: block.end });
    PEM_BEGIN.lastIndex = block.end;
  }
  return spans;
}

/** True when `text` ends inside a private key block (see {@link findPrivateKeyBlock}). */
export function endsInPrivateKey(text: string): boolean {
  PEM_BEGIN.lastIndex = 0;
  let open = false;
  for (let begin = PEM_BEGIN.exec(text); begin; begin = PEM_BEGIN.exec(text)) {
    const block = findPrivateKeyBlock(text, begin.index + begin[0].length);
    open = block.open;
    PEM_BEGIN.lastIndex = Math.max(block.end, PEM_BEGIN.lastIndex);
  }
  return open;
}
