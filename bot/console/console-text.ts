/**
 * The neutral message model as console text, and the one place where text is cleaned for a
 * terminal: literal text (what people typed, names, errors) loses every control character (escape
 * sequences could move the cursor, recolour or rewrite what is on screen; bidirectional overrides
 * could reorder it) and its line breaks, so it cannot draw lines that look like Warden's. Pure.
 */
import type { Card, Line, Message, Span } from '../core/message.ts';

const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/** Literal text for one console line: no control characters, no line breaks. */
export function cleanLiteral(value: string): string {
  return value.replace(/\s*[\r\n\t]+\s*/g, ' ').replace(CONTROL, '');
}

/** A verbatim block for the console: its lines kept, control characters removed. */
export function cleanBlock(value: string): string {
  return value.replace(/\r\n?/g, '\n').replace(/\t/g, '  ').replace(CONTROL, '');
}

function renderSpan(span: Span): string {
  switch (span.kind) {
    case 'text':
      return span.text;
    case 'literal':
    case 'code':
      return cleanLiteral(span.text);
    case 'mention':
      return `@${span.person}`;
    case 'strong':
      return renderConsoleLine(span.spans);
  }
}

export function renderConsoleLine(line: Line): string {
  return line.map(renderSpan).join('');
}

/** A message: its lines, then its block; an alert is marked. */
export function renderConsoleMessage(message: Message): string {
  const lines = message.lines.map(renderConsoleLine);
  if (message.alert && lines.length > 0) lines[0] = `⚠ ${lines[0]}`;
  if (message.block) lines.push(cleanBlock(message.block));
  return lines.join('\n');
}

/** Where a card is printed: as a new or updated channel message, or inside a thread. */
export type CardPlacement = { how: 'new' | 'updated' } | { thread: string };

/** A card as console text, with the verbs that act on it. */
export function renderConsoleCard(channel: string, card: Card, placement: CardPlacement): string {
  const id = card.subject.id;
  const where =
    'thread' in placement
      ? `  ↳ ${placement.thread}:`
      : `${channel}${placement.how === 'updated' ? ' (updated)' : ''}`;
  const lines = [`${where} [${id}] ${renderConsoleLine(card.title)}`];
  if (card.block !== undefined)
    lines.push(
      ...cleanBlock(card.block)
        .split('\n')
        .map((l) => `    | ${l}`),
    );
  lines.push(
    `  ${renderConsoleLine(card.status)}`,
    `  ${card.fields.map((f) => `${f.label}: ${renderConsoleLine(f.value)}`).join(' | ')}`,
  );
  if (card.actions.length > 0) {
    lines.push(
      card.subject.kind === 'review'
        ? `  → review approve ${id}  |  review deny ${id} [reason]`
        : `  → approve ${id}  |  deny ${id} <reason>   (${card.approvers.map((a) => `@${a}`).join(', ')})`,
    );
  }
  return lines.join('\n');
}
