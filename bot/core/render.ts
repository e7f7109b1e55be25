/**
 * One chat-neutral rendering of a request and of each step in its life. Adapters translate these
 * views to Block Kit or console text; they never decide what a message says. Pure functions.
 */
import { formatDuration } from '../../broker/config/duration.ts';
import type { IssuedCredential } from '../../broker/events/events.ts';
import type {
  AccessRequest,
  ApprovalRequirement,
  BrokerEvent,
  RequestDetails,
  RequestState,
  StatementReview,
} from '../port.ts';

/** How people are named in a chat (`<@U123>` in Slack, `@alice` on the console), and the time. */
export interface RenderContext {
  mention(personId: string): string;
  now: number;
}

/** A button (or console verb) offered on a pending request. */
export interface ActionView {
  kind: 'approve' | 'deny';
  label: string;
  style: 'primary' | 'danger';
}

export interface FieldView {
  label: string;
  value: string;
}

/** What the root message of a request shows. */
export interface RequestView {
  requestId: string;
  title: string;
  state: RequestState;
  /** One line: `Waiting for approval (0/1)`, `Active until 14:32 UTC`, `Denied by @bob: …`. */
  status: string;
  fields: FieldView[];
  /** Empty once the request is decided. */
  actions: ActionView[];
  /** Person ids who may take the actions. */
  approvers: string[];
  /** Plain-text summary, for notifications and chat clients that show no rich layout. */
  text: string;
}

const TERMINAL_LABEL: Partial<Record<RequestState, string>> = {
  expired: 'Expired',
  revoked: 'Revoked',
  denied: 'Denied',
  cancelled: 'Cancelled',
  timed_out: 'Timed out',
  failed: 'Failed',
};

/** `14:32 UTC`. */
export function formatClock(ms: number): string {
  return `${new Date(ms).toISOString().slice(11, 16)} UTC`;
}

/** `app-db:read`. */
export function formatTarget(request: Pick<AccessRequest, 'target' | 'level'>): string {
  return `${request.target}:${request.level}`;
}

/** `1 approval from @maria (manager) or group dba`, with people as chat mentions. */
export function describeNeeds(requirement: ApprovalRequirement, ctx: RenderContext): string {
  const labels = requirement.groups.map((g) => {
    if (g.kind === 'group') return g.label;
    if (g.kind === 'manager') {
      return g.members[0] ? `${ctx.mention(g.members[0])} (manager)` : g.label;
    }
    return g.members[0] ? ctx.mention(g.members[0]) : g.label;
  });
  if (requirement.mode === 'every') return `one approval from each of: ${labels.join(', ')}`;
  const n = requirement.count === 1 ? '1 approval' : `${requirement.count} approvals`;
  return `${n} from ${labels.join(' or ')}`;
}

function neededCount(requirement: ApprovalRequirement): number {
  return requirement.mode === 'every' ? requirement.groups.length : requirement.count;
}

function describeStatus(details: RequestDetails, approvedBy: string[], ctx: RenderContext): string {
  const r = details.request;
  const by = r.endedBy ? ` by ${ctx.mention(r.endedBy)}` : '';
  switch (r.state) {
    case 'pending': {
      const requirement = details.requirement ?? r.decision.approval;
      return `Waiting for approval (${approvedBy.length}/${neededCount(requirement)})`;
    }
    case 'approved':
      return r.kind === 'extension' ? 'Approved' : 'Approved, activating…';
    case 'active':
      return `Active until ${formatClock(r.expiresAt!)}`;
    case 'denied':
      return `Denied${by}: ${r.endReason ?? ''}`.trim();
    case 'revoked':
      return `Revoked${by}${r.endReason && r.endReason !== 'revoked' ? `: ${r.endReason}` : ''}`;
    case 'revoking':
      return `${r.endState === 'revoked' ? `Revoked${by}` : 'Expired'}, removing the credential…`;
    case 'revocation_failed':
      return `${r.endState === 'revoked' ? `Revoked${by}` : 'Expired'}: removing the credential FAILED, retrying`;
    case 'failed':
      return `Failed: ${r.error ?? 'the credential could not be created'}`;
    default:
      return `${TERMINAL_LABEL[r.state] ?? r.state}${r.state === 'cancelled' ? by : ''}`;
  }
}

/** The root message of a request, as it should look now. */
export function renderRequest(details: RequestDetails, ctx: RenderContext): RequestView {
  const r = details.request;
  const approvedBy = details.approvals.filter((a) => a.verdict === 'approve').map((a) => a.approver);
  const requirement = details.requirement ?? r.decision.approval;
  const title =
    r.kind === 'extension'
      ? `${ctx.mention(r.requester)} asks to extend ${r.parentId} (${formatTarget(r)}) by ${formatDuration(r.durationMs)}`
      : `${ctx.mention(r.requester)} requests ${formatTarget(r)} for ${formatDuration(r.durationMs)}`;
  const fields: FieldView[] = [
    { label: 'Requester', value: ctx.mention(r.requester) },
    { label: 'Target', value: r.target },
    { label: 'Level', value: r.level },
    { label: 'Duration', value: formatDuration(r.durationMs) },
    { label: 'Reason', value: r.reason || '(none)' },
  ];
  if (r.decision.outcome === 'needs_approval') {
    fields.push({ label: 'Needs', value: describeNeeds(requirement, ctx) });
  } else {
    fields.push({ label: 'Policy', value: r.decision.summary });
  }
  if (approvedBy.length > 0) {
    fields.push({ label: 'Approved by', value: approvedBy.map((id) => ctx.mention(id)).join(', ') });
  }
  fields.push({ label: 'Request', value: r.id });
  const pending = r.state === 'pending';
  const approvers = pending
    ? [...new Set(requirement.groups.flatMap((g) => g.members))].filter((id) => !approvedBy.includes(id))
    : [];
  const status = describeStatus(details, approvedBy, ctx);
  return {
    requestId: r.id,
    title,
    state: r.state,
    status,
    fields,
    actions: pending
      ? [
          { kind: 'approve', label: 'Approve', style: 'primary' },
          { kind: 'deny', label: 'Deny', style: 'danger' },
        ]
      : [],
    approvers,
    text: `${title}: ${status}`,
  };
}

/** The thread reply for an event, or undefined when the event adds nothing to the thread. */
export function renderStep(event: BrokerEvent, ctx: RenderContext): string | undefined {
  const r = event.request;
  switch (event.type) {
    case 'request.created':
      if (r.state !== 'pending') return `Approved by policy: ${r.decision.summary}.`;
      return `Waiting for ${describeNeeds(r.decision.approval, ctx)}. Approvers: use the buttons, or reply here with \`approve\` or \`deny <reason>\`.`;
    case 'approval.counted':
      return `${ctx.mention(event.approval.approver)} approved (${event.given}/${event.needed}).`;
    case 'request.denied':
      return `Denied by ${ctx.mention(event.by)}: ${event.reason}`;
    case 'request.cancelled':
      return `Cancelled by ${ctx.mention(event.by)}.`;
    case 'request.timed_out':
      return 'Timed out: nobody decided in time. The request is closed.';
    case 'request.reminder': {
      const who = [...new Set(r.decision.approval.groups.flatMap((g) => g.members))].map((id) =>
        ctx.mention(id),
      );
      return `Reminder: this request is still waiting for ${describeNeeds(r.decision.approval, ctx)}${who.length ? ` (${who.join(', ')})` : ''}. It times out at ${formatClock(r.pendingUntil)}.`;
    }
    case 'grant.active':
      return `Access is active until ${formatClock(r.expiresAt!)}. Connection details went to ${ctx.mention(r.requester)} by DM.`;
    case 'grant.failed':
      return `Activation failed: ${event.error}`;
    case 'grant.break_glass':
      return `:rotating_light: Break-glass access by ${ctx.mention(r.requester)}: active at once, approvers notified. Review it.`;
    case 'grant.extended':
      return `Extended by ${ctx.mention(event.by)} until ${formatClock(r.expiresAt!)} (was ${formatClock(event.previousExpiresAt)}).`;
    case 'grant.expiring':
      return `Expiring in ${formatDuration(Math.max(1000, event.inMs))}, at ${formatClock(r.expiresAt!)}.`;
    case 'grant.expired':
      return 'Expired: new logins are refused and sessions are ended; the credential is being removed.';
    case 'grant.revoked':
      return `Revoked by ${ctx.mention(event.by)}${event.reason !== 'revoked' ? `: ${event.reason}` : ''}. The credential is being removed.`;
    case 'grant.ended':
      return r.error ? 'The credential is removed.' : undefined;
    case 'credential.revocation_failed':
      return `:warning: ${event.approvers.map((id) => ctx.mention(id)).join(' ')} Removing the credential failed (${event.attempts} attempts); Warden keeps retrying. Error: ${event.error}`.replace(
        ':warning:  ',
        ':warning: ',
      );
    default:
      return undefined;
  }
}

/** Connection details for the requester's DM. The only place a credential's password is revealed. */
export function renderCredential(credential: IssuedCredential): string {
  const password = credential.password.reveal();
  if (credential.kind === 'ssh') {
    return [
      `ssh certificate for ${credential.principals.join(', ')} on ${credential.host}:${credential.port}, valid until ${formatClock(credential.expiresAt)}`,
      `key id: ${credential.keyId}`,
      'save it with: warden ssh login <grant id> (or copy the certificate below next to your key as <key>-cert.pub)',
      credential.certificate,
      `proxy token: ${password}`,
    ].join('\n');
  }
  return [
    `host: ${credential.host}  port: ${credential.port}  database: ${credential.database}`,
    `user: ${credential.user}`,
    `password: ${password}`,
    `psql "host=${credential.host} port=${credential.port} dbname=${credential.database} user=${credential.user}"  (password above; it stops working at ${formatClock(credential.expiresAt)})`,
  ].join('\n');
}

/** The DM to the requester for an event, or undefined when the requester need not be told. */
export function renderDm(event: BrokerEvent, ctx: RenderContext): string | undefined {
  const r = event.request;
  const what = `${r.kind === 'extension' ? 'extension' : 'request'} ${r.id} (${formatTarget(r)})`;
  switch (event.type) {
    case 'grant.active': {
      const head = `Your ${what} is approved and active until ${formatClock(r.expiresAt!)}.`;
      return event.credential ? `${head}\n${renderCredential(event.credential)}` : head;
    }
    case 'request.denied':
      return `Your ${what} was denied by ${ctx.mention(event.by)}: ${event.reason}`;
    case 'request.timed_out':
      return `Your ${what} timed out: nobody decided in time. Ask again or ping an approver.`;
    case 'grant.failed':
      return `Your ${what} was approved but activation failed: ${event.error}`;
    case 'grant.expiring':
      return `Your access ${r.id} (${formatTarget(r)}) expires in ${formatDuration(Math.max(1000, event.inMs))}, at ${formatClock(r.expiresAt!)}. Extend it with /access extend ${r.id} <duration>.`;
    case 'grant.expired':
      return `Your access ${r.id} (${formatTarget(r)}) has expired.`;
    case 'grant.revoked':
      return `Your access ${r.id} (${formatTarget(r)}) was revoked by ${ctx.mention(event.by)}${event.reason !== 'revoked' ? `: ${event.reason}` : ''}.`;
    case 'grant.extended':
      return `Your access ${r.id} (${formatTarget(r)}) now ends at ${formatClock(r.expiresAt!)}.`;
    default:
      return undefined;
  }
}

/** One line per request for `list`. */
export function renderListLine(request: AccessRequest, ctx: RenderContext): string {
  const when =
    request.state === 'active'
      ? `until ${formatClock(request.expiresAt!)}`
      : request.state === 'pending'
        ? `waiting since ${formatClock(request.createdAt)}`
        : '';
  const who = ctx.mention(request.requester);
  return `${request.id}  ${formatTarget(request)}  ${formatDuration(request.durationMs)}  ${request.state}${when ? ` ${when}` : ''}  by ${who}  ${request.reason}`.trimEnd();
}

/** Statement text shown in chat is cut to this many characters (the API has it whole). */
export const MAX_REVIEW_STATEMENT = 1500;

/** What the message about a held statement shows. */
export interface ReviewView {
  reviewId: string;
  title: string;
  /** The statement as the proxy recorded it (masked), cut to {@link MAX_REVIEW_STATEMENT}. */
  statement: string;
  status: string;
  fields: FieldView[];
  /** Empty once the review is decided. */
  actions: ActionView[];
  /** Plain-text summary. */
  text: string;
}

/** The message about a statement held for review, and its buttons while it is pending. */
export function renderReview(review: StatementReview, ctx: RenderContext): ReviewView {
  const statement =
    review.statement.length > MAX_REVIEW_STATEMENT
      ? `${review.statement.slice(0, MAX_REVIEW_STATEMENT - 1)}…`
      : review.statement;
  const by = review.decidedBy ? ctx.mention(review.decidedBy) : '';
  const why = review.decisionReason ? `: ${review.decisionReason}` : '';
  const status =
    review.state === 'pending'
      ? `Waiting for review until ${formatClock(review.deadline)} (an approver of ${review.target}:${review.level})`
      : review.state === 'approved'
        ? `Approved by ${by}${why}: the statement ran`
        : review.state === 'denied'
          ? `Denied by ${by}${why}`
          : `Expired${review.decisionReason ? ` (${review.decisionReason})` : ''}: the statement did not run`;
  const title = `Statement review ${review.id}: ${ctx.mention(review.requester)} on ${review.target}:${review.level}`;
  return {
    reviewId: review.id,
    title,
    statement,
    status,
    fields: [
      { label: 'Requester', value: ctx.mention(review.requester) },
      { label: 'Target', value: `${review.target}:${review.level}` },
      { label: 'Rule', value: review.rule },
      { label: 'Why', value: review.message },
    ],
    actions:
      review.state === 'pending'
        ? [
            { kind: 'approve', label: 'Approve', style: 'primary' },
            { kind: 'deny', label: 'Deny', style: 'danger' },
          ]
        : [],
    text: `${title} (rule ${review.rule}): ${status}`,
  };
}
