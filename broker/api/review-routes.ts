/**
 * The statement-review routes of the broker API: `GET /v1/reviews[?state=pending]` and
 * `POST /v1/reviews/<id>/approve|deny` (body: `actor` for service tokens, optional `reason`).
 * The broker checks on every call that the actor is an approver of the grant's level.
 */
import { InvalidInputError } from '../errors.ts';
import type { ReviewState, StatementReview } from '../model.ts';
import type { StatementReviews } from '../reviews/reviews.ts';
import { actorOf, type Route, str } from './server.ts';

const STATES: readonly ReviewState[] = ['pending', 'approved', 'denied', 'expired'];

/** A review as the API returns it (ISO times, no internal version or chat ids). */
export interface ApiReview {
  id: string;
  grant: string;
  requester: string;
  target: string;
  level: string;
  session: string;
  statement: string;
  rule: string;
  message: string;
  state: ReviewState;
  created: string;
  deadline: string;
  decided: string | null;
  decided_by: string | null;
  reason: string | null;
}

/** The API form of a review. */
export function toApiReview(review: StatementReview): ApiReview {
  return {
    id: review.id,
    grant: review.grantId,
    requester: review.requester,
    target: review.target,
    level: review.level,
    session: review.sessionId,
    statement: review.statement,
    rule: review.rule,
    message: review.message,
    state: review.state,
    created: new Date(review.createdAt).toISOString(),
    deadline: new Date(review.deadline).toISOString(),
    decided: review.decidedAt === null ? null : new Date(review.decidedAt).toISOString(),
    decided_by: review.decidedBy,
    reason: review.decisionReason,
  };
}

/** Routes over {@link StatementReviews}, mounted with the API server's `extraRoutes`. */
export function createReviewRoutes(reviews: StatementReviews): Route[] {
  return [
    {
      method: 'GET',
      pattern: /^\/v1\/reviews$/,
      handler: async ({ query }) => {
        const states = query.get('state')?.split(',').filter(Boolean) ?? [];
        for (const state of states) {
          if (!STATES.includes(state as ReviewState)) {
            throw new InvalidInputError(
              'ERR_API_BAD_REQUEST',
              `"state" takes ${STATES.join(', ')} (comma-separated)`,
            );
          }
        }
        const list = await reviews.list({
          ...(states.length ? { states: states as ReviewState[] } : {}),
          ...(query.get('grant') ? { grantId: query.get('grant')! } : {}),
          limit: Math.min(Number(query.get('limit') ?? 100) || 100, 1000),
        });
        return { reviews: list.map(toApiReview) };
      },
    },
    ...(['approve', 'deny'] as const).map(
      (verb): Route => ({
        method: 'POST',
        pattern: new RegExp(`^/v1/reviews/([a-z0-9_]{1,64})/${verb}$`),
        handler: async ({ caller, params, body }) => {
          const actor = actorOf(caller, body);
          const reason = str(body, 'reason', false) ?? '';
          const review =
            verb === 'approve'
              ? await reviews.approve(params[0]!, actor, reason)
              : await reviews.deny(params[0]!, actor, reason);
          return { review: toApiReview(review) };
        },
      }),
    ),
  ];
}
