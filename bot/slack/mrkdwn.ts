/**
 * The neutral message model in Slack's mrkdwn, and the one place where text is escaped for Slack.
 * Pure.
 *
 * Slack parses `<…>` as links, mentions and broadcasts (`<!channel>`), and `*_~\`` as formatting.
 * Every piece of text is entity-escaped (`&`, `<`, `>`), so only Warden's own mentions become
 * `<@U…>`. Literal text (what people typed, names, errors, anything from input) is also made
 * inert: a formatting character that could open or close a span (one not between two letters or
 * digits: Slack formats no span inside a word) is fenced by zero-width spaces, which stops it
 * pairing whether Slack counts the zero-width space as a blank or as a letter (an opener needs a
 * boundary before it and a non-blank after it, a closer the reverse); backticks always. Characters
 * inside words are left alone so that names such as `app_db` copy as they are. Line breaks become
 * spaces, so literal text cannot draw lines that look like Warden's; bidirectional overrides are
 * dropped, so it cannot reorder what is shown; and a leading `>` cannot open a quote.
 * Not neutralised: `:emoji:` codes and bare URLs, which Slack still shows as an emoji and a link
 * whose visible text is the URL itself (see docs/chat.md).
 */
import type { Card, Line, Message, Span } from '../core/message.ts';

/** How a Warden person is named in Slack: `<@U123>` when their Slack id is known. */
export type SlackName = (personId: string) => string | undefined;

const ZWSP = '\u200b';

/** Longest literal shown; longer ones are cut (Slack caps a field at 2,000 characters). */
export const MAX_LITERAL = 1500;

/** `&`, `<` and `>` as Slack requires them in any text it parses. */
export function escapeEntities(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Text from people or input, made inert in mrkdwn: it shows exactly as written, as one line. */
export function escapeLiteral(value: string): string {
  const cut = value.length > MAX_LITERAL ? `${value.slice(0, MAX_LITERAL - 1)}…` : value;
  const flat = cut
    .replace(
      /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g,
      '',
    )
    .replace(/\s*[\r\n\t]+\s*/g, ' ');
  const escaped = escapeEntities(flat).replace(
    /(?<![\p{L}\p{N}])[*_~]|[*_~](?![\p{L}\p{N}])|`/gu,
    (c) => `${ZWSP}${c}${ZWSP}`,
  );
  return escaped.startsWith('&gt;') ? `${ZWSP}${escaped}` : escaped;
}

/** Text inside a code span: entities escaped, and no backtick that would end the span early. */
function escapeCode(value: string): string {
  return escapeEntities(value.replace(/[\r\n]+/g, ' ')).replace(/`/g, "'");
}

/**
 * A verbatim block as a code block of at most `max` characters: entities escaped, and no fence
 * inside (nor a backtick at either end) that would end the block early.
 */
export function codeBlock(value: string, max = Number.POSITIVE_INFINITY): string {
  const inner = clipMrkdwn(escapeEntities(value).replace(/```/g, `\`${ZWSP}\`\``), max - 8);
  return `\`\`\`${inner.replace(/^`/, `${ZWSP}\``).replace(/`$/, `\`${ZWSP}`)}\`\`\``;
}

function renderSpan(span: Span, name: SlackName): string {
  switch (span.kind) {
    case 'text':
      return escapeEntities(span.text);
    case 'literal':
      return escapeLiteral(span.text);
    case 'code':
      return `\`${escapeCode(span.text)}\``;
    case 'mention': {
      const slackId = name(span.person);
      return slackId ? `<@${slackId}>` : escapeEntities(`@${span.person}`);
    }
    case 'strong':
      return `*${renderLine(span.spans, name)}*`;
  }
}

/** A line in mrkdwn. */
export function renderLine(line: Line, name: SlackName): string {
  return line.map((span) => renderSpan(span, name)).join('');
}

/** A message in mrkdwn: its lines, then its block in a code block; an alert gets a siren. */
export function renderMessage(message: Message, name: SlackName): string {
  const lines = message.lines.map((l) => renderLine(l, name));
  if (message.alert && lines.length > 0) lines[0] = `:rotating_light: ${lines[0]}`;
  if (message.block) lines.push(codeBlock(message.block));
  return lines.join('\n');
}

/** A card's notification text (`text` beside its blocks): `<title>: <status>`. */
export function renderCardText(card: Card, name: SlackName): string {
  return `${renderLine(card.title, name)}: ${renderLine(card.status, name)}`;
}

/**
 * Cuts mrkdwn to `max` characters without leaving half an entity (`&am`) or half a mention
 * (`<@U12`) at the end, which Slack would show broken or join with what follows.
 */
export function clipMrkdwn(value: string, max: number): string {
  if (value.length <= max) return value;
  const cut = value.slice(0, max - 1).replace(/&[a-z]*$|<[^>]*$/, '');
  return `${cut}…`;
}

/** Text as Slack sends it to apps (`&amp;`, `&lt;`, `&gt;` escaped) back to what the person typed. */
export function decodeSlackText(value: string): string {
  return value.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}
