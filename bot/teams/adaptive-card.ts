/**
 * The neutral message model as Adaptive Cards for Microsoft Teams. Pure.
 *
 * Every line is a `RichTextBlock` of `TextRun`s (no `TextBlock` markdown), every literal escaped
 * by `card-text.ts`. A request's card carries Approve/Deny as `Action.Execute` (Universal Actions,
 * schema 1.4) with its subject in `data`, and a `refresh` for its approvers, so Teams asks Warden
 * for the current card whenever they look at it. Messages (thread steps, DMs) are cards too, with a
 * plain, escaped `text` for notifications.
 */
import type {
  IAdaptiveCard,
  IExecuteAction,
  IRichTextBlock,
  ITextInput,
  ITextRun,
} from '@microsoft/teams.cards';
import type { Card, CardSubject, Line, Message, Span } from '../core/message.ts';
import { escapeBlockLine, escapeCardLiteral, escapeCardWords } from './card-text.ts';

/** The schema version of every card: `Action.Execute` and `refresh` need 1.4. */
export const CARD_VERSION = '1.4';
/** The content type of an Adaptive Card attachment. */
export const CARD_CONTENT_TYPE = 'application/vnd.microsoft.card.adaptive';
/** Teams refreshes a card automatically for at most 60 listed users. */
const MAX_REFRESH_USERS = 60;
/** Lines of a verbatim block drawn; a longer block is cut (a card is at most 28 KB). */
const MAX_BLOCK_LINES = 80;

/** The verbs of Warden's `Action.Execute` buttons (wire values). */
export enum CardVerb {
  /** `approve` */
  Approve = 'approve',
  /** `deny`: without a reason, asks for one in the card. */
  Deny = 'deny',
  /** `refresh`: the current card (Teams' automatic refresh, and "Cancel" on the deny form). */
  Refresh = 'refresh',
}

/** What Warden's buttons carry back in `value.action.data`. */
export interface CardActionData {
  warden: 1;
  kind: CardSubject['kind'];
  id: string;
}

/** The id of the deny form's reason input. */
export const REASON_INPUT = 'reason';
/** Longest deny reason the form accepts. */
export const MAX_REASON = 500;

/** How a Warden person is named on a card. */
export type TeamsName = (personId: string) => string;

const at: TeamsName = (id) => `@${id}`;

function run(text: string, extra: Partial<ITextRun> = {}): ITextRun {
  return { type: 'TextRun', text, ...extra };
}

function spanRuns(span: Span, name: TeamsName, strong: boolean): ITextRun[] {
  const weight = strong ? { weight: 'Bolder' as const } : {};
  switch (span.kind) {
    case 'text':
      return [run(escapeCardWords(span.text), weight)];
    case 'literal':
      return [run(escapeCardLiteral(span.text), weight)];
    case 'code':
      return [run(escapeCardLiteral(span.text), { ...weight, fontType: 'Monospace' })];
    case 'mention':
      return [run(escapeCardLiteral(name(span.person)), weight)];
    case 'strong':
      return span.spans.flatMap((s) => spanRuns(s, name, true));
  }
}

/** A line as one RichTextBlock. */
export function renderLineBlock(
  line: Line,
  name: TeamsName = at,
  extra: Partial<IRichTextBlock> = {},
): IRichTextBlock {
  const inlines = line.flatMap((s) => spanRuns(s, name, false)).filter((r) => r.text !== '');
  return { type: 'RichTextBlock', inlines: inlines.length ? inlines : [run(' ')], ...extra };
}

function renderBlock(block: string): IRichTextBlock[] {
  const lines = block.split(/\r?\n/);
  const shown = lines.length > MAX_BLOCK_LINES ? [...lines.slice(0, MAX_BLOCK_LINES - 1), '…'] : lines;
  return shown.map((l, i) => ({
    type: 'RichTextBlock',
    inlines: [run(escapeBlockLine(l) || ' ', { fontType: 'Monospace' })],
    spacing: i === 0 ? 'Medium' : 'None',
  }));
}

/** A line as plain text for the activity's `text` (markdown): literals escaped. */
export function renderLineText(line: Line, name: TeamsName = at): string {
  return line
    .map((span): string => {
      switch (span.kind) {
        case 'text':
          return escapeCardWords(span.text);
        case 'mention':
          return escapeCardLiteral(name(span.person));
        case 'strong':
          return renderLineText(span.spans, name);
        default:
          return escapeCardLiteral(span.text);
      }
    })
    .join('');
}

function statusColor(state: string): ITextRun['color'] {
  switch (state) {
    case 'pending':
      return 'Warning';
    case 'active':
    case 'approved':
      return 'Good';
    default:
      return 'Attention';
  }
}

function actionData(subject: CardSubject): CardActionData {
  return { warden: 1, kind: subject.kind, id: subject.id };
}

function execute(
  verb: CardVerb,
  title: string,
  subject: CardSubject,
  extra: Partial<IExecuteAction> = {},
): IExecuteAction {
  return { type: 'Action.Execute', verb, title, data: actionData(subject), ...extra };
}

export interface RenderCardOptions {
  name?: TeamsName;
  /** Teams ids of the approvers: their clients refresh the card on sight. */
  refreshUsers?: readonly string[];
  /** Shown above the card, to the one person it is returned to (an inline refusal). */
  notice?: Line;
  /** Ask for a deny reason in the card (the deny form). */
  askReason?: boolean;
}

/** A request's (or held statement's) card. */
export function renderCard(card: Card, options: RenderCardOptions = {}): IAdaptiveCard {
  const name = options.name ?? at;
  const body: IAdaptiveCard['body'] = [];
  if (options.notice) {
    const notice = renderLineBlock(options.notice, name);
    body.push({
      ...notice,
      inlines: (notice.inlines as ITextRun[]).map((r) => ({ ...r, color: 'Attention', weight: 'Bolder' })),
    });
  }
  const title = renderLineBlock(card.title, name);
  body.push({
    ...title,
    inlines: (title.inlines as ITextRun[]).map((r) => ({ ...r, size: 'Large', weight: 'Bolder' })),
  });
  for (const field of card.fields) {
    body.push(
      renderLineBlock(
        [{ kind: 'strong', spans: [{ kind: 'text', text: `${field.label}: ` }] }, ...field.value],
        name,
        { spacing: 'Small' },
      ),
    );
  }
  if (card.block) body.push(...renderBlock(card.block));
  const status = renderLineBlock(card.status, name, { spacing: 'Medium' });
  body.push({
    ...status,
    inlines: (status.inlines as ITextRun[]).map((r) => ({ ...r, color: statusColor(card.state) })),
  });
  if (card.actions.length && card.approvers.length) {
    body.push(
      renderLineBlock(
        [
          { kind: 'text', text: 'May decide: ' },
          ...card.approvers.flatMap((p, i): Span[] => [
            ...(i ? [{ kind: 'text' as const, text: ', ' }] : []),
            { kind: 'mention', person: p },
          ]),
        ],
        name,
        { spacing: 'Small' },
      ),
    );
  }
  const actions: IExecuteAction[] = [];
  if (card.actions.length && options.askReason) {
    const input: ITextInput = {
      type: 'Input.Text',
      id: REASON_INPUT,
      label: 'Why do you deny it?',
      isMultiline: true,
      isRequired: true,
      maxLength: MAX_REASON,
      errorMessage: 'Say why you deny the request.',
    };
    body.push(input);
    actions.push(
      execute(CardVerb.Deny, 'Deny', card.subject, { style: 'destructive', associatedInputs: 'auto' }),
      execute(CardVerb.Refresh, 'Cancel', card.subject, { associatedInputs: 'none' }),
    );
  } else {
    for (const action of card.actions) {
      const verb = action.kind === 'approve' ? CardVerb.Approve : CardVerb.Deny;
      actions.push(
        execute(verb, action.label, card.subject, {
          style: action.style === 'primary' ? 'positive' : 'destructive',
          associatedInputs: 'none',
        }),
      );
    }
  }
  const out: IAdaptiveCard = {
    type: 'AdaptiveCard',
    version: CARD_VERSION,
    body,
    ...(actions.length ? { actions } : {}),
    msteams: { width: 'full' },
  };
  const users = (options.refreshUsers ?? []).slice(0, MAX_REFRESH_USERS);
  if (card.actions.length && users.length) {
    out.refresh = { action: execute(CardVerb.Refresh, 'Refresh', card.subject), userIds: [...users] };
  }
  return out;
}

/** A message (thread step, DM) as a card. */
export function renderMessageCard(message: Message, name: TeamsName = at): IAdaptiveCard {
  const body: IAdaptiveCard['body'] = message.lines.map((l, i) => {
    const block = renderLineBlock(l, name, i ? { spacing: 'Small' } : {});
    if (i === 0 && message.alert) {
      return {
        ...block,
        inlines: (block.inlines as ITextRun[]).map((r) => ({ ...r, color: 'Attention', weight: 'Bolder' })),
      };
    }
    return block;
  });
  if (message.block) body.push(...renderBlock(message.block));
  return { type: 'AdaptiveCard', version: CARD_VERSION, body, msteams: { width: 'full' } };
}

/** A message's notification text: its first line (never its block: it may hold a credential). */
export function renderMessageText(message: Message, name: TeamsName = at): string {
  const first = message.lines[0];
  const text = first ? renderLineText(first, name) : 'Warden';
  return message.alert ? `🚨 ${text}` : text;
}

/** A card's notification text: `<title>: <status>`. */
export function renderCardText(card: Card, name: TeamsName = at): string {
  return `${renderLineText(card.title, name)}: ${renderLineText(card.status, name)}`;
}

/** Reads Warden's action data back from an invoke; undefined when it is not Warden's. */
export function parseActionData(data: unknown): CardActionData | undefined {
  if (typeof data !== 'object' || data === null) return undefined;
  const d = data as Record<string, unknown>;
  if (d.warden !== 1 || (d.kind !== 'request' && d.kind !== 'review')) return undefined;
  if (typeof d.id !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(d.id)) return undefined;
  return { warden: 1, kind: d.kind, id: d.id };
}
