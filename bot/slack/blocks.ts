/** Translates the bot's neutral cards into Slack Block Kit. Pure. */
import type { ActionView, Card } from '../core/message.ts';
import { clipMrkdwn, codeBlock, escapeEntities, renderLine, type SlackName } from './mrkdwn.ts';

/** Interaction ids on the wire (`action_id`, `callback_id`, `block_id`). */
export enum SlackId {
  /** `action_id` of the Approve button; its `value` is the request id. */
  Approve = 'warden_approve',
  /** `action_id` of the Deny button; opens the reason modal. */
  Deny = 'warden_deny',
  /** `callback_id` of the deny modal; `private_metadata` holds the request id. */
  DenyModal = 'warden_deny_modal',
  /** `block_id` / `action_id` of the reason input in the deny modal. */
  ReasonBlock = 'warden_reason',
  ReasonInput = 'warden_reason_input',
  /** `action_id` of a statement review's Approve button; its `value` is the review id. */
  ReviewApprove = 'warden_review_approve',
  /** `action_id` of a statement review's Deny button; its `value` is the review id. */
  ReviewDeny = 'warden_review_deny',
}

/** Slack's limits on block text, enforced so a long reason can never make a post fail. */
const MAX_SECTION = 3000;
const MAX_FIELD = 2000;
const MAX_FIELDS = 10;

// biome-ignore lint/suspicious/noExplicitAny: Block Kit JSON is schemaless on the wire.
export type Block = Record<string, any>;

/** Names people by their id when no Slack id is known (`@alice`). */
const byId: SlackName = () => undefined;

function button(action: ActionView, card: Card): Block {
  const review = card.subject.kind === 'review';
  const approve = action.kind === 'approve';
  return {
    type: 'button',
    action_id: review
      ? approve
        ? SlackId.ReviewApprove
        : SlackId.ReviewDeny
      : approve
        ? SlackId.Approve
        : SlackId.Deny,
    text: { type: 'plain_text', text: action.label },
    style: action.style,
    value: card.subject.id,
  };
}

/**
 * A card: its title, the verbatim block in a code block (a statement under review), the facts, the
 * status, and the buttons while it is undecided.
 */
export function renderCardBlocks(card: Card, name: SlackName = byId): Block[] {
  const blocks: Block[] = [
    {
      type: 'section',
      text: { type: 'mrkdwn', text: clipMrkdwn(`*${renderLine(card.title, name)}*`, MAX_SECTION) },
    },
  ];
  if (card.block !== undefined) {
    blocks.push({
      type: 'section',
      text: { type: 'mrkdwn', text: codeBlock(card.block, MAX_SECTION) },
    });
  }
  blocks.push(
    {
      type: 'section',
      fields: card.fields.slice(0, MAX_FIELDS).map((f) => ({
        type: 'mrkdwn',
        text: clipMrkdwn(`*${escapeEntities(f.label)}*\n${renderLine(f.value, name)}`, MAX_FIELD),
      })),
    },
    {
      type: 'context',
      elements: [{ type: 'mrkdwn', text: clipMrkdwn(renderLine(card.status, name), MAX_FIELD) }],
    },
  );
  if (card.actions.length > 0) {
    const prefix = card.subject.kind === 'review' ? 'warden_review_' : 'warden_actions_';
    blocks.push({
      type: 'actions',
      block_id: `${prefix}${card.subject.id}`,
      elements: card.actions.map((a) => button(a, card)),
    });
  }
  return blocks;
}

/** The root message of a request. */
export const renderRequestBlocks = renderCardBlocks;

/** A statement held for review: the statement in a code block, the facts, the status, the buttons. */
export const renderReviewBlocks = renderCardBlocks;

/** The modal that asks an approver why they deny a request. */
export function renderDenyModal(requestId: string): Block {
  return {
    type: 'modal',
    callback_id: SlackId.DenyModal,
    private_metadata: requestId,
    title: { type: 'plain_text', text: 'Deny request' },
    submit: { type: 'plain_text', text: 'Deny' },
    close: { type: 'plain_text', text: 'Cancel' },
    blocks: [
      { type: 'section', text: { type: 'plain_text', text: `Deny request ${requestId}?` } },
      {
        type: 'input',
        block_id: SlackId.ReasonBlock,
        label: { type: 'plain_text', text: 'Why?' },
        element: {
          type: 'plain_text_input',
          action_id: SlackId.ReasonInput,
          multiline: true,
          max_length: 500,
        },
      },
    ],
  };
}
