/**
 * One chat-neutral rendering of a request and of each step in its life, and of a statement held
 * for review. Adapters translate these cards and messages to Block Kit, Adaptive Cards or console
 * text; they never decide what a message says. Pure functions.
 */
import type {
  AccessRequest,
  ApprovalRequirement,
  BrokerEvent,
  IssuedCredential,
  RequestDetails,
  RequestState,
  StatementReview,
} from '../../broker/ports/chat.ts';
import { formatDuration } from '../../lib/duration.ts';
import {
  type ActionView,
  type Card,
  code,
  type FieldView,
  joinLines,
  type Line,
  line,
  literal,
  type Message,
  mention,
  message,
  text,
} from './message.ts';

const TERMINAL_LABEL: Partial<Record<RequestState, string>> = {
  expired: 'Expired',
  revoked: 'Revoked',
  denied: 'Denied',
  cancelled: 'Cancelled',
  timed_out: 'Timed out',
  failed: 'Failed',
};

const DECIDE: readonly ActionView[] = [
  { kind: 'approve', label: 'Approve', style: 'primary' },
  { kind: 'deny', label: 'Deny', style: 'danger' },
];

/** `14:32 UTC`. */
export function formatClock(ms: number): string {
  return `${new Date(ms).toISOString().slice(11, 16)} UTC`;
}

/** `app-db:read`. */
export function formatTarget(request: Pick<AccessRequest, 'target' | 'level'>): string {
  return `${request.target}:${request.level}`;
}

/** `1 approval from @maria (manager) or group dba`, with people as mentions. */
export function describeNeeds(requirement: ApprovalRequirement): Line {
  const labels = requirement.groups.map((g): Line => {
    const first = g.members[0];
    if (g.kind === 'group' || !first) return [literal(g.label)];
    return g.kind === 'manager' ? [mention(first), text(' (manager)')] : [mention(first)];
  });
  if (requirement.mode === 'every') return line`one approval from each of: ${joinLines(labels, ', ')}`;
  const n = requirement.count === 1 ? '1 approval' : `${requirement.count} approvals`;
  return [text(`${n} from `), ...joinLines(labels, ' or ')];
}

function neededCount(requirement: ApprovalRequirement): number {
  return requirement.mode === 'every' ? requirement.groups.length : requirement.count;
}

/** `: <why>` when there is a why. */
function because(why: string | null | undefined): Line {
  return why ? line`: ${why}` : [];
}

function describeStatus(details: RequestDetails, approvedBy: string[]): Line {
  const r = details.request;
  const by: Line = r.endedBy ? line` by ${mention(r.endedBy)}` : [];
  switch (r.state) {
    case 'pending': {
      const requirement = details.requirement ?? r.decision.approval;
      return line`Waiting for approval (${approvedBy.length}/${neededCount(requirement)})`;
    }
    case 'approved':
      return [text(r.kind === 'extension' ? 'Approved' : 'Approved, activating…')];
    case 'active':
      return line`Active until ${formatClock(r.expiresAt!)}`;
    case 'denied':
      return r.endReason ? line`Denied${by}: ${r.endReason}` : line`Denied${by}:`;
    case 'revoked':
      return line`Revoked${by}${because(r.endReason !== 'revoked' ? r.endReason : null)}`;
    case 'revoking':
      return r.endState === 'revoked'
        ? line`Revoked${by}, removing the credential…`
        : [text('Expired, removing the credential…')];
    case 'revocation_failed':
      return r.endState === 'revoked'
        ? line`Revoked${by}: removing the credential FAILED, retrying`
        : [text('Expired: removing the credential FAILED, retrying')];
    case 'failed':
      return line`Failed: ${r.error ?? 'the credential could not be created'}`;
    default:
      return [text(TERMINAL_LABEL[r.state] ?? r.state), ...(r.state === 'cancelled' ? by : [])];
  }
}

const CHAT_LABEL: Record<string, string> = { slack: 'Slack', teams: 'Microsoft Teams', console: 'console' };

/** The chat a request was made in (`meta.chat`, set by the bot core), if any. */
export function originOf(request: Pick<AccessRequest, 'meta'>): string | undefined {
  const chat = request.meta?.chat;
  return typeof chat === 'string' && chat ? chat : undefined;
}

/** The root message of a request, as it should look now. */
export function renderRequest(details: RequestDetails): Card {
  const r = details.request;
  const approvedBy = details.approvals.filter((a) => a.verdict === 'approve').map((a) => a.approver);
  const requirement = details.requirement ?? r.decision.approval;
  const duration = formatDuration(r.durationMs);
  const title =
    r.kind === 'extension'
      ? line`${mention(r.requester)} asks to extend ${r.parentId ?? ''} (${formatTarget(r)}) by ${duration}`
      : line`${mention(r.requester)} requests ${formatTarget(r)} for ${duration}`;
  const fields: FieldView[] = [
    { label: 'Requester', value: [mention(r.requester)] },
    { label: 'Target', value: [literal(r.target)] },
    { label: 'Level', value: [literal(r.level)] },
    { label: 'Duration', value: [literal(duration)] },
    { label: 'Reason', value: r.reason ? [literal(r.reason)] : [text('(none)')] },
  ];
  if (r.decision.outcome === 'needs_approval') {
    fields.push({ label: 'Needs', value: describeNeeds(requirement) });
  } else {
    fields.push({ label: 'Policy', value: [literal(r.decision.summary)] });
  }
  if (approvedBy.length > 0) {
    fields.push({
      label: 'Approved by',
      value: joinLines(
        approvedBy.map((id) => [mention(id)]),
        ', ',
      ),
    });
  }
  const origin = originOf(r);
  if (origin) fields.push({ label: 'Requested in', value: [literal(CHAT_LABEL[origin] ?? origin)] });
  fields.push({ label: 'Request', value: [literal(r.id)] });
  const pending = r.state === 'pending';
  const approvers = pending
    ? [...new Set(requirement.groups.flatMap((g) => g.members))].filter((id) => !approvedBy.includes(id))
    : [];
  return {
    subject: { kind: 'request', id: r.id },
    state: r.state,
    title,
    fields,
    status: describeStatus(details, approvedBy),
    actions: pending ? DECIDE : [],
    approvers,
  };
}

/** The thread reply for an event, or undefined when the event adds nothing to the thread. */
export function renderStep(event: BrokerEvent): Message | undefined {
  const r = event.request;
  switch (event.type) {
    case 'request.created':
      if (r.state !== 'pending') return message(line`Approved by policy: ${r.decision.summary}.`);
      return message(
        line`Waiting for ${describeNeeds(r.decision.approval)}. Approvers: use the buttons, or reply here with ${code('approve')} or ${code('deny <reason>')}.`,
      );
    case 'approval.counted':
      return message(line`${mention(event.approval.approver)} approved (${event.given}/${event.needed}).`);
    case 'request.denied':
      return message(line`Denied by ${mention(event.by)}: ${event.reason}`);
    case 'request.cancelled':
      return message(line`Cancelled by ${mention(event.by)}.`);
    case 'request.timed_out':
      return message(line`Timed out: nobody decided in time. The request is closed.`);
    case 'request.reminder': {
      const who = [...new Set(r.decision.approval.groups.flatMap((g) => g.members))].map((id) => [
        mention(id),
      ]);
      const whom = who.length ? line` (${joinLines(who, ', ')})` : [];
      return message(
        line`Reminder: this request is still waiting for ${describeNeeds(r.decision.approval)}${whom}. It times out at ${formatClock(r.pendingUntil)}.`,
      );
    }
    case 'grant.active':
      return message(
        line`Access is active until ${formatClock(r.expiresAt!)}. Connection details went to ${mention(r.requester)} by DM.`,
      );
    case 'grant.failed':
      return message(line`Activation failed: ${event.error}`);
    case 'grant.break_glass':
      return {
        lines: [
          line`Break-glass access by ${mention(r.requester)}: active at once, approvers notified. Review it.`,
        ],
        alert: true,
      };
    case 'grant.extended':
      return message(
        line`Extended by ${mention(event.by)} until ${formatClock(r.expiresAt!)} (was ${formatClock(event.previousExpiresAt)}).`,
      );
    case 'grant.expiring':
      return message(
        line`Expiring in ${formatDuration(Math.max(1000, event.inMs))}, at ${formatClock(r.expiresAt!)}.`,
      );
    case 'grant.expired':
      return message(
        line`Expired: new logins are refused and sessions are ended; the credential is being removed.`,
      );
    case 'grant.revoked':
      return message(
        line`Revoked by ${mention(event.by)}${because(event.reason !== 'revoked' ? event.reason : null)}. The credential is being removed.`,
      );
    case 'grant.ended':
      return r.error ? message(line`The credential is removed.`) : undefined;
    case 'credential.revocation_failed':
      return {
        lines: [
          line`${joinLines(
            event.approvers.map((id) => [mention(id)]),
            ' ',
          )} Removing the credential failed (${event.attempts} attempts); Warden keeps retrying. Error: ${event.error}`,
        ],
        alert: true,
      };
    default:
      return undefined;
  }
}

/**
 * Connection details for the requester's DM: the credential's own summary and its details, shown
 * verbatim. The only place the chat reveals a credential's secrets.
 */
export function renderCredential(credential: IssuedCredential): Message {
  const view = credential.renderChat();
  return { lines: [line`${view.summary}.`], block: view.block };
}

/** The DM to the requester for an event, or undefined when the requester need not be told. */
export function renderDm(event: BrokerEvent): Message | undefined {
  const r = event.request;
  const what = line`${r.kind === 'extension' ? 'extension' : 'request'} ${r.id} (${formatTarget(r)})`;
  const access = line`${r.id} (${formatTarget(r)})`;
  switch (event.type) {
    case 'grant.active': {
      const head = line`Your ${what} is approved and active until ${formatClock(r.expiresAt!)}.`;
      if (!event.credential) return message(head);
      const details = renderCredential(event.credential);
      return { lines: [head, ...details.lines], block: details.block! };
    }
    case 'request.denied':
      return message(line`Your ${what} was denied by ${mention(event.by)}: ${event.reason}`);
    case 'request.timed_out':
      return message(line`Your ${what} timed out: nobody decided in time. Ask again or ping an approver.`);
    case 'grant.failed':
      return message(line`Your ${what} was approved but activation failed: ${event.error}`);
    case 'grant.expiring':
      return message(
        line`Your access ${access} expires in ${formatDuration(Math.max(1000, event.inMs))}, at ${formatClock(r.expiresAt!)}. Extend it with ${code(`/access extend ${r.id} <duration>`)}.`,
      );
    case 'grant.expired':
      return message(line`Your access ${access} has expired.`);
    case 'grant.revoked':
      return message(
        line`Your access ${access} was revoked by ${mention(event.by)}${because(event.reason !== 'revoked' ? event.reason : null)}.`,
      );
    case 'grant.extended':
      return message(line`Your access ${access} now ends at ${formatClock(r.expiresAt!)}.`);
    default:
      return undefined;
  }
}

/** The DM telling a requester that their request could not be posted for approval. */
export function renderUnposted(request: AccessRequest, channel: string, why: string): Message {
  return message(
    line`Your request ${request.id} is recorded, but I could not post it to ${channel}: ${why}. Ask an approver to look at it (${code(`/access status ${request.id}`)}), or an admin to fix the channel.`,
  );
}

/** One line per request for `list`. */
export function renderListLine(request: AccessRequest): Line {
  const when =
    request.state === 'active'
      ? ` until ${formatClock(request.expiresAt!)}`
      : request.state === 'pending'
        ? ` waiting since ${formatClock(request.createdAt)}`
        : '';
  const reason = request.reason ? line`  ${request.reason}` : [];
  return line`${request.id}  ${formatTarget(request)}  ${formatDuration(request.durationMs)}  ${request.state}${when}  by ${mention(request.requester)}${reason}`;
}

/** Statement text shown in chat is cut to this many characters (the API has it whole). */
export const MAX_REVIEW_STATEMENT = 1500;

/** The message about a statement held for review, and its buttons while it is pending. */
export function renderReview(review: StatementReview): Card {
  const statement =
    review.statement.length > MAX_REVIEW_STATEMENT
      ? `${review.statement.slice(0, MAX_REVIEW_STATEMENT - 1)}…`
      : review.statement;
  const by: Line = review.decidedBy ? [mention(review.decidedBy)] : [];
  const why = because(review.decisionReason);
  const where = `${review.target}:${review.level}`;
  const status =
    review.state === 'pending'
      ? line`Waiting for review until ${formatClock(review.deadline)} (an approver of ${where})`
      : review.state === 'approved'
        ? line`Approved by ${by}${why}: the statement ran`
        : review.state === 'denied'
          ? line`Denied by ${by}${why}`
          : line`Expired${review.decisionReason ? line` (${review.decisionReason})` : []}: the statement did not run`;
  return {
    subject: { kind: 'review', id: review.id },
    state: review.state,
    title: line`Statement review ${review.id}: ${mention(review.requester)} on ${where}`,
    block: statement,
    fields: [
      { label: 'Requester', value: [mention(review.requester)] },
      { label: 'Target', value: [literal(where)] },
      { label: 'Rule', value: [literal(review.rule)] },
      { label: 'Why', value: [literal(review.message)] },
    ],
    status,
    actions: review.state === 'pending' ? DECIDE : [],
    approvers: [],
  };
}
