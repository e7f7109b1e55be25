/**
 * Extensions of active grants. The total, counted from activation, is checked against the rule's
 * maximum when an extension is asked for and again when it is applied (issue 14: two approved
 * `extend 45m` made a 1h rule last 105 minutes). Extensions are approved by default; a rule opts
 * out with `extend: {needs_approval: false}`.
 */
import { createId } from '../../lib/ids.ts';
import { formatDuration, parseDuration } from '../config/duration.ts';
import { ForbiddenError, InvalidInputError, PolicyDeniedError } from '../errors.ts';
import type { AccessRequest } from '../model.ts';
import { getRequest, stateConflict, transition, UNSTARTED } from './records.ts';
import type { Scheduler } from './scheduler.ts';
import type { Actor, BrokerContext } from './types.ts';

/** Asks for, applies and refuses extensions. */
export class Extensions {
  readonly #c: BrokerContext;
  readonly #scheduler: Scheduler;

  constructor(context: BrokerContext, scheduler: Scheduler) {
    this.#c = context;
    this.#scheduler = scheduler;
  }

  /**
   * Lengthens an active grant by `duration`, within the rule's maximum. When the rule wants
   * extensions approved, returns a pending `extension` request instead.
   */
  async extend(id: string, actor: Actor, duration: string | number): Promise<AccessRequest> {
    const byMs = typeof duration === 'string' ? parseDuration(duration) : duration;
    const grant = await getRequest(this.#c.store, id);
    if (grant.requester !== actor.id && !this.#c.approvers.isAdmin(actor)) {
      throw new ForbiddenError('ERR_FORBIDDEN', 'only the requester can extend a grant');
    }
    if (grant.state !== 'active' || grant.kind !== 'access') throw stateConflict(grant, 'extend');
    const rule = this.#c.approvers.rule(grant);
    if (!(rule?.extend.allowed ?? grant.decision.extend.allowed)) {
      throw new PolicyDeniedError('ERR_POLICY_DENIED', `rule ${grant.rule} does not allow extensions`);
    }
    this.#checkExtensionTotal(grant, byMs);
    // Extensions are approved unless the rule opts out; a rule that is gone falls back to approval.
    if (rule?.extend.needs_approval ?? true) {
      const approvers = new Set(this.#c.approvers.resolve(grant).groups.flatMap((g) => g.members));
      approvers.delete(grant.requester);
      if (approvers.size === 0) {
        throw new PolicyDeniedError(
          'ERR_POLICY_NO_APPROVER',
          `rule ${grant.rule} has extensions approved and nobody can approve this one (set extend.needs_approval: false on the rule to extend without approval)`,
        );
      }
      const now = this.#c.clock();
      const extension: AccessRequest = {
        ...grant,
        id: createId('r'),
        kind: 'extension',
        parentId: grant.id,
        durationMs: byMs,
        state: 'pending',
        createdAt: now,
        pendingUntil: Math.min(now + grant.decision.pendingTimeoutMs, grant.expiresAt!),
        decidedAt: null,
        ...UNSTARTED,
        reason: `extend ${grant.id} by ${formatDuration(byMs)}`,
      };
      await this.#c.store.insertRequest(extension);
      await this.#c.audit.record(actor.id, 'request.created', extension.id, {
        extends: grant.id,
        by: formatDuration(byMs),
      });
      this.#c.events.publish({ type: 'request.created', request: extension });
      return extension;
    }
    const extension = {
      ...grant,
      durationMs: byMs,
      id: grant.id,
      kind: 'extension' as const,
      parentId: grant.id,
    };
    return this.#applyExtension(extension, actor.id);
  }

  /**
   * Refuses an extension that would make the grant last longer than its rule's maximum, counted
   * from activation. Checked when the extension is asked for and again when it is applied: two
   * extensions asked for together each fit alone, and only the second to land finds it would not.
   */
  #checkExtensionTotal(grant: AccessRequest, byMs: number): void {
    const max = this.#c.approvers.rule(grant)?.duration.max ?? grant.decision.maxDurationMs;
    const total = grant.expiresAt! + byMs - grant.activatedAt!;
    if (total <= max) return;
    const left = Math.max(0, max - (grant.expiresAt! - grant.activatedAt!));
    throw new InvalidInputError(
      'ERR_REQUEST_DURATION',
      `extending by ${formatDuration(byMs)} would exceed the ${formatDuration(max)} maximum of rule ${grant.rule} (at most ${formatDuration(left)} more)`,
      { details: { maxMs: max, leftMs: left } },
    );
  }

  /**
   * Applies an approved extension request; one that no longer fits the maximum (another extension
   * landed first) ends `failed`, audited, and the grant keeps its expiry.
   */
  async applyApproved(extension: AccessRequest, by: string): Promise<AccessRequest> {
    try {
      return await this.#applyExtension(extension, by);
    } catch (error) {
      if ((error as { code?: string }).code !== 'ERR_REQUEST_DURATION') throw error;
      const message = (error as Error).message;
      const failed = await transition(this.#c.store, extension, ['approved'], {
        state: 'failed',
        error: message,
        endedAt: this.#c.clock(),
      });
      await this.#c.audit.record('warden', 'extension.refused', extension.id, {
        extends: extension.parentId,
        reason: message,
      });
      this.#c.events.publish({ type: 'grant.failed', request: failed, error: message });
      throw error;
    }
  }

  async #applyExtension(extension: AccessRequest, by: string): Promise<AccessRequest> {
    const parent = await getRequest(this.#c.store, extension.parentId!);
    if (parent.state !== 'active') throw stateConflict(parent, 'extend');
    this.#checkExtensionTotal(parent, extension.durationMs);
    const previous = parent.expiresAt!;
    const expiresAt = previous + extension.durationMs;
    for (const credential of await this.#c.store.listCredentials({
      requestId: parent.id,
      states: ['active'],
    })) {
      await this.#c.providers.get(credential.target)?.extend(credential, expiresAt);
      await this.#c.store.updateCredential(credential.id, { expiresAt });
    }
    const extended = await transition(this.#c.store, parent, ['active'], {
      expiresAt,
      expiringNotifiedAt: null,
    });
    if (extension.id !== parent.id) {
      await transition(this.#c.store, extension, ['approved'], { activatedAt: this.#c.clock(), expiresAt });
    }
    this.#scheduler.book(extended);
    await this.#c.audit.record(by, 'grant.extended', parent.id, {
      from: new Date(previous).toISOString(),
      to: new Date(expiresAt).toISOString(),
    });
    this.#c.events.publish({ type: 'grant.extended', request: extended, by, previousExpiresAt: previous });
    return extended;
  }
}
