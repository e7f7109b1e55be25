/**
 * The masking engine shared by the value, buffer and stream APIs: a cheap pre-check that tells
 * which detectors could possibly match, the detector runs, overlap resolution and rendering.
 * Internal to `proxy/masking`; the proxies use `masker.ts`.
 */
import type { CompiledMasking } from './config.ts';
import {
  DETECTOR_NAMES,
  type DetectorName,
  dropOverlaps,
  findApiKeys,
  findCards,
  findEmails,
  findIbans,
  findJwts,
  findPhones,
  findSsns,
  type Span,
} from './detectors.ts';
import { findPatternMatches } from './patterns.ts';
import { type MaskStyle, renderSpan } from './styles.ts';

/** Per-label counts of masked values: `email`, `card`, `pattern:<name>`, `column:<match>`. */
export type MaskCounts = Readonly<Record<string, number>>;

/** The shared empty counts of an unchanged value. */
export const NO_COUNTS: MaskCounts = Object.freeze({});

/** Which detectors the pre-check found a trigger for. */
enum Trigger {
  /** An `@` between word characters. */
  Email = 1,
  /** A run of at least 13 digits joined by spaces, dashes, dots or parentheses. */
  Card = 2,
  /** Digit groups of 3, 2 and 4 in a row. */
  Ssn = 4,
  /** Two upper-case letters followed by a digit. */
  Iban = 8,
  /** `+` and a digit 1-9, or a run of 10+ digits with a 3-digit or a 7+-digit group. */
  Phone = 16,
  /** `eyJ`: the start of a base64url JSON object, as in every JWT header. */
  Jwt = 32,
  /** `AKIA`, `ASIA`, `AIza`, `gh?_`, `github_pat_`, `k_live_`, `xox`, `-----BEGIN`. */
  Key = 64,
}

const DETECTOR_TRIGGER: Readonly<Record<DetectorName, Trigger>> = {
  api_key: Trigger.Key,
  jwt: Trigger.Jwt,
  email: Trigger.Email,
  card: Trigger.Card,
  iban: Trigger.Iban,
  ssn: Trigger.Ssn,
  phone: Trigger.Phone,
};

function codeAt(src: string | Uint8Array, at: number): number {
  if (at < 0 || at >= src.length) return -1;
  return typeof src === 'string' ? src.charCodeAt(at) : src[at]!;
}

function startsWithAscii(src: string | Uint8Array, at: number, marker: string): boolean {
  if (at < 0 || at + marker.length > src.length) return false;
  for (let i = 0; i < marker.length; i++) if (codeAt(src, at + i) !== marker.charCodeAt(i)) return false;
  return true;
}

function isUpper(c: number): boolean {
  return c >= 65 && c <= 90;
}

function isLetter(c: number): boolean {
  return isUpper(c) || (c >= 97 && c <= 122);
}

function isWordCode(c: number): boolean {
  return (c >= 48 && c <= 57) || isUpper(c) || (c >= 97 && c <= 122) || c === 46 || c === 95 || c === 45;
}

/** Triggers of the characters that are neither digits nor number joiners. */
function markerTriggers(src: string | Uint8Array, i: number, c: number): number {
  switch (c) {
    case 64:
      return isWordCode(codeAt(src, i - 1)) && isWordCode(codeAt(src, i + 1)) ? Trigger.Email : 0;
    case 43: {
      const next = codeAt(src, i + 1);
      return next >= 49 && next <= 57 ? Trigger.Phone : 0;
    }
    case 74:
      return startsWithAscii(src, i - 2, 'eyJ') ? Trigger.Jwt : 0;
    case 65:
      return startsWithAscii(src, i + 1, 'KIA') ||
        startsWithAscii(src, i + 1, 'SIA') ||
        startsWithAscii(src, i + 1, 'Iza')
        ? Trigger.Key
        : 0;
    case 95:
      return (startsWithAscii(src, i - 3, 'gh') &&
        'pousr'.includes(String.fromCharCode(codeAt(src, i - 1)))) ||
        startsWithAscii(src, i - 10, 'github_pat') ||
        startsWithAscii(src, i - 6, 'k_live')
        ? Trigger.Key
        : 0;
    case 120:
      return startsWithAscii(src, i + 1, 'ox') ? Trigger.Key : 0;
    case 45:
      return startsWithAscii(src, i + 1, '----BEGIN') ? Trigger.Key : 0;
    default:
      return 0;
  }
}

/**
 * Pair tables of the byte pre-check: entry `(byte << 8) | next` is non-zero when a trigger may
 * start at `byte` followed by `next` (0 after the last byte). Each pair is a necessary condition
 * of a trigger: a digit, `@`, `+` or `_` (any next byte), `yJ` (`eyJ`), `AK`/`AS`/`AI`, `xo`,
 * `--`. One table per set of enabled triggers, so a disabled detector costs nothing.
 */
const pairTables = new Map<number, Uint8Array>();

function pairTableFor(triggers: number): Uint8Array {
  let table = pairTables.get(triggers);
  if (table) return table;
  table = new Uint8Array(256 * 256);
  const any = (chars: string): void => {
    for (const c of chars) table!.fill(1, c.charCodeAt(0) << 8, (c.charCodeAt(0) + 1) << 8);
  };
  const pair = (a: string, b: string): void => {
    table![(a.charCodeAt(0) << 8) | b.charCodeAt(0)] = 1;
  };
  if (triggers & (Trigger.Card | Trigger.Ssn | Trigger.Iban | Trigger.Phone)) any('0123456789');
  if (triggers & Trigger.Email) any('@');
  if (triggers & Trigger.Phone) any('+');
  if (triggers & Trigger.Jwt) pair('y', 'J');
  if (triggers & Trigger.Key) {
    any('_');
    pair('A', 'K');
    pair('A', 'S');
    pair('A', 'I');
    pair('x', 'o');
    pair('-', '-');
  }
  pairTables.set(triggers, table);
  return table;
}

const ALL_TRIGGERS = 127;
const ALL_PAIRS = pairTableFor(ALL_TRIGGERS);

/**
 * False when no trigger of `pairs` can start anywhere in `bytes[start, end)`: one tight loop with
 * one table load per byte, so most text values skip {@link scanTriggers}' full state machine.
 */
function mayTriggerIn(pairs: Uint8Array, bytes: Uint8Array, start: number, end: number): boolean {
  if (start >= end) return false;
  let previous = bytes[start]!;
  for (let i = start + 1; i < end; i++) {
    const c = bytes[i]!;
    if (pairs[(previous << 8) | c] !== 0) return true;
    previous = c;
  }
  return pairs[previous << 8] !== 0;
}

/**
 * {@link mayTriggerIn} reading four bytes at a time: each load covers three byte pairs, so it
 * steps by three (fewer loads and branches than a byte loop).
 */
function mayTriggerInView(pairs: Uint8Array, view: DataView, start: number, end: number): boolean {
  if (start >= end) return false;
  let i = start;
  for (; i + 4 <= end; i += 3) {
    const word = view.getUint32(i);
    if ((pairs[word >>> 16]! | pairs[(word >>> 8) & 0xffff]! | pairs[word & 0xffff]!) !== 0) return true;
  }
  for (; i + 2 <= end; i++) if (pairs[view.getUint16(i)] !== 0) return true;
  return pairs[view.getUint8(end - 1) << 8] !== 0;
}

/**
 * One pass over the characters (or bytes) of a value: returns the {@link Trigger} bits of the
 * detectors that could match. Each trigger is a necessary condition of its detector, so zero
 * means no built-in detector can find anything. Digits are read as groups joined by at most two
 * of ` -.()`, which lets dates, times, plain ids and decimals through without running any
 * number detector.
 */
export function scanTriggers(src: string | Uint8Array): number {
  const isString = typeof src === 'string';
  if (!isString && !mayTriggerIn(ALL_PAIRS, src, 0, src.length)) return 0;
  const length = src.length;
  let flags = 0;
  let group = 0;
  let runDigits = 0;
  let runShaped = false;
  let joiners = 0;
  let previous = 0;
  let beforePrevious = 0;
  for (let i = 0; i <= length; i++) {
    const c = i === length ? -1 : isString ? src.charCodeAt(i) : src[i]!;
    if (c >= 48 && c <= 57) {
      if (group === 0 && isUpper(codeAt(src, i - 1)) && isUpper(codeAt(src, i - 2))) flags |= Trigger.Iban;
      group++;
      joiners = 0;
      continue;
    }
    // Detectors never match digits glued to letters (hex, UUIDs): such a group ends the run.
    if (
      group > 0 &&
      !isLetter(c) &&
      (i === group || !isLetter(isString ? src.charCodeAt(i - group - 1) : src[i - group - 1]!))
    ) {
      runDigits += group;
      if (group === 3 || (group >= 7 && previous > 0)) runShaped = true;
      if (group === 4 && previous === 2 && beforePrevious === 3) flags |= Trigger.Ssn;
      if (runDigits >= 13) flags |= Trigger.Card;
      if (runDigits >= 10 && runShaped) flags |= Trigger.Phone;
      beforePrevious = previous;
      previous = group;
      group = 0;
    }
    if (group === 0 && (c === 32 || c === 45 || c === 46 || c === 40 || c === 41) && ++joiners <= 2) {
      if (c === 45) flags |= markerTriggers(src, i, c);
      continue;
    }
    group = 0;
    runDigits = 0;
    runShaped = false;
    joiners = 0;
    previous = 0;
    beforePrevious = 0;
    if (c === 64 || c === 43 || c === 74 || c === 65 || c === 95 || c === 120)
      flags |= markerTriggers(src, i, c);
  }
  return flags;
}

interface LabelledSpan extends Span {
  label: string;
  style: MaskStyle;
  /** Order of the detector in {@link DETECTOR_NAMES}; custom patterns come last. */
  rank: number;
}

/** The result of masking a text: the new text and its counts, or `null` when nothing was found. */
export interface TextMask {
  text: string;
  counts: MaskCounts;
}

/** Runs detectors and custom patterns over a text. */
export class MaskEngine {
  readonly config: CompiledMasking;
  readonly #detectors: readonly [DetectorName, MaskStyle][];
  readonly hasPatterns: boolean;
  readonly #enabledTriggers: number;
  readonly #pairs: Uint8Array;

  constructor(config: CompiledMasking) {
    this.config = config;
    this.#detectors = (Object.entries(config.detectors) as [DetectorName, MaskStyle | null][]).filter(
      (entry): entry is [DetectorName, MaskStyle] => entry[1] !== null,
    );
    this.hasPatterns = config.patterns.length > 0;
    this.#enabledTriggers = this.#detectors.reduce((mask, [name]) => mask | DETECTOR_TRIGGER[name], 0);
    this.#pairs = pairTableFor(this.#enabledTriggers);
  }

  /**
   * False when masking `bytes[start, end)` surely changes nothing: no custom pattern, and no byte
   * pair that could start a trigger of an enabled detector. Reads the bytes in place.
   */
  mayMatch(view: DataView, start: number, end: number): boolean {
    return this.hasPatterns || mayTriggerInView(this.#pairs, view, start, end);
  }

  /** True when nothing can match: no trigger of an enabled detector and no custom pattern. */
  isClean(triggers: number): boolean {
    return !this.hasPatterns && (triggers & this.#enabledTriggers) === 0;
  }

  /**
   * Masks every sensitive value found in `text`. `encoding` says how the text maps back to bytes
   * (`latin1` when it was decoded byte for byte), so keyed hashes are over the original bytes.
   * `triggers` is the result of {@link scanTriggers} on the same content.
   */
  maskText(text: string, triggers: number, encoding: BufferEncoding): TextMask | null {
    const spans: LabelledSpan[] = [];
    const add = (found: Span[], label: string, style: MaskStyle, rank: number): void => {
      for (const s of found) spans.push({ start: s.start, end: s.end, label, style, rank });
    };
    for (const [name, style] of this.#detectors) {
      if ((triggers & DETECTOR_TRIGGER[name]) === 0) continue;
      add(this.#find(name, text), name, style, DETECTOR_NAMES.indexOf(name));
    }
    for (const pattern of this.config.patterns) {
      add(findPatternMatches(text, pattern), pattern.label, pattern.style, DETECTOR_NAMES.length);
    }
    if (spans.length === 0) return null;
    const counts: Record<string, number> = {};
    let out = '';
    let cursor = 0;
    // Earliest first, then longest: a JWT or key wins over a digit run inside it.
    for (const span of dropOverlaps(spans)) {
      out += text.slice(cursor, span.start);
      out += renderSpan(span.style, text.slice(span.start, span.end), span.label, this.config.key, encoding);
      counts[span.label] = (counts[span.label] ?? 0) + 1;
      cursor = span.end;
    }
    return { text: out + text.slice(cursor), counts };
  }

  #find(name: DetectorName, text: string): Span[] {
    switch (name) {
      case 'card':
        return findCards(text, { requireKnownIin: this.config.cardRequireIin });
      case 'email':
        return findEmails(text);
      case 'ssn':
        return findSsns(text);
      case 'iban':
        return findIbans(text);
      case 'phone':
        return findPhones(text);
      case 'jwt':
        return findJwts(text);
      case 'api_key':
        return findApiKeys(text);
    }
  }
}

/** Adds `counts` into `total`, for a session's running totals. */
export function addCounts(total: Record<string, number>, counts: MaskCounts): void {
  for (const label in counts) total[label] = (total[label] ?? 0) + counts[label]!;
}
