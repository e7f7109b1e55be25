/** Translates the bot's neutral views into Slack Block Kit. Pure. */
import type { ActionView, RequestView, ReviewView } from '../core/render.ts';

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

const clip = (text: string, max: number) => (text.length > max ? `${text.slice(0, max - 1)}…` : text);

function button(action: ActionView, requestId: string): Block {
  return {
    type: 'button',
    action_id: action.kind === 'approve' ? SlackId.Approve : SlackId.Deny,
    text: { type: 'plain_text', text: action.label },
    style: action.style,
    value: requestId,
  };
}

/** The root message of a request. */
export function renderRequestBlocks(view: RequestView): Block[] {
  const fields = view.fields.slice(0, MAX_FIELDS).map((f) => ({
    type: 'mrkdwn',
    text: clip(`*${f.label}*\n${f.value}`, MAX_FIELD),
  }));
  const blocks: Block[] = [
    { type: 'section', text: { type: 'mrkdwn', text: clip(`*${view.title}*`, MAX_SECTION) } },
    { type: 'section', fields },
    { type: 'context', elements: [{ type: 'mrkdwn', text: clip(view.status, MAX_FIELD) }] },
  ];
  if (view.actions.length > 0) {
    blocks.push({
      type: 'actions',
      block_id: `warden_actions_${view.requestId}`,
      elements: view.actions.map((a) => button(a, view.requestId)),
    });
  }
  return blocks;
}

/** A statement held for review: the statement in a code block, the facts, the status, the buttons. */
export function renderReviewBlocks(view: ReviewView): Block[] {
  // A fence inside the statement would end the code block early.
  const code = view.statement.replace(/```/g, '`\u200b``');
  const blocks: Block[] = [
    { type: 'section', text: { type: 'mrkdwn', text: clip(`*${view.title}*`, MAX_SECTION) } },
    { type: 'section', text: { type: 'mrkdwn', text: `\`\`\`${clip(code, MAX_SECTION - 6)}\`\`\`` } },
    {
      type: 'section',
      fields: view.fields.slice(0, MAX_FIELDS).map((f) => ({
        type: 'mrkdwn',
        text: clip(`*${f.label}*\n${f.value}`, MAX_FIELD),
      })),
    },
    { type: 'context', elements: [{ type: 'mrkdwn', text: clip(view.status, MAX_FIELD) }] },
  ];
  if (view.actions.length > 0) {
    blocks.push({
      type: 'actions',
      block_id: `warden_review_${view.reviewId}`,
      elements: view.actions.map((a) => ({
        type: 'button',
        action_id: a.kind === 'approve' ? SlackId.ReviewApprove : SlackId.ReviewDeny,
        text: { type: 'plain_text', text: a.label },
        style: a.style,
        value: view.reviewId,
      })),
    });
  }
  return blocks;
}

/** The modal that asks an approver why they deny a request. */
export function renderDenyModal(requestId: string, title: string): Block {
  return {
    type: 'modal',
    callback_id: SlackId.DenyModal,
    private_metadata: requestId,
    title: { type: 'plain_text', text: 'Deny request' },
    submit: { type: 'plain_text', text: 'Deny' },
    close: { type: 'plain_text', text: 'Cancel' },
    blocks: [
      { type: 'section', text: { type: 'mrkdwn', text: clip(title, MAX_SECTION) } },
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
