/**
 * Client encodings the proxy can read statements in. The guardrails lex a statement's bytes as
 * UTF-8; a decoder never swallows an ASCII byte into a replacement character, so every encoding
 * whose multi-byte characters are made of non-ASCII bytes only lexes the same quotes,
 * backslashes and semicolons as the server. Encodings whose characters may end in an ASCII byte
 * (Shift-JIS, Big5, GBK, UHC, GB18030, JOHAB: `0x5C` as a trailing byte) are not in the list: the
 * server would see a character where the proxy sees a backslash escaping a quote.
 */

/** Normalised names (lower case, no `_` or `-`) of the ASCII-safe client encodings, aliases included. */
const ASCII_SAFE_ENCODINGS: ReadonlySet<string> = new Set([
  'utf8',
  'unicode',
  'sqlascii',
  'eucjp',
  'euccn',
  'euckr',
  'euctw',
  'eucjis2004',
  'muleinternal',
  'latin1',
  'latin2',
  'latin3',
  'latin4',
  'latin5',
  'latin6',
  'latin7',
  'latin8',
  'latin9',
  'latin10',
  'iso88591',
  'iso88592',
  'iso88593',
  'iso88594',
  'iso88595',
  'iso88596',
  'iso88597',
  'iso88598',
  'iso88599',
  'iso885910',
  'iso885913',
  'iso885914',
  'iso885915',
  'iso885916',
  'koi8',
  'koi8r',
  'koi8u',
  'win',
  'alt',
  'win866',
  'win874',
  'win1250',
  'win1251',
  'win1252',
  'win1253',
  'win1254',
  'win1255',
  'win1256',
  'win1257',
  'win1258',
  'windows866',
  'windows874',
  'windows1250',
  'windows1251',
  'windows1252',
  'windows1253',
  'windows1254',
  'windows1255',
  'windows1256',
  'windows1257',
  'windows1258',
  'tcvn',
  'tcvn5712',
  'vscii',
  'abc',
]);

/** True when statements and COPY rows in `encoding` (any spelling PostgreSQL accepts) can be read by bytes. */
export function isAsciiSafeEncoding(encoding: string): boolean {
  return ASCII_SAFE_ENCODINGS.has(encoding.toLowerCase().replace(/[-_]/g, ''));
}
