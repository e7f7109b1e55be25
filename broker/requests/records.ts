/**
 * What every part of the broker does with request records: open one, read one, move it with a
 * compare-and-set, and say why an operation does not apply to its state.
 */
import { createId } from '../../lib/ids.ts';
import { NotFoundError, StateConflictError } from '../errors.ts';
import type { AccessRequest, RequestState } from '../model.ts';
import type { PolicyDecision } from '../policy/evaluate.ts';
import type { Store } from '../store/store.ts';

/** The longest reason kept (longer ones are refused on requests, cut on denials and revocations). */
export const MAX_REASON = 500;

const REQUEST_MESSAGES: Partial<Record<RequestState, string>> = {
  approved: 'was already approved',
  active: 'was already approved and is active',
  expired: 'has expired',
  revoked: 'was revoked',
  revoking: 'has ended; its credential is being removed',
  revocation_failed: 'has ended; removing its credential failed and is being retried',
  denied: 'was denied',
  cancelled: 'was cancelled',
  timed_out: 'timed out waiting for approval',
  failed: 'failed to activate',
};

/** Reads a request, or throws `ERR_NOT_FOUND` (ids longer than 64 are never looked up). */
export async function getRequest(store: Pick<Store, 'getRequest'>, id: string): Promise<AccessRequest> {
  const request = typeof id === 'string' && id.length <= 64 ? await store.getRequest(id) : undefined;
  if (!request) throw new NotFoundError('request', String(id).slice(0, 64));
  return request;
}

/** Why `verb` does not apply to `request` in its state (`cannot approve: request r1 was denied by bob`). */
export function stateConflict(request: AccessRequest, verb: string): StateConflictError {
  const what = request.kind === 'extension' ? 'extension request' : 'request';
  const why = REQUEST_MESSAGES[request.state] ?? `is ${request.state}`;
  const by = request.endedBy ? ` by ${request.endedBy}` : '';
  return new StateConflictError(`cannot ${verb}: ${what} ${request.id} ${why}${by}`, {
    state: request.state,
  });
}

/** Compare-and-set from one of `from` states; retries on a version bump that kept the state. */
export async function transition(
  store: Pick<Store, 'getRequest' | 'updateRequest'>,
  request: AccessRequest,
  from: RequestState[],
  patch: Partial<AccessRequest>,
): Promise<AccessRequest> {
  let current = request;
  for (let attempt = 0; attempt < 5; attempt++) {
    if (!from.includes(current.state)) throw stateConflict(current, String(patch.state ?? 'update'));
    const done = await store.updateRequest(current.id, current.version, patch);
    if (done) return done;
    current = (await store.getRequest(current.id))!;
  }
  throw new StateConflictError(`request ${request.id} is changing too fast; try again`);
}

/** The fields of a request record that has not been activated or ended yet. */
export const UNSTARTED = {
  activatedAt: null,
  expiresAt: null,
  endedAt: null,
  endReason: null,
  endedBy: null,
  endState: null,
  remindedAt: null,
  expiringNotifiedAt: null,
  error: null,
  version: 1,
} as const;

/** A new request record for a policy decision (human or CI). */
export function openRequest(
  now: number,
  decision: PolicyDecision,
  fields: Pick<AccessRequest, 'requester' | 'reason' | 'source' | 'meta'>,
): AccessRequest {
  return {
    id: createId('r'),
    kind: 'access',
    parentId: null,
    ...fields,
    target: decision.target,
    level: decision.level,
    durationMs: decision.durationMs,
    state: decision.outcome === 'needs_approval' ? 'pending' : 'approved',
    rule: decision.rule,
    decision,
    breakGlass: decision.outcome === 'break_glass',
    createdAt: now,
    pendingUntil: now + decision.pendingTimeoutMs,
    decidedAt: decision.outcome === 'needs_approval' ? null : now,
    ...UNSTARTED,
  };
}
