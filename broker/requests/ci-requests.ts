/**
 * CI jobs' requests: created under a matched CI rule (not `rules:`), and, when the rule needs an
 * approval, minted only when the job collects them (see `broker/ci/exchange.ts`).
 */
import { formatCiRuleRef, resolveCiRequirement } from '../ci/approvers.ts';
import { CI_DEFAULTS } from '../ci/config.ts';
import { InvalidInputError, PolicyDeniedError, StateConflictError } from '../errors.ts';
import type { AccessRequest } from '../model.ts';
import { describeRequirement, type PolicyDecision } from '../policy/evaluate.ts';
import type { Activator } from './activation.ts';
import { getRequest, MAX_REASON, openRequest, stateConflict, transition } from './records.ts';
import type { Activation, BrokerContext, CreateCiRequestInput } from './types.ts';

/** Creates and collects CI jobs' requests. */
export class CiRequests {
  readonly #c: BrokerContext;
  readonly #activator: Activator;
  readonly #open: (request: AccessRequest, extra: Record<string, unknown>) => Promise<void>;

  constructor(
    context: BrokerContext,
    activator: Activator,
    open: (request: AccessRequest, extra: Record<string, unknown>) => Promise<void>,
  ) {
    this.#c = context;
    this.#activator = activator;
    this.#open = open;
  }

  /**
   * Creates a CI job's request under a matched CI rule: the requester is not looked up in the
   * directory and `rules:` are not consulted. Auto-approved rules come back active; others stay
   * pending for the CI rule's approvers and, once approved, wait in `approved` until the job
   * collects them with {@link collectCi}, so a credential is only minted when the job is there
   * to receive it.
   */
  async requestCi(input: CreateCiRequestInput): Promise<Activation> {
    const now = this.#c.clock();
    const { rule } = input;
    if (!this.#c.providers.has(rule.target) || !this.#c.config.targets[rule.target]?.levels[rule.level]) {
      throw new InvalidInputError(
        'ERR_TARGET_UNKNOWN',
        `CI rule ${rule.name} names ${rule.target}:${rule.level}, which is not a configured target level`,
      );
    }
    const auto = rule.approval === 'auto';
    const approval = resolveCiRequirement(rule, this.#c.directory, input.requester);
    if (!auto && new Set(approval.groups.flatMap((g) => g.members)).size < approval.count) {
      throw new PolicyDeniedError(
        'ERR_POLICY_NO_APPROVER',
        `CI rule ${rule.name} needs ${describeRequirement(approval)}, and not enough people can approve`,
      );
    }
    const decision: PolicyDecision = {
      outcome: auto ? 'auto_approved' : 'needs_approval',
      rule: formatCiRuleRef(rule),
      target: rule.target,
      level: rule.level,
      durationMs: input.durationMs,
      maxDurationMs: rule.maxDurationMs,
      pendingTimeoutMs: CI_DEFAULTS.pendingTimeoutMs,
      approval,
      summary: auto ? `auto-approved by CI rule ${rule.name}` : describeRequirement(approval),
      extend: { allowed: false, needsApproval: false },
    };
    const request = openRequest(now, decision, {
      requester: input.requester,
      reason: input.reason.slice(0, MAX_REASON),
      source: 'ci',
      meta: input.meta,
    });
    await this.#open(request, { ci: input.meta });
    return auto ? this.#activator.activate(request) : { request };
  }

  /**
   * Mints the credential of an approved CI request and makes it active. Exactly one caller wins
   * (the claim is a compare-and-set); a request left uncollected past its pending time times out.
   */
  async collectCi(id: string): Promise<Activation> {
    const request = await getRequest(this.#c.store, id);
    if (request.source !== 'ci' || request.state !== 'approved' || request.meta.collectedAt !== undefined) {
      throw stateConflict(request, 'collect');
    }
    const now = this.#c.clock();
    if (request.pendingUntil <= now) {
      const late = await transition(this.#c.store, request, ['approved'], {
        state: 'timed_out',
        endedAt: now,
        endReason: 'approved but not collected in time',
      });
      await this.#c.audit.record('warden', 'request.timed_out', id, { reason: 'not collected' });
      this.#c.events.publish({ type: 'request.timed_out', request: late });
      throw stateConflict(late, 'collect');
    }
    const claimed = await this.#c.store.updateRequest(id, request.version, {
      meta: { ...request.meta, collectedAt: now },
    });
    if (!claimed) throw new StateConflictError(`request ${id} is being collected`, { state: request.state });
    return this.#activator.activate(claimed);
  }
}
