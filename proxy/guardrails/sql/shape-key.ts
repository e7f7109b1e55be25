/**
 * Cheap statement "shape" for the verdict cache: a re-implementation of the token rules of
 * PostgreSQL's lexer (src/backend/parser/scan.l, standard_conforming_strings = on) that drops
 * whitespace and comments, folds unquoted identifiers to lower case like PostgreSQL does, and
 * replaces each literal by a typed placeholder. Two texts with the same key are the same token
 * stream up to literal values, so they parse to the same tree up to literal values.
 *
 * The lexer is deliberately partial: wherever its reading could differ from PostgreSQL's
 * (string continuation across newlines, `U&` strings, numbers with trailing junk, hex/underscore
 * numbers, lone `$`), it gives up and the caller falls back to the exact text as key. Giving up
 * costs a parse; guessing wrong could let a dangerous statement reuse a safe verdict.
 */

/** A statement text reduced to its token shape. */
export interface SqlShape {
  /** Tokens joined by one space; literals are `\0s` (string), `\0b`, `\0x`, `\0i`, `\0f`. */
  readonly key: string;
  /** Source text of every literal, in order (delimiters included). */
  readonly literals: readonly string[];
}

/** Character codes the lexer branches on; the wire character is in each comment. */
enum Ch {
  Tab = 9, // \t
  Newline = 10, // \n
  VerticalTab = 11, // \v
  FormFeed = 12, // \f
  Return = 13, // \r
  Space = 32, // ' '
  DoubleQuote = 34, // "
  Dollar = 36, // $
  Ampersand = 38, // &
  Quote = 39, // '
  Star = 42, // *
  Minus = 45, // -
  Dot = 46, // .
  Slash = 47, // /
  Zero = 48, // 0
  Nine = 57, // 9
  Colon = 58, // :
  Equals = 61, // =
  UpperA = 65, // A
  UpperZ = 90, // Z
  Backslash = 92, // \
  Underscore = 95, // _
  LowerA = 97, // a
  LowerZ = 122, // z
  NonAscii = 128, // first byte PostgreSQL treats as an identifier character
}

/** 1 at the code of each operator character (scan.l `op_chars`). */
const OPERATOR_CHARS = new Uint8Array(128);
for (const c of '~!@#^&|`?+-*/%<>=') OPERATOR_CHARS[c.charCodeAt(0)] = 1;

function isOperatorChar(c: number): boolean {
  return c < 128 && OPERATOR_CHARS[c] === 1;
}

/**
 * The key token of the literal `sql[start, end)`, which is added to `literals`; `undefined` when
 * the lexer gives up (unterminated, or a quoted string continued across a newline).
 */
function takeLiteral(
  sql: string,
  start: number,
  end: number,
  placeholder: string,
  literals: string[],
): string | undefined {
  if (end < 0 || (placeholder !== '\0s$' && continuesAcrossNewline(sql, end))) return undefined;
  literals.push(sql.slice(start, end));
  return placeholder === '\0s$' ? '\0s' : placeholder;
}

function appendToken(key: string, token: string): string {
  return key.length === 0 ? token : `${key} ${token}`;
}

/** Index of the first `\n` or `\r` at or after `from`, or -1. */
function findLineEnd(sql: string, from: number): number {
  for (let i = from; i < sql.length; i++) {
    const c = sql.charCodeAt(i);
    if (c === Ch.Newline || c === Ch.Return) return i;
  }
  return -1;
}

function isSpace(c: number): boolean {
  return (
    c === Ch.Space ||
    c === Ch.Tab ||
    c === Ch.Newline ||
    c === Ch.Return ||
    c === Ch.FormFeed ||
    c === Ch.VerticalTab
  );
}

function isDigit(c: number): boolean {
  return c >= Ch.Zero && c <= Ch.Nine;
}

function isIdentStart(c: number): boolean {
  return (
    (c >= Ch.LowerA && c <= Ch.LowerZ) ||
    (c >= Ch.UpperA && c <= Ch.UpperZ) ||
    c === Ch.Underscore ||
    c >= Ch.NonAscii
  );
}

function isIdentCont(c: number): boolean {
  return isIdentStart(c) || isDigit(c) || c === Ch.Dollar;
}

/** Lower-cases ASCII letters only, as PostgreSQL's downcase_identifier does for UTF-8. */
function foldIdentifier(text: string): string {
  return /[A-Z]/.test(text) ? text.replace(/[A-Z]+/g, (m) => m.toLowerCase()) : text;
}

/** End (exclusive) of a `'...'` body starting after the opening quote; -1 if unterminated. */
function endOfQuoted(sql: string, from: number, backslashEscapes: boolean): number {
  let i = from;
  while (i < sql.length) {
    const c = sql.charCodeAt(i);
    if (c === Ch.Quote) {
      if (sql.charCodeAt(i + 1) === Ch.Quote) {
        i += 2;
        continue;
      }
      return i + 1;
    }
    i += backslashEscapes && c === Ch.Backslash ? 2 : 1;
  }
  return -1;
}

/** End of a `B'...'` / `X'...'` body: no escapes and no doubled quotes inside. */
function endOfBitString(sql: string, from: number): number {
  const close = sql.indexOf("'", from);
  return close < 0 ? -1 : close + 1;
}

/**
 * True when the literal ending at `end` is continued by another quoted part after whitespace that
 * contains a newline (scan.l `quotecontinue`). We do not model that rule: the caller gives up.
 */
function continuesAcrossNewline(sql: string, end: number): boolean {
  let i = end;
  let sawNewline = false;
  while (i < sql.length) {
    const c = sql.charCodeAt(i);
    if (isSpace(c)) {
      if (c === Ch.Newline || c === Ch.Return) sawNewline = true;
      i++;
    } else if (c === Ch.Minus && sql.charCodeAt(i + 1) === Ch.Minus) {
      const eol = findLineEnd(sql, i);
      if (eol < 0) return false;
      i = eol;
    } else {
      return sawNewline && c === Ch.Quote;
    }
  }
  return false;
}

/** End of a number token, or -1 when PostgreSQL 16+ might read it differently from 15. */
function endOfNumber(sql: string, start: number): { end: number; float: boolean } | undefined {
  let i = start;
  let float = false;
  while (isDigit(sql.charCodeAt(i))) i++;
  if (sql.charCodeAt(i) === Ch.Dot) {
    if (sql.charCodeAt(i + 1) === Ch.Dot) return undefined;
    float = true;
    i++;
    while (isDigit(sql.charCodeAt(i))) i++;
  }
  const e = sql.charCodeAt(i) | 0x20;
  if (e === 0x65) {
    let k = i + 1;
    const sign = sql.charCodeAt(k);
    if (sign === 43 || sign === Ch.Minus) k++;
    if (!isDigit(sql.charCodeAt(k))) return undefined;
    while (isDigit(sql.charCodeAt(k))) k++;
    i = k;
    float = true;
  }
  const next = sql.charCodeAt(i);
  if (isIdentCont(next) || next === Ch.Dot) return undefined;
  return { end: i, float };
}

/**
 * Computes the shape of `sql`, or `undefined` when the text uses a construct this lexer does not
 * model exactly (the caller must then key on the exact text).
 */
export function computeSqlShape(sql: string): SqlShape | undefined {
  // The key is built by appending: cheaper than an array of tokens joined at the end.
  let key = '';
  const literals: string[] = [];
  const n = sql.length;
  let i = 0;
  while (i < n) {
    const c = sql.charCodeAt(i);
    const next = sql.charCodeAt(i + 1);
    if (isSpace(c)) {
      i++;
    } else if (c === Ch.Minus && next === Ch.Minus) {
      const eol = findLineEnd(sql, i);
      i = eol < 0 ? n : eol;
    } else if (c === Ch.Slash && next === Ch.Star) {
      // Block comments nest in PostgreSQL.
      let depth = 1;
      i += 2;
      while (depth > 0) {
        if (i >= n) return undefined;
        const d = sql.charCodeAt(i);
        if (d === Ch.Slash && sql.charCodeAt(i + 1) === Ch.Star) {
          depth++;
          i += 2;
        } else if (d === Ch.Star && sql.charCodeAt(i + 1) === Ch.Slash) {
          depth--;
          i += 2;
        } else {
          i++;
        }
      }
    } else if (c === Ch.Quote) {
      const end = endOfQuoted(sql, i + 1, false);
      const token = takeLiteral(sql, i, end, '\0s', literals);
      if (token === undefined) return undefined;
      key = appendToken(key, token);
      i = end;
    } else if (isIdentStart(c)) {
      let j = i + 1;
      let upper = c >= Ch.UpperA && c <= Ch.UpperZ;
      let ascii = c < Ch.NonAscii;
      for (let d = sql.charCodeAt(j); j < n && isIdentCont(d); d = sql.charCodeAt(++j)) {
        if (d >= Ch.UpperA && d <= Ch.UpperZ) upper = true;
        else if (d >= Ch.NonAscii) ascii = false;
      }
      const lower = c | 0x20;
      if (j === i + 1 && sql.charCodeAt(j) === Ch.Quote) {
        if (lower === 0x65 /* e */) {
          const end = endOfQuoted(sql, j + 1, true);
          const token = takeLiteral(sql, i, end, '\0s', literals);
          if (token === undefined) return undefined;
          key = appendToken(key, token);
          i = end;
          continue;
        }
        if (lower === 0x62 /* b */ || lower === 0x78 /* x */) {
          const end = endOfBitString(sql, j + 1);
          const token = takeLiteral(sql, i, end, lower === 0x62 ? '\0b' : '\0x', literals);
          if (token === undefined) return undefined;
          key = appendToken(key, token);
          i = end;
          continue;
        }
        if (lower === 0x6e /* n */) {
          key = appendToken(key, '\0N');
          i = j;
          continue;
        }
      }
      if (j === i + 1 && lower === 0x75 /* u */ && sql.charCodeAt(j) === Ch.Ampersand) {
        const q = sql.charCodeAt(j + 1);
        if (q === Ch.Quote || q === Ch.DoubleQuote) return undefined;
      }
      const word = sql.slice(i, j);
      // For ASCII text toLowerCase is exactly the A-Z folding; beyond it, it would fold more.
      key = appendToken(key, !upper ? word : ascii ? word.toLowerCase() : foldIdentifier(word));
      i = j;
    } else if (c === Ch.DoubleQuote) {
      let j = i + 1;
      for (;;) {
        const close = sql.indexOf('"', j);
        if (close < 0) return undefined;
        if (sql.charCodeAt(close + 1) === Ch.DoubleQuote) {
          j = close + 2;
          continue;
        }
        j = close + 1;
        break;
      }
      key = appendToken(key, sql.slice(i, j));
      i = j;
    } else if (c === Ch.Dollar) {
      if (isDigit(next)) {
        let j = i + 1;
        while (isDigit(sql.charCodeAt(j))) j++;
        if (isIdentCont(sql.charCodeAt(j))) return undefined;
        key = appendToken(key, sql.slice(i, j));
        i = j;
        continue;
      }
      let j = i + 1;
      if (isIdentStart(next)) {
        j++;
        while (j < n && isIdentCont(sql.charCodeAt(j)) && sql.charCodeAt(j) !== Ch.Dollar) j++;
      }
      if (sql.charCodeAt(j) !== Ch.Dollar) return undefined;
      const delimiter = sql.slice(i, j + 1);
      const close = sql.indexOf(delimiter, j + 1);
      if (close < 0) return undefined;
      // Dollar-quoted strings have no continuation rule: '\0s$' marks that.
      const end = close + delimiter.length;
      const token = takeLiteral(sql, i, end, '\0s$', literals);
      if (token === undefined) return undefined;
      key = appendToken(key, token);
      i = end;
    } else if (isDigit(c) || (c === Ch.Dot && isDigit(next))) {
      const num = endOfNumber(sql, i);
      if (!num) return undefined;
      const end = num.end;
      const token = takeLiteral(sql, i, end, num.float ? '\0f' : '\0i', literals);
      if (token === undefined) return undefined;
      key = appendToken(key, token);
      i = end;
    } else if (isOperatorChar(c)) {
      let j = i + 1;
      while (j < n && isOperatorChar(sql.charCodeAt(j))) {
        const d = sql.charCodeAt(j);
        const e = sql.charCodeAt(j + 1);
        if ((d === Ch.Minus && e === Ch.Minus) || (d === Ch.Slash && e === Ch.Star)) break;
        j++;
      }
      key = appendToken(key, sql.slice(i, j));
      i = j;
    } else if (
      (c === Ch.Colon && (next === Ch.Colon || next === Ch.Equals)) ||
      (c === Ch.Dot && next === Ch.Dot)
    ) {
      // scan.l's two-character tokens `::`, `:=` and `..`.
      key = appendToken(key, sql.slice(i, i + 2));
      i += 2;
    } else if (c === 0) {
      return undefined;
    } else {
      key = appendToken(key, sql[i]!);
      i++;
    }
  }
  return { key, literals };
}
