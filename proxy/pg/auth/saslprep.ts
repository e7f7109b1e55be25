/**
 * SASLprep (RFC 4013) of SCRAM passwords, the way PostgreSQL applies it (src/common/saslprep.c):
 *
 * - a pure-ASCII password is used as is (PostgreSQL's fast path, control characters included);
 * - otherwise non-ASCII spaces (RFC 3454 C.1.2) become U+0020, "commonly mapped to nothing"
 *   characters (B.1) are removed and the result is NFKC-normalised;
 * - if the result holds a prohibited character (C.2 to C.9) or is empty, PostgreSQL falls back to
 *   the raw password, and so do we.
 *
 * Not done: the unassigned-code-point check (A.1) and the bidirectional check (RFC 3454 §6).
 * PostgreSQL would fall back to the raw password for such strings where we keep the prepared
 * form; only passwords mixing right-to-left scripts or unassigned code points can differ.
 */

const NON_ASCII_SPACE = /[\u00A0\u1680\u2000-\u200B\u202F\u205F\u3000]/g;
// RFC 3454 B.1: these combine with their neighbours, which is why the class trips the linter.
// biome-ignore lint/suspicious/noMisleadingCharacterClass: the RFC table lists them one by one
const MAPPED_TO_NOTHING = /[\u00AD\u034F\u1806\u180B-\u180D\u200C\u200D\u2060\uFE00-\uFE0F\uFEFF]/g;
const PROHIBITED =
  /[\u0000-\u001F\u007F-\u009F\u00A0\u1680\u2000-\u200B\u202F\u205F\u3000\u06DD\u070F\u180E\u200C-\u200F\u2028-\u202E\u2060-\u2063\u206A-\u206F\u2FF0-\u2FFB\uD800-\uDFFF\uE000-\uF8FF\uFDD0-\uFDEF\uFEFF\uFFF9-\uFFFF]|\u0340|\u0341|[\u{1D173}-\u{1D17A}\u{E0001}\u{E0020}-\u{E007F}\u{F0000}-\u{10FFFF}]|[\u{1FFFE}\u{1FFFF}\u{2FFFE}\u{2FFFF}\u{3FFFE}\u{3FFFF}\u{4FFFE}\u{4FFFF}\u{5FFFE}\u{5FFFF}\u{6FFFE}\u{6FFFF}\u{7FFFE}\u{7FFFF}\u{8FFFE}\u{8FFFF}\u{9FFFE}\u{9FFFF}\u{AFFFE}\u{AFFFF}\u{BFFFE}\u{BFFFF}\u{CFFFE}\u{CFFFF}\u{DFFFE}\u{DFFFF}\u{EFFFE}\u{EFFFF}]/u;
const ASCII = /^[\x00-\x7f]*$/;

/** Returns the string PostgreSQL feeds to PBKDF2 for `password` (see the module comment). */
export function prepareScramPassword(password: string): string {
  if (ASCII.test(password)) return password;
  const prepared = password.replace(NON_ASCII_SPACE, ' ').replace(MAPPED_TO_NOTHING, '').normalize('NFKC');
  if (prepared === '' || PROHIBITED.test(prepared)) return password;
  return prepared;
}
