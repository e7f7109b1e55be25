/**
 * Mask styles: how a sensitive value is rendered once found.
 *
 * - `redact`: a fixed, obvious token. A detector hit becomes `[REDACTED:<label>]` (`[REDACTED:email]`),
 *   a whole column value becomes `[REDACTED]`.
 * - `last4`: every letter, digit or non-ASCII character becomes `*` except the last four letters or
 *   digits; separators and punctuation stay, so the format is still readable
 *   (`4242 4242 4242 4242` → `**** **** **** 4242`). Values with fewer than eight letters or
 *   digits are starred entirely, since their last four would give most of them away.
 * - `hash`: a stable keyed token, HMAC-SHA-256 of the value's UTF-8 bytes under the masking key,
 *   truncated to 64 bits and rendered `tok_<16 hex>`. Same value and key → same token, so joins and
 *   `GROUP BY` on masked columns still work; another key gives unrelated tokens. A detector hit
 *   carries its label (`[email:tok_3f9a1c2b7d4e5f60]`) so a reader knows what was there; a whole
 *   column value is the bare token. 64 bits keep accidental collisions negligible in a result of
 *   millions of distinct values.
 */
import { HmacSha256, MAX_INLINE_BYTES } from './hmac-sha256.ts';

/** How a found value is rendered. */
export type MaskStyle = 'redact' | 'last4' | 'hash';

/** Every mask style, for schemas. */
export const MASK_STYLES = ['redact', 'last4', 'hash'] as const;

const TOKEN_HEX_CHARS = 16;
const LAST4_MIN_SIGNIFICANT = 8;
const scratch = Buffer.alloc(MAX_INLINE_BYTES);

/**
 * The HMAC key of the `hash` style. Kept in a private field so it never appears in logs,
 * `util.inspect` output or JSON.
 */
export class MaskingKey {
  readonly #hmac: HmacSha256;

  constructor(bytes: Uint8Array) {
    this.#hmac = new HmacSha256(bytes);
  }

  /** Renders the keyed token of `value` (its bytes in `encoding` when a string). */
  tokenize(value: string | Uint8Array, encoding: BufferEncoding = 'utf8'): string {
    if (typeof value !== 'string') return 'tok_' + this.#hmac.hexPrefix(value, value.length, TOKEN_HEX_CHARS);
    // A UTF-8 character takes at most 3 bytes per UTF-16 unit, so short strings fit the scratch.
    const limit = encoding === 'latin1' ? MAX_INLINE_BYTES : Math.floor(MAX_INLINE_BYTES / 3);
    const bytes = value.length <= limit ? scratch : Buffer.from(value, encoding);
    const length = bytes === scratch ? scratch.write(value, 0, encoding) : bytes.length;
    return 'tok_' + this.#hmac.hexPrefix(bytes, length, TOKEN_HEX_CHARS);
  }

  toJSON(): string {
    return '[masking key]';
  }

  toString(): string {
    return '[masking key]';
  }
}

function isSignificant(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c > 127;
}

function isAsciiAlnum(c: number): boolean {
  return c <= 127 && isSignificant(c);
}

/** Stars all letters and digits of `value` but the last four (see the module comment). */
export function keepLast4(value: string): string {
  let significant = 0;
  for (let i = 0; i < value.length; i++) if (isAsciiAlnum(value.charCodeAt(i))) significant++;
  let keepFrom = value.length;
  if (significant >= LAST4_MIN_SIGNIFICANT) {
    for (let kept = 0; kept < 4; ) if (isAsciiAlnum(value.charCodeAt(--keepFrom))) kept++;
  }
  let out = '';
  let cursor = 0;
  for (let i = 0; i < keepFrom; i++) {
    if (isSignificant(value.charCodeAt(i))) {
      if (i > cursor) out += value.slice(cursor, i);
      out += '*';
      cursor = i + 1;
    }
  }
  return out + value.slice(cursor);
}

/**
 * {@link keepLast4} of UTF-8 bytes, without decoding when they are all ASCII (one character per
 * byte); other bytes take the string path, since a multi-byte character is starred as one.
 */
export function keepLast4Bytes(value: Uint8Array): Buffer {
  let significant = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (c > 127) return Buffer.from(keepLast4(Buffer.from(value).toString('utf8')), 'utf8');
    if (isAsciiAlnum(c)) significant++;
  }
  const out = Buffer.from(value);
  let keepFrom = out.length;
  if (significant >= LAST4_MIN_SIGNIFICANT) {
    for (let kept = 0; kept < 4; ) if (isAsciiAlnum(out[--keepFrom]!)) kept++;
  }
  for (let i = 0; i < keepFrom; i++) if (isAsciiAlnum(out[i]!)) out[i] = 42; // *
  return out;
}

/**
 * Writes {@link keepLast4} of the ASCII bytes `src[start, end)` into `out` at `at` (same length),
 * in one pass that stars every letter and digit, then puts the last four back. Returns false when
 * a byte is not ASCII: `out[at, at + length)` then holds partial bytes the caller must overwrite
 * (it takes {@link keepLast4Bytes}); nothing outside that range is written.
 */
export function writeLast4Ascii(
  src: Uint8Array,
  start: number,
  end: number,
  out: Uint8Array,
  at: number,
): boolean {
  let significant = 0;
  let bits = 0;
  let o = at;
  for (let i = start; i < end; i++) {
    const c = src[i]!;
    const alnum = ASCII_ALNUM[c]!;
    bits |= c;
    significant += alnum;
    out[o++] = alnum === 1 ? 42 : c;
  }
  if (bits > 127) return false;
  if (significant >= LAST4_MIN_SIGNIFICANT) {
    for (let i = end, kept = 0; kept < 4; ) {
      const c = src[--i]!;
      out[--o] = c;
      kept += ASCII_ALNUM[c]!;
    }
  }
  return true;
}

/** 1 for ASCII letters and digits. */
const ASCII_ALNUM = new Uint8Array(256);
for (let c = 0; c < 128; c++) ASCII_ALNUM[c] = isAsciiAlnum(c) ? 1 : 0;

/**
 * Renders a value found by a detector or a custom pattern. `label` names what it was
 * (`email`, `pattern:employee_id`); `encoding` is how the text maps to bytes, for the hash.
 */
export function renderSpan(
  style: MaskStyle,
  value: string,
  label: string,
  key: MaskingKey | undefined,
  encoding: BufferEncoding,
): string {
  if (style === 'last4') return keepLast4(value);
  if (style === 'hash' && key) return `[${label}:${key.tokenize(value, encoding)}]`;
  return `[REDACTED:${label}]`;
}

/** Renders a whole column value masked by a column rule. */
export function renderColumnValue(
  style: MaskStyle,
  value: string | Uint8Array,
  key: MaskingKey | undefined,
): string {
  if (style === 'hash' && key) return key.tokenize(value);
  if (style === 'last4')
    return keepLast4(typeof value === 'string' ? value : Buffer.from(value).toString('utf8'));
  return '[REDACTED]';
}
