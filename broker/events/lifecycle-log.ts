/**
 * The lifecycle log: one info line (pino) for every request, decision, grant, extension and
 * revocation the broker publishes, and, through {@link logSessions}, for every proxied session's
 * start and end. An operator reads what happened from the log alone, without the store.
 *
 * Lines carry ids, target, access level (`access_level`: `level` is the line's own), who acted (`actor`), what made the call (`via`, the audit's
 * caller: `token:<name>`, `chat:slack`, `oidc:<issuer>`, `warden`), and durations; never a
 * credential (passwords, tokens, certificates, private keys), a statement's text, or free text a
 * person typed (reasons, deny reasons: they stay in the audit log, where they are chained and
 * access-controlled). Failure texts are scrubbed of connection-string passwords and cut.
 */
import type { Logger } from '../../lib/log.ts';
import { resolveVia } from '../audit/caller.ts';
import { scrubSecrets } from '../log.ts';
import type { AccessRequest } from '../model.ts';
import type { SessionSink } from '../ports/proxy.ts';
import type { BrokerEvent, BrokerEvents } from './events.ts';

/** One line of the lifecycle log. */
export interface LifecycleLine {
  level: 'info' | 'warn';
  msg: string;
  fields: Record<string, unknown>;
}

/** Longest failure text a line carries (characters). */
const MAX_ERROR_CHARS = 300;

function requestFields(request: AccessRequest): Record<string, unknown> {
  return {
    request: request.id,
    kind: request.kind,
    ...(request.parentId ? { grant: request.parentId } : {}),
    requester: request.requester,
    target: request.target,
    // Not `level`: that key is the log line's own level.
    access_level: request.level,
    rule: request.rule,
    source: request.source,
  };
}

function errorText(text: string): string {
  return scrubSecrets(text).slice(0, MAX_ERROR_CHARS);
}

/** The fields of an actor's step: who, and what made the call. */
function acted(actor: string): Record<string, unknown> {
  return { actor, via: resolveVia(actor) };
}

/**
 * What the lifecycle log says about `event`, or undefined for events it leaves to the chat
 * (reminders, the expiring-soon notice). Pure: the subscriber writes it.
 */
export function describeLifecycleEvent(event: BrokerEvent): LifecycleLine | undefined {
  const base = requestFields(event.request);
  const r = event.request;
  switch (event.type) {
    case 'request.created':
      return {
        level: 'info',
        msg: r.kind === 'extension' ? 'extension requested' : 'access requested',
        fields: {
          ...base,
          ...acted(r.requester),
          duration_ms: r.durationMs,
          state: r.state,
          ...(r.breakGlass ? { break_glass: true } : {}),
        },
      };
    case 'approval.counted':
      return {
        level: 'info',
        msg: 'approval counted',
        fields: { ...base, ...acted(event.approval.approver), given: event.given, needed: event.needed },
      };
    case 'request.denied':
      return { level: 'info', msg: 'request denied', fields: { ...base, ...acted(event.by) } };
    case 'request.cancelled':
      return { level: 'info', msg: 'request cancelled', fields: { ...base, ...acted(event.by) } };
    case 'request.timed_out':
      return { level: 'info', msg: 'request timed out', fields: { ...base, ...acted('warden') } };
    case 'grant.active':
      return {
        level: 'info',
        msg: 'grant active',
        fields: {
          ...base,
          duration_ms: r.durationMs,
          expires_at: r.expiresAt === null ? null : new Date(r.expiresAt).toISOString(),
          ...(event.credential
            ? {
                credential_kind: event.credential.kind,
                // The account, never its secret: the role name or the certificate's principal.
                login: event.credential.login,
              }
            : {}),
          ...(r.breakGlass ? { break_glass: true } : {}),
        },
      };
    case 'grant.failed':
      return {
        level: 'warn',
        msg: 'grant failed to activate',
        fields: { ...base, error: errorText(event.error) },
      };
    case 'grant.break_glass':
      return { level: 'warn', msg: 'break-glass grant', fields: { ...base, ...acted(r.requester) } };
    case 'grant.extended':
      return {
        level: 'info',
        msg: 'grant extended',
        fields: {
          ...base,
          ...acted(event.by),
          expires_at: r.expiresAt === null ? null : new Date(r.expiresAt).toISOString(),
          added_ms: (r.expiresAt ?? event.previousExpiresAt) - event.previousExpiresAt,
        },
      };
    case 'grant.expired':
      return {
        level: 'info',
        msg: 'grant expired',
        fields: { ...base, ...acted('warden'), ...lived(r) },
      };
    case 'grant.revoked':
      return { level: 'info', msg: 'grant revoked', fields: { ...base, ...acted(event.by), ...lived(r) } };
    case 'grant.ended':
      return {
        level: 'info',
        msg: 'grant credentials removed',
        fields: { ...base, state: r.state, ...lived(r) },
      };
    case 'credential.revocation_failed':
      return {
        level: 'warn',
        msg: 'credential removal failed; retrying',
        fields: { ...base, attempts: event.attempts, error: errorText(event.error) },
      };
    case 'review.requested':
      return {
        level: 'info',
        msg: 'statement held for review',
        fields: {
          ...base,
          review: event.review.id,
          session: event.review.sessionId,
          guardrail: event.review.rule,
        },
      };
    case 'review.decided':
      return {
        level: 'info',
        msg: 'statement review decided',
        fields: {
          ...base,
          review: event.review.id,
          decision: event.review.state,
          ...(event.review.decidedBy ? acted(event.review.decidedBy) : {}),
        },
      };
    case 'request.reminder':
    case 'grant.expiring':
      return undefined;
  }
}

/** How long a grant that ended was live (ms), when it was activated. */
function lived(request: AccessRequest): Record<string, unknown> {
  if (request.activatedAt === null || request.endedAt === null) return {};
  return { lived_ms: Math.max(0, request.endedAt - request.activatedAt) };
}

/** Writes {@link describeLifecycleEvent}'s line of every event; returns the unsubscribe. */
export function followLifecycleLog(events: BrokerEvents, logger: Logger): () => void {
  return events.subscribe((event) => {
    const line = describeLifecycleEvent(event);
    if (line) logger[line.level](line.fields, line.msg);
  });
}

/** The facts a session's end line repeats from its start (bounded by the live sessions). */
interface OpenSession {
  protocol: string;
  grant: string;
  requester: string;
  target: string;
  level: string;
  login: string;
  startedAt: number;
}

/**
 * The session sink, logging each session's start and end (id, protocol, grant, requester, target,
 * level, login, client address, how it ended and how long it lasted). Timelines and recordings
 * are not logged: they hold what people typed and saw.
 */
export function logSessions(sink: SessionSink, logger: Logger): SessionSink {
  const open = new Map<string, OpenSession>();
  return {
    async insertSession(session) {
      await sink.insertSession(session);
      open.set(session.id, {
        protocol: session.protocol,
        grant: session.grantId,
        requester: session.requester,
        target: session.target,
        level: session.level,
        login: session.login,
        startedAt: session.startedAt,
      });
      logger.info(
        {
          session: session.id,
          protocol: session.protocol,
          grant: session.grantId,
          requester: session.requester,
          target: session.target,
          access_level: session.level,
          login: session.login,
          client: session.clientAddress,
          via: `proxy:${session.protocol}`,
        },
        'session started',
      );
    },
    appendSessionEvents: (events) => sink.appendSessionEvents(events),
    appendSessionFrames: (id, seq, piece) => sink.appendSessionFrames(id, seq, piece),
    async endSession(id, end) {
      await sink.endSession(id, end);
      const started = open.get(id);
      open.delete(id);
      logger.info(
        {
          session: id,
          ...(started
            ? {
                protocol: started.protocol,
                grant: started.grant,
                requester: started.requester,
                target: started.target,
                access_level: started.level,
                login: started.login,
                duration_ms: Math.max(0, end.endedAt - started.startedAt),
              }
            : {}),
          end_reason: errorText(end.endReason),
          ...countersOf(end.summary),
        },
        'session ended',
      );
    },
  };
}

/** The numeric counters of a session's summary (statements, blocked, rows, bytes): never text. */
function countersOf(summary: Record<string, unknown>): Record<string, number> {
  const counters: Record<string, number> = {};
  for (const [key, value] of Object.entries(summary)) {
    if (typeof value === 'number' && Number.isFinite(value) && /^[a-z_]{1,40}$/i.test(key))
      counters[key] = value;
  }
  return counters;
}
