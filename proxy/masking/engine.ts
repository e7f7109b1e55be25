/**
 * The masking engine shared by the value, buffer and stream APIs: a cheap pre-check that tells
 * which detectors could possibly match, the detector runs, overlap resolution and rendering.
 * Internal to `proxy/masking`; the proxies use `masker.ts`.
 */
import type { CompiledMasking } from './config.ts';
import {
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

/** Which detector families the pre-check found a trigger for. */
enum Trigger {
  /** An `@`: emails. */
  At = 1,
  /** At least {@link MIN_DIGITS} ASCII digits: cards, IBANs, SSNs, phones. */
  Digits = 2,
  /** `eyJ`: the start of a base64url JSON object, as in every JWT header. */
  Jwt = 4,
  /** `_`, `AKIA`, `ASIA`, `AIza`, `xox`, `-----BEGIN`: API key formats. */
  Key = 8,
}

/** The fewest digits any digit-based detector needs (an 8-digit E.164 number). */
const MIN_DIGITS = 8;

const DETECTOR_TRIGGER: Readonly<Record<DetectorName, Trigger>> = {
  api_key: Trigger.Key,
  jwt: Trigger.Jwt,
  email: Trigger.At,
  card: Trigger.Digits,
  iban: Trigger.Digits,
  ssn: Trigger.Digits,
  phone: Trigger.Digits,
};

function startsWithAscii(src: string | Uint8Array, at: number, marker: string): boolean {
  if (at + marker.length > src.length) return false;
  for (let i = 0; i < marker.length; i++) {
    const c = typeof src === 'string' ? src.charCodeAt(at + i) : src[at + i];
    if (c !== marker.charCodeAt(i)) return false;
  }
  return true;
}

/**
 * One pass over the characters (or bytes) of a value: returns the {@link Trigger} bits of the
 * detector families that could match. Zero means no built-in detector can find anything.
 */
export function scanTriggers(src: string | Uint8Array): number {
  let digits = 0;
  let flags = 0;
  const isString = typeof src === 'string';
  const length = src.length;
  for (let i = 0; i < length; i++) {
    const c = isString ? src.charCodeAt(i) : src[i]!;
    if (c >= 48 && c <= 57) {
      if (++digits === MIN_DIGITS) flags |= Trigger.Digits;
    } else if (c === 64) {
      flags |= Trigger.At;
    } else if (c === 95) {
      flags |= Trigger.Key;
    } else if (c === 74) {
      if (startsWithAscii(src, i - 2, 'eyJ')) flags |= Trigger.Jwt;
    } else if (c === 65) {
      if (
        startsWithAscii(src, i + 1, 'KIA') ||
        startsWithAscii(src, i + 1, 'SIA') ||
        startsWithAscii(src, i + 1, 'Iza')
      ) {
        flags |= Trigger.Key;
      }
    } else if (c === 120) {
      if (startsWithAscii(src, i + 1, 'ox')) flags |= Trigger.Key;
    } else if (c === 45) {
      if (startsWithAscii(src, i + 1, '----BEGIN')) flags |= Trigger.Key;
    }
  }
  return flags;
}

interface LabelledSpan extends Span {
  label: string;
  style: MaskStyle;
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

  constructor(config: CompiledMasking) {
    this.config = config;
    this.#detectors = (Object.entries(config.detectors) as [DetectorName, MaskStyle | null][]).filter(
      (entry): entry is [DetectorName, MaskStyle] => entry[1] !== null,
    );
    this.hasPatterns = config.patterns.length > 0;
  }

  /** True when nothing in `src` can match: no trigger for an enabled detector and no custom pattern. */
  isClean(triggers: number): boolean {
    if (this.hasPatterns) return false;
    for (const [name] of this.#detectors) if ((triggers & DETECTOR_TRIGGER[name]) !== 0) return false;
    return true;
  }

  /**
   * Masks every sensitive value found in `text`. `encoding` says how the text maps back to bytes
   * (`latin1` when it was decoded byte for byte), so keyed hashes are over the original bytes.
   * `triggers` is the result of {@link scanTriggers} on the same content.
   */
  maskText(text: string, triggers: number, encoding: BufferEncoding): TextMask | null {
    const spans: LabelledSpan[] = [];
    const add = (found: Span[], label: string, style: MaskStyle): void => {
      for (const s of found) spans.push({ start: s.start, end: s.end, label, style });
    };
    for (const [name, style] of this.#detectors) {
      if ((triggers & DETECTOR_TRIGGER[name]) === 0) continue;
      add(this.#find(name, text), name, style);
    }
    for (const pattern of this.config.patterns)
      add(findPatternMatches(text, pattern), pattern.label, pattern.style);
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
