/**
 * The one place where text is escaped for Microsoft Teams. Pure.
 *
 * Warden draws every line as `TextRun`s of a `RichTextBlock`, so no line goes through a
 * `TextBlock`'s markdown; but hosts differ (the Adaptive Cards schema now says a TextRun takes "a
 * subset of markdown"), and the activity's `text` (notifications, the chat list) is markdown. So
 * literal text is made inert for Adaptive Card markdown as well:
 *
 * - a formatting character (`*` `_` `~`) that could open or close a span (one not between two
 *   letters or digits) is fenced by zero-width spaces, as for Slack; backticks always;
 * - `[` and `]` are fenced, so no `[text](url)` link can form (and no disguised link); `<` and `&`
 *   are followed by a zero-width space, so no HTML tag or entity can form;
 * - `{{` is broken, so Teams' `{{DATE(…)}}` / `{{TIME(…)}}` functions cannot run on user text;
 * - a leading `#`, `>`, `-`, `+` or `1.` cannot open a heading, quote or list;
 * - line breaks become spaces (no forged lines), bidirectional overrides and control characters
 *   are dropped, and a literal is cut at 1,500 characters.
 *
 * Characters inside words are untouched, so `app_db` copies as it is. Bare URLs are not
 * neutralised: a host may link them, but the visible text is the URL itself.
 */

const ZWSP = '\u200b';

/** Longest literal shown; longer ones are cut. */
export const MAX_LITERAL = 1500;

const CONTROL =
  /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/** Control characters and bidirectional overrides out; lines kept. */
export function dropControls(value: string): string {
  return value.replace(CONTROL, '');
}

/** Text from people or input, made inert for Adaptive Card markdown: shown exactly as written, as one line. */
export function escapeCardLiteral(value: string): string {
  const cut = value.length > MAX_LITERAL ? `${value.slice(0, MAX_LITERAL - 1)}…` : value;
  const flat = dropControls(cut).replace(/\s*[\r\n\t]+\s*/g, ' ');
  const escaped = flat
    .replace(/(?<![\p{L}\p{N}])[*_~]|[*_~](?![\p{L}\p{N}])|[`[\]]/gu, (c) => `${ZWSP}${c}${ZWSP}`)
    .replace(/[<&]/g, (c) => `${c}${ZWSP}`)
    .replace(/\{(?=\{)/g, `{${ZWSP}`)
    .replace(/\}(?=\})/g, `}${ZWSP}`);
  return /^\s*(?:[#>+-]|\d+[.)])/.test(escaped) ? `${ZWSP}${escaped}` : escaped;
}

/**
 * Warden's own words in markdown (the activity's `text`): they are trusted, but `<`, `&` and
 * `{{` are still broken so that a word Warden quotes cannot become markup.
 */
export function escapeCardWords(value: string): string {
  return dropControls(value)
    .replace(/[<&]/g, (c) => `${c}${ZWSP}`)
    .replace(/\{(?=\{)/g, `{${ZWSP}`);
}

/** A verbatim block's line in a monospace TextRun: controls out, `{{` broken, nothing else touched. */
export function escapeBlockLine(value: string): string {
  return dropControls(value)
    .replace(/\{(?=\{)/g, `{${ZWSP}`)
    .replace(/\}(?=\})/g, `}${ZWSP}`);
}
