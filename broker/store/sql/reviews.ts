/** Statements held for review on SQL. */
import type { Selectable } from 'kysely';
import type { StatementReview } from '../../model.ts';
import type { ReviewFilter, ReviewStore } from '../store.ts';
import { type Db, num, numOrNull, type ReviewRow } from './tables.ts';

const REVIEW_FIELDS: Record<keyof StatementReview, keyof ReviewRow> = {
  id: 'id',
  grantId: 'grant_id',
  requester: 'requester',
  target: 'target',
  level: 'level',
  sessionId: 'session_id',
  statement: 'statement',
  rule: 'rule',
  message: 'message',
  state: 'state',
  createdAt: 'created_at',
  deadline: 'deadline',
  decidedAt: 'decided_at',
  decidedBy: 'decided_by',
  decisionReason: 'decision_reason',
  version: 'version',
  meta: 'meta',
  heldAt: 'held_at',
};

function toReviewRow(patch: Partial<StatementReview>): Partial<ReviewRow> {
  const row: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(patch)) {
    const column = REVIEW_FIELDS[key as keyof StatementReview];
    if (column) row[column] = key === 'meta' ? JSON.stringify(value) : value;
  }
  return row as Partial<ReviewRow>;
}

function fromReviewRow(row: Selectable<ReviewRow>): StatementReview {
  return {
    id: row.id,
    grantId: row.grant_id,
    requester: row.requester,
    target: row.target,
    level: row.level,
    sessionId: row.session_id,
    statement: row.statement,
    rule: row.rule,
    message: row.message,
    state: row.state as StatementReview['state'],
    createdAt: num(row.created_at),
    deadline: num(row.deadline),
    decidedAt: numOrNull(row.decided_at),
    decidedBy: row.decided_by,
    decisionReason: row.decision_reason,
    version: num(row.version),
    meta: JSON.parse(row.meta),
    heldAt: numOrNull(row.held_at),
  };
}

export function createReviewQueries(db: Db): ReviewStore {
  return {
    async insertReview(review: StatementReview): Promise<void> {
      await db
        .insertInto('warden_reviews')
        .values(toReviewRow(review) as ReviewRow)
        .execute();
    },

    async getReview(id: string): Promise<StatementReview | undefined> {
      const row = await db.selectFrom('warden_reviews').selectAll().where('id', '=', id).executeTakeFirst();
      return row ? fromReviewRow(row) : undefined;
    },

    async listReviews(filter: ReviewFilter): Promise<StatementReview[]> {
      let q = db.selectFrom('warden_reviews').selectAll();
      if (filter.grantId) q = q.where('grant_id', '=', filter.grantId);
      if (filter.states?.length) q = q.where('state', 'in', [...filter.states]);
      const rows = await q
        .orderBy('created_at', 'desc')
        .orderBy('id')
        .limit(Math.min(filter.limit ?? 100, 1000))
        .execute();
      return rows.map(fromReviewRow);
    },

    async updateReview(
      id: string,
      expectedVersion: number,
      patch: Partial<StatementReview>,
    ): Promise<StatementReview | undefined> {
      const row = await db
        .updateTable('warden_reviews')
        .set({ ...toReviewRow(patch), version: expectedVersion + 1 })
        .where('id', '=', id)
        .where('version', '=', expectedVersion)
        .returningAll()
        .executeTakeFirst();
      return row ? fromReviewRow(row) : undefined;
    },

    async holdReviews(ids: readonly string[], at: number): Promise<void> {
      if (ids.length === 0) return;
      // Not a change of the review: no version bump, so it never races a decision's compare-and-set.
      await db
        .updateTable('warden_reviews')
        .set({ held_at: at })
        .where('id', 'in', [...ids])
        .where('state', '=', 'pending')
        .execute();
    },
  };
}
