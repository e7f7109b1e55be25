/**
 * Reads mrkdwn the way Slack shows it, for tests that check what people would see: the control
 * sequences Slack acts on (`<@U…>` mentions, `<#C…>` channels, `<!channel>` broadcasts, `<url|label>`
 * links), the spans it formats (`*bold*`, `_italic_`, `~strike~`, `` `code` ``, quotes), and the text
 * shown once entities are decoded. Formatting follows Slack's word-boundary rule: an opener has a
 * boundary (start, blank or punctuation) before it and no blank after it, a closer the reverse.
 * Whether Slack counts a zero-width space as a blank is not documented, so callers read a text both
 * ways (`zwspIsBlank`) and require the same answer.
 */

export interface SlackToken {
  kind: 'user' | 'channel' | 'broadcast' | 'link';
  /** The id, the broadcast name, or the URL. */
  value: string;
  label?: string;
}

export interface SlackStyled {
  style: 'bold' | 'italic' | 'strike' | 'code' | 'quote';
  text: string;
}

export interface ReadMrkdwn {
  tokens: SlackToken[];
  styled: SlackStyled[];
  /** The text as shown: entities decoded, zero-width spaces gone, tokens as their labels, markers kept. */
  shown: string;
}

const ZWSP = '\u200b';
const STYLES: Record<string, SlackStyled['style']> = { '*': 'bold', _: 'italic', '~': 'strike', '`': 'code' };

function decode(text: string): string {
  return text.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

function tokenOf(inner: string): SlackToken {
  const [value = '', label] = inner.split('|', 2);
  if (value.startsWith('@')) return { kind: 'user', value: value.slice(1) };
  if (value.startsWith('#')) return { kind: 'channel', value: value.slice(1) };
  if (value.startsWith('!')) return { kind: 'broadcast', value: value.slice(1) };
  return { kind: 'link', value, ...(label !== undefined ? { label } : {}) };
}

/** Spans one line formats, by Slack's boundary rule. */
function styledIn(line: string, zwspIsBlank: boolean): SlackStyled[] {
  const blank = (c: string | undefined) => c === undefined || /\s/.test(c) || (zwspIsBlank && c === ZWSP);
  const wordChar = (c: string | undefined) =>
    c !== undefined && (/[\p{L}\p{N}]/u.test(c) || (!zwspIsBlank && c === ZWSP));
  const boundary = (c: string | undefined) => c === undefined || !wordChar(c);
  const found: SlackStyled[] = [];
  for (const [char, style] of Object.entries(STYLES)) {
    for (let i = 0; i < line.length; i++) {
      if (line[i] !== char || !boundary(line[i - 1]) || blank(line[i + 1])) continue;
      for (let j = i + 2; j < line.length; j++) {
        if (line[j] === char && !blank(line[j - 1]) && boundary(line[j + 1])) {
          found.push({ style, text: line.slice(i + 1, j) });
          i = j;
          break;
        }
      }
    }
  }
  // A quote is `>` as the line's first character (Slack's documented form).
  if (/^(?:&gt;|>)/.test(line)) found.push({ style: 'quote', text: line });
  return found;
}

/** Reads mrkdwn as Slack would show it. */
export function readMrkdwn(text: string, zwspIsBlank: boolean): ReadMrkdwn {
  const tokens: SlackToken[] = [];
  const withoutTokens = text.replace(/<([^<>]*)>/g, (_whole, inner: string) => {
    const token = tokenOf(inner);
    tokens.push(token);
    return token.kind === 'link' ? (token.label ?? token.value) : `@${token.value}`;
  });
  // Nothing is formatted inside a code block, which runs from one ``` to the next.
  const styled: SlackStyled[] = [];
  const outside = withoutTokens.replace(/```([\s\S]*?)```/g, (_whole, inner: string) => {
    styled.push({ style: 'code', text: inner });
    return ' ';
  });
  styled.push(...outside.split('\n').flatMap((line) => styledIn(line, zwspIsBlank)));
  return { tokens, styled, shown: decode(withoutTokens).replaceAll(ZWSP, '') };
}

/** Every mrkdwn text in a message's blocks (and its `text`), for reading them all. */
export function mrkdwnTexts(message: { text: string; blocks?: unknown[] | undefined }): string[] {
  const texts = [message.text];
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) node.forEach(visit);
    else if (node && typeof node === 'object') {
      const o = node as Record<string, unknown>;
      if (o.type === 'mrkdwn' && typeof o.text === 'string') texts.push(o.text);
      else Object.values(o).forEach(visit);
    }
  };
  visit(message.blocks ?? []);
  return texts;
}
