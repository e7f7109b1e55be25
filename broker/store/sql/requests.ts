/** Requests and approvals on SQL. */
import { type Selectable, sql } from 'kysely';
import type { AccessRequest, Approval } from '../../model.ts';
import type { RequestFilter, RequestStore } from '../store.ts';
import { type Db, num, numOrNull, type RequestRow } from './tables.ts';

const REQUEST_FIELDS: Record<keyof AccessRequest, keyof RequestRow> = {
  id: 'id',
  kind: 'kind',
  parentId: 'parent_id',
  requester: 'requester',
  target: 'target',
  level: 'level',
  durationMs: 'duration_ms',
  reason: 'reason',
  state: 'state',
  rule: 'rule',
  decision: 'decision',
  breakGlass: 'break_glass',
  source: 'source',
  createdAt: 'created_at',
  pendingUntil: 'pending_until',
  decidedAt: 'decided_at',
  activatedAt: 'activated_at',
  expiresAt: 'expires_at',
  endedAt: 'ended_at',
  endReason: 'end_reason',
  endedBy: 'ended_by',
  endState: 'end_state',
  remindedAt: 'reminded_at',
  expiringNotifiedAt: 'expiring_notified_at',
  error: 'error',
  version: 'version',
  meta: 'meta',
};

function toRequestRow(patch: Partial<AccessRequest>): Partial<RequestRow> {
  const row: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(patch)) {
    const column = REQUEST_FIELDS[key as keyof AccessRequest];
    if (!column) continue;
    if (key === 'decision' || key === 'meta') row[column] = JSON.stringify(value);
    else if (key === 'breakGlass') row[column] = value ? 1 : 0;
    else row[column] = value;
  }
  return row as Partial<RequestRow>;
}

function fromRequestRow(row: Selectable<RequestRow>): AccessRequest {
  return {
    id: row.id,
    kind: row.kind as AccessRequest['kind'],
    parentId: row.parent_id,
    requester: row.requester,
    target: row.target,
    level: row.level,
    durationMs: num(row.duration_ms),
    reason: row.reason,
    state: row.state as AccessRequest['state'],
    rule: row.rule,
    decision: JSON.parse(row.decision),
    breakGlass: Boolean(Number(row.break_glass)),
    source: row.source as AccessRequest['source'],
    createdAt: num(row.created_at),
    pendingUntil: num(row.pending_until),
    decidedAt: numOrNull(row.decided_at),
    activatedAt: numOrNull(row.activated_at),
    expiresAt: numOrNull(row.expires_at),
    endedAt: numOrNull(row.ended_at),
    endReason: row.end_reason,
    endedBy: row.ended_by,
    endState: (row.end_state ?? null) as AccessRequest['endState'],
    remindedAt: numOrNull(row.reminded_at),
    expiringNotifiedAt: numOrNull(row.expiring_notified_at),
    error: row.error,
    version: num(row.version),
    meta: JSON.parse(row.meta),
  };
}

export function createRequestQueries(db: Db): RequestStore {
  return {
    async insertRequest(request: AccessRequest): Promise<void> {
      await db
        .insertInto('warden_requests')
        .values(toRequestRow(request) as RequestRow)
        .execute();
    },

    async getRequest(id: string): Promise<AccessRequest | undefined> {
      const row = await db.selectFrom('warden_requests').selectAll().where('id', '=', id).executeTakeFirst();
      return row ? fromRequestRow(row) : undefined;
    },

    async listRequests(filter: RequestFilter): Promise<AccessRequest[]> {
      let q = db.selectFrom('warden_requests').selectAll();
      if (filter.requester) q = q.where('requester', '=', filter.requester);
      if (filter.target) q = q.where('target', '=', filter.target);
      if (filter.parentId) q = q.where('parent_id', '=', filter.parentId);
      if (filter.states?.length) q = q.where('state', 'in', [...filter.states]);
      const rows = await q
        .orderBy('created_at', 'desc')
        .orderBy('id')
        .limit(Math.min(filter.limit ?? 100, 1000))
        .execute();
      return rows.map(fromRequestRow);
    },

    async listRevokedUnexpired(now: number): Promise<AccessRequest[]> {
      const rows = await db
        .selectFrom('warden_requests')
        .selectAll()
        .where((eb) =>
          eb.or([
            eb('state', '=', 'revoked'),
            eb.and([eb('state', 'in', ['revoking', 'revocation_failed']), eb('end_state', '=', 'revoked')]),
          ]),
        )
        .where('kind', '=', 'access')
        .where('expires_at', '>', now)
        .orderBy('expires_at')
        .orderBy('id')
        .execute();
      return rows.map(fromRequestRow);
    },

    async updateRequest(
      id: string,
      expectedVersion: number,
      patch: Partial<AccessRequest>,
    ): Promise<AccessRequest | undefined> {
      const row = await db
        .updateTable('warden_requests')
        .set({ ...toRequestRow(patch), version: expectedVersion + 1 })
        .where('id', '=', id)
        .where('version', '=', expectedVersion)
        .returningAll()
        .executeTakeFirst();
      return row ? fromRequestRow(row) : undefined;
    },

    async completeRevocations(ids: readonly string[]): Promise<AccessRequest[]> {
      const done: AccessRequest[] = [];
      for (let i = 0; i < ids.length; i += 500) {
        const rows = await db
          .updateTable('warden_requests')
          .set({ state: sql`end_state`, version: sql`version + 1` })
          .where('id', 'in', [...ids.slice(i, i + 500)])
          .where('state', 'in', ['revoking', 'revocation_failed'])
          .where('end_state', 'in', ['expired', 'revoked'])
          .where(({ not, exists, selectFrom }) =>
            not(
              exists(
                selectFrom('warden_credentials as c')
                  .select('c.id')
                  .whereRef('c.request_id', '=', 'warden_requests.id')
                  .where('c.state', 'in', ['minting', 'active', 'revoking']),
              ),
            ),
          )
          .returningAll()
          .execute();
        done.push(...rows.map(fromRequestRow));
      }
      return done;
    },

    async findDue(now: number, expiringWithinMs: number) {
      const timedOut = await db
        .selectFrom('warden_requests')
        .selectAll()
        .where('state', '=', 'pending')
        .where('pending_until', '<=', now)
        .limit(1000)
        .execute();
      const expired = await db
        .selectFrom('warden_requests')
        .selectAll()
        .where('state', '=', 'active')
        .where('expires_at', '<=', now)
        .limit(5000)
        .execute();
      const expiring = await db
        .selectFrom('warden_requests')
        .selectAll()
        .where('state', '=', 'active')
        .where('expires_at', '>', now)
        .where('expires_at', '<=', now + expiringWithinMs)
        .where('expiring_notified_at', 'is', null)
        .limit(1000)
        .execute();
      // A reminder goes out once, half-way through the pending time.
      const remind = await db
        .selectFrom('warden_requests')
        .selectAll()
        .where('state', '=', 'pending')
        .where('reminded_at', 'is', null)
        .where(sql<boolean>`created_at + (pending_until - created_at) / 2 <= ${now}`)
        .limit(1000)
        .execute();
      return {
        timedOut: timedOut.map(fromRequestRow),
        expired: expired.map(fromRequestRow),
        expiring: expiring.map(fromRequestRow),
        remind: remind.map(fromRequestRow),
      };
    },

    async insertApproval(approval: Approval): Promise<boolean> {
      const result = await db
        .insertInto('warden_approvals')
        .values({
          request_id: approval.requestId,
          approver: approval.approver,
          verdict: approval.verdict,
          reason: approval.reason,
          at: approval.at,
        })
        .onConflict((oc) => oc.columns(['request_id', 'approver']).doNothing())
        .executeTakeFirst();
      return Number(result.numInsertedOrUpdatedRows ?? 0) === 1;
    },

    async listApprovals(requestId: string): Promise<Approval[]> {
      const rows = await db
        .selectFrom('warden_approvals')
        .selectAll()
        .where('request_id', '=', requestId)
        .orderBy('at')
        .execute();
      return rows.map((r) => ({
        requestId: r.request_id,
        approver: r.approver,
        verdict: r.verdict as Approval['verdict'],
        reason: r.reason,
        at: Number(r.at),
      }));
    },
  };
}
