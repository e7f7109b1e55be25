/**
 * Masking of a byte stream split arbitrarily into chunks: SSH terminal output.
 *
 * A secret may arrive cut across chunks (`4242 42` + `42 4242 4242`). The stream masker therefore
 * holds back the end of each chunk that could be the start of a secret: the trailing run of
 * characters that secrets are made of (ASCII letters, digits, space and `@._%+-/=~()`), normally at
 * most `maxHoldBytes`. A word cut by that limit is held whole up to another `maxHoldBytes`, and an
 * escape sequence of up to 256 bytes is never split, so at most `2 * maxHoldBytes + 256` bytes are
 * held. It also holds an incomplete UTF-8 sequence or escape sequence at the end, so neither is
 * ever split or altered: masking only rewrites ASCII text between escape sequences.
 *
 * Held bytes wait for the next chunk. Interactive output (a shell echoing keystrokes) often ends
 * mid-run, so the session shell must call {@link StreamMasker.flush} when the stream goes idle
 * (20 to 50 ms suits typing) and at the end; the core owns no timer. Flushing releases a partial
 * secret as it is, since it cannot yet be recognised: a trade-off between latency and masking
 * values typed slowly.
 *
 * Secrets longer than the hold limit: when a run is cut by the limit and its tail holds a JWT or
 * API key prefix (`eyJ`, `AKIA`, `ghp_`, ...), the part from the prefix on is redacted and the
 * rest of the token is dropped as it arrives, even after a flush. After a PEM `BEGIN ... PRIVATE KEY` line, lines of
 * key material are dropped until the END line or the first line that is not key material.
 */
import { isUtf8 } from 'node:buffer';
import { endsInPrivateKey } from './detectors.ts';
import { addCounts, type MaskCounts, type MaskEngine, scanTriggers } from './engine.ts';
import { MaskingInputError } from './errors.ts';

/** Options of a stream masker. */
export interface StreamMaskerOptions {
  /** Most bytes held back between chunks. Default 256; from 64 to 65536. */
  maxHoldBytes?: number;
}

/** Masks one output stream. Not shared between streams. */
export interface StreamMasker {
  /** Masks a chunk; returns the bytes that can be written now (possibly empty). */
  push(chunk: Buffer): Buffer;
  /** Releases and masks every held byte: call when the stream goes idle, and at its end. */
  flush(): Buffer;
  /** Bytes currently held back. */
  readonly pendingBytes: number;
  /** Masked values per label since the stream began, for the session recording. */
  counts(): MaskCounts;
}

/** Default of {@link StreamMaskerOptions.maxHoldBytes}. */
export const DEFAULT_MAX_HOLD_BYTES = 256;
/** Longest escape sequence kept whole (OSC window titles can be long). */
const MAX_ESCAPE_BYTES = 256;
const EMPTY = Buffer.alloc(0);
const ESC = 0x1b;

enum Mode {
  Normal = 0,
  /** Dropping the rest of an overlong token whose start was redacted. */
  Token = 1,
  /** Dropping the lines of a private key block whose BEGIN line was redacted. */
  PrivateKey = 2,
}

/** Characters of a JWT or API key body: base64url, base64 and `.`. */
function isTokenByte(c: number): boolean {
  return (
    (c >= 48 && c <= 57) ||
    (c >= 65 && c <= 90) ||
    (c >= 97 && c <= 122) ||
    c === 43 ||
    c === 45 ||
    c === 46 ||
    c === 47 ||
    c === 61 ||
    c === 95
  );
}

/** Characters a secret is made of: token characters, space and `@%()~`. */
function isSecretByte(c: number): boolean {
  return isTokenByte(c) || c === 32 || c === 64 || c === 37 || c === 40 || c === 41 || c === 126;
}

const TOKEN_MARKERS: readonly [RegExp, string][] = [
  [/eyJ/, 'jwt'],
  [/AKIA|ASIA|AIza|gh[pousr]_|github_pat_|xox[abposr]-|[sr]k_live_/, 'api_key'],
];

/** Start of an incomplete UTF-8 sequence at the end of `data`, or `data.length`. */
function findIncompleteUtf8(data: Buffer, from: number): number {
  for (let i = data.length - 1; i >= Math.max(from, data.length - 3); i--) {
    const c = data[i]!;
    if (c < 0x80) return data.length;
    if (c >= 0xc0) {
      const need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
      return data.length - i < need ? i : data.length;
    }
  }
  return data.length;
}

/**
 * Length of the complete escape sequence at `at` (an ESC) in `text` (decoded byte for byte), or 0
 * when the text ends before the sequence does.
 */
function measureEscape(text: string, at: number): number {
  if (at + 1 >= text.length) return 0;
  const kind = text.charCodeAt(at + 1);
  if (kind === 0x5b) {
    // CSI: parameter and intermediate bytes, then one final byte in 0x40-0x7e.
    for (let i = at + 2; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c >= 0x40 && c <= 0x7e) return i + 1 - at;
      if (c < 0x20 || c > 0x3f) return i - at;
    }
    return 0;
  }
  if (kind === 0x5d || kind === 0x50 || kind === 0x5f) {
    // OSC, DCS, APC: ended by BEL or ST (ESC \).
    for (let i = at + 2; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c === 0x07) return i + 1 - at;
      if (c === ESC && text.charCodeAt(i + 1) === 0x5c) return i + 2 - at;
    }
    return 0;
  }
  return 2;
}

/** Start of an incomplete escape sequence among the last bytes of `data[from, end)`, or `end`. */
function findIncompleteEscape(data: Buffer, from: number, end: number): number {
  const esc = data.lastIndexOf(ESC, end - 1);
  if (esc < from || esc < end - MAX_ESCAPE_BYTES) return end;
  return measureEscape(data.toString('latin1', esc, end), 0) === 0 ? esc : end;
}

/** Moves `at` back to the start of the escape sequence it falls inside, if any. */
function avoidEscapeSplit(data: Buffer, from: number, at: number): number {
  const esc = at > 0 ? data.lastIndexOf(ESC, at - 1) : -1;
  if (esc < from || esc < at - MAX_ESCAPE_BYTES) return at;
  const length = measureEscape(
    data.toString('latin1', esc, Math.min(data.length, esc + MAX_ESCAPE_BYTES)),
    0,
  );
  return length === 0 || esc + length > at ? esc : at;
}

function isDigitByte(c: number | undefined): boolean {
  return c !== undefined && c >= 48 && c <= 57;
}

/** True when the byte before `at` belongs to the same word as far as secrets go. */
function continuesWord(data: Buffer, at: number): boolean {
  const c = data[at - 1]!;
  if (isTokenByte(c) || c === 64) return true;
  // A space between digits joins the groups of a card, IBAN or phone number.
  return c === 32 && isDigitByte(data[at - 2]) && isDigitByte(data[at]);
}

const PEM_LINE = /^(?:[A-Za-z0-9+/=]*|[A-Za-z-]{1,40}: [ -~]*)\r?$/;
const PEM_PARTIAL = /^(?:[A-Za-z0-9+/=]*|[A-Za-z-]{1,40}: [ -~]*|-[-A-Z0-9 ]*)\r?$/;
const PEM_END_LINE = /^-----END (?:[A-Z0-9]{1,16} ){0,3}PRIVATE KEY-----\r?$/;

/** Creates a stream masker running `engine`. Used by `Masker.createStreamMasker`. */
export function createEngineStreamMasker(
  engine: MaskEngine,
  options: StreamMaskerOptions = {},
): StreamMasker {
  const maxHold = Math.min(Math.max(options.maxHoldBytes ?? DEFAULT_MAX_HOLD_BYTES, 64), 65_536);
  const apiKeysOn = engine.config.detectors.api_key !== null;
  const jwtsOn = engine.config.detectors.jwt !== null;
  const totals: Record<string, number> = {};
  let pending: Buffer = EMPTY;
  let mode = Mode.Normal;

  const count = (label: string): void => {
    totals[label] = (totals[label] ?? 0) + 1;
  };

  /** Masks the text between escape sequences of `bytes`, which hold whole characters and sequences. */
  const maskSegment = (bytes: Buffer): Buffer => {
    if (bytes.length === 0) return bytes;
    const triggers = scanTriggers(bytes);
    if (engine.isClean(triggers)) return bytes;
    const encoding: BufferEncoding = engine.hasPatterns && isUtf8(bytes) ? 'utf8' : 'latin1';
    const text = bytes.toString(encoding);
    const parts: string[] = [];
    let cursor = 0;
    let esc = text.indexOf('\u001b');
    while (cursor < text.length) {
      const textEnd = esc === -1 ? text.length : esc;
      const piece = text.slice(cursor, textEnd);
      const masked = engine.maskText(piece, scanTriggers(piece), encoding);
      if (masked) addCounts(totals, masked.counts);
      parts.push(masked ? masked.text : piece);
      if (esc === -1) break;
      const escapeEnd = esc + Math.max(measureEscape(text, esc), 1);
      parts.push(text.slice(esc, escapeEnd));
      cursor = escapeEnd;
      esc = text.indexOf('\u001b', cursor);
    }
    const out = parts.join('');
    if (apiKeysOn && endsInPrivateKey(text)) mode = Mode.PrivateKey;
    return Buffer.from(out, encoding);
  };

  /** Drops the key material at the start of `data`; returns where normal output resumes. */
  const skipPrivateKey = (data: Buffer, from: number, final: boolean): number => {
    let pos = from;
    while (pos < data.length) {
      const newline = data.indexOf(0x0a, pos);
      if (newline === -1) {
        const partial = data.toString('latin1', pos);
        if (!PEM_PARTIAL.test(partial)) {
          mode = Mode.Normal;
          return pos;
        }
        if (final || data.length - pos > maxHold) return data.length;
        return pos;
      }
      const line = data.toString('latin1', pos, newline);
      if (PEM_END_LINE.test(line)) {
        mode = Mode.Normal;
        return newline + 1;
      }
      if (!PEM_LINE.test(line)) {
        mode = Mode.Normal;
        return pos;
      }
      pos = newline + 1;
    }
    return pos;
  };

  /**
   * Where the held tail of `data[from, ...)` begins, and whether the hold limit had to cut a word
   * (then the tail is exactly `maxHold` bytes of one overlong token). A run longer than the limit is
   * cut at a word boundary when one lies within another `maxHold` bytes, so at most `2 * maxHold`
   * bytes are ever held.
   */
  const findHold = (data: Buffer, from: number): [number, boolean] => {
    let cut = findIncompleteUtf8(data, from);
    cut = findIncompleteEscape(data, from, cut);
    const limit = Math.max(from, data.length - maxHold);
    let start = cut;
    while (start > limit && isSecretByte(data[start - 1]!)) start--;
    start = avoidEscapeSplit(data, from, start);
    if (!(start === limit && start > from && isSecretByte(data[start - 1]!) && cut > start))
      return [start, false];
    const floor = Math.max(from, start - maxHold);
    let boundary = start;
    while (boundary > floor && continuesWord(data, boundary)) boundary--;
    return boundary > floor ? [boundary, false] : [start, true];
  };

  /** Masks `head` whose last token was cut by the hold limit: redacts a token prefix and drops the rest. */
  const maskCutToken = (head: Buffer): Buffer => {
    let runStart = head.length;
    while (runStart > 0 && isTokenByte(head[runStart - 1]!)) runStart--;
    const run = head.toString('latin1', runStart);
    for (const [marker, label] of TOKEN_MARKERS) {
      if (label === 'jwt' ? !jwtsOn : !apiKeysOn) continue;
      const found = marker.exec(run);
      if (!found) continue;
      mode = Mode.Token;
      count(label);
      const before = maskSegment(head.subarray(0, runStart + found.index));
      return Buffer.concat([before, Buffer.from(`[REDACTED:${label}]`, 'latin1')]);
    }
    return maskSegment(head);
  };

  const process = (data: Buffer, final: boolean): Buffer => {
    const out: Buffer[] = [];
    let pos = 0;
    while (pos < data.length) {
      if (mode === Mode.Token) {
        while (pos < data.length && isTokenByte(data[pos]!)) pos++;
        // An idle flush does not end the token: its rest may still arrive.
        if (pos < data.length) mode = Mode.Normal;
        continue;
      }
      if (mode === Mode.PrivateKey) {
        const resume = skipPrivateKey(data, pos, final);
        if (resume === pos && mode === Mode.PrivateKey) break;
        pos = resume;
        continue;
      }
      const [holdStart, forced] = final ? [data.length, false] : findHold(data, pos);
      if (holdStart === pos) break;
      const head = data.subarray(pos, holdStart);
      out.push(forced ? maskCutToken(head) : maskSegment(head));
      pos = holdStart;
      if (mode === Mode.Normal) break;
    }
    pending = pos < data.length ? Buffer.from(data.subarray(pos)) : EMPTY;
    return out.length === 1 ? out[0]! : Buffer.concat(out);
  };

  return {
    push(chunk) {
      if (!Buffer.isBuffer(chunk)) throw new MaskingInputError('push takes a Buffer');
      if (chunk.length === 0) return EMPTY;
      return process(pending.length === 0 ? chunk : Buffer.concat([pending, chunk]), false);
    },
    flush() {
      if (pending.length === 0) return EMPTY;
      return process(pending, true);
    },
    get pendingBytes() {
      return pending.length;
    },
    counts() {
      return { ...totals };
    },
  };
}
