/**
 * The chat-neutral description of a message: what it says, which parts are Warden's own words and
 * which came from people or input, who is mentioned, what is code. The core builds these; each
 * adapter renders them in its markup (Slack mrkdwn, Adaptive Card text, console lines) and escapes
 * every literal part in one place, so text from a person can never become markup. Pure.
 */

/** One run of text in a line. */
export type Span =
  /** Warden's own words. */
  | { kind: 'text'; text: string }
  /**
   * Text Warden did not write or does not vouch for (a reason, a name, an error from a target, a
   * word echoed from input), and values such as ids and times: shown exactly as it is, never as markup.
   */
  | { kind: 'literal'; text: string }
  /** A Warden person, named the way the chat names people. */
  | { kind: 'mention'; person: string }
  /** Something to type or copy (a command, an id): monospace, shown exactly as it is. */
  | { kind: 'code'; text: string }
  /** Emphasised runs. */
  | { kind: 'strong'; spans: readonly Span[] };

/** A line (or paragraph) of a message. */
export type Line = readonly Span[];

/** A message: lines of text, then optionally a block shown verbatim. */
export interface Message {
  lines: readonly Line[];
  /** Shown verbatim in a monospace block (connection details, a certificate). */
  block?: string;
  /** Draws attention (break-glass): adapters add their alarm mark. */
  alert?: boolean;
}

/** A button (or console verb) offered on a card. */
export interface ActionView {
  kind: 'approve' | 'deny';
  label: string;
  style: 'primary' | 'danger';
}

export interface FieldView {
  label: string;
  value: Line;
}

/** What a card is about: its buttons carry this id back. */
export interface CardSubject {
  kind: 'request' | 'review';
  id: string;
}

/**
 * A message that stays current: a request's root message, or a held statement's. Posted once and
 * updated in place as its subject changes.
 */
export interface Card {
  subject: CardSubject;
  /** The subject's state (`pending`, `active`, …). */
  state: string;
  title: Line;
  fields: readonly FieldView[];
  /** Shown verbatim in a monospace block (the statement under review). */
  block?: string;
  /** One line of state: `Waiting for approval (0/1)`, `Denied by @bob: …`. */
  status: Line;
  /** Empty once the subject is decided. */
  actions: readonly ActionView[];
  /** Person ids who may take the actions. */
  approvers: readonly string[];
}

/** Warden's own words. */
export function text(value: string): Span {
  return { kind: 'text', text: value };
}

/** A value shown exactly as it is: user text, names, ids, anything from input. */
export function literal(value: string | number): Span {
  return { kind: 'literal', text: String(value) };
}

export function mention(person: string): Span {
  return { kind: 'mention', person };
}

export function code(value: string): Span {
  return { kind: 'code', text: value };
}

export function strong(...spans: Span[]): Span {
  return { kind: 'strong', spans };
}

/** What may be interpolated into {@link line}: strings and numbers become literal spans. */
export type Part = Span | Line | string | number | undefined;

function isSpan(part: unknown): part is Span {
  return typeof part === 'object' && part !== null && 'kind' in part;
}

/**
 * Builds a line from a template: the template's own text is Warden's words; every interpolated
 * string or number is literal (so forgetting to mark user text still shows it safely); spans and
 * lines are kept as they are.
 *
 * ```ts
 * line`Denied by ${mention(by)}: ${reason}`
 * ```
 */
export function line(strings: TemplateStringsArray, ...parts: Part[]): Line {
  const spans: Span[] = [];
  strings.forEach((piece, i) => {
    if (piece) spans.push(text(piece));
    if (i >= parts.length) return;
    const part = parts[i];
    if (part === undefined || part === '') return;
    if (typeof part === 'string' || typeof part === 'number') spans.push(literal(part));
    else if (isSpan(part)) spans.push(part);
    else spans.push(...part);
  });
  return spans;
}

/** Joins lines with a separator of Warden's words (`, `, ` or `). */
export function joinLines(lines: readonly Line[], separator: string): Line {
  return lines.flatMap((l, i) => (i === 0 ? [...l] : [text(separator), ...l]));
}

/** A message of the given lines. */
export function message(...lines: Line[]): Message {
  return { lines };
}

/** How a plain rendering names a person. */
export type NamePerson = (personId: string) => string;

const atId: NamePerson = (id) => `@${id}`;

/** A line as plain text, no markup (logs, notifications, tests). */
export function plainLine(l: Line, name: NamePerson = atId): string {
  return l
    .map((span) => {
      switch (span.kind) {
        case 'mention':
          return name(span.person);
        case 'strong':
          return plainLine(span.spans, name);
        default:
          return span.text;
      }
    })
    .join('');
}

/** A message as plain text: its lines, then its block. */
export function plainMessage(m: Message, name: NamePerson = atId): string {
  return [...m.lines.map((l) => plainLine(l, name)), ...(m.block ? [m.block] : [])].join('\n');
}

/** A card's one-line summary: `<title>: <status>`. */
export function plainCard(card: Card, name: NamePerson = atId): string {
  return `${plainLine(card.title, name)}: ${plainLine(card.status, name)}`;
}
