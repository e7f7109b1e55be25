/**
 * The broker: requests, approvals and grants. Every transition is a compare-and-set on the
 * stored record, written before anyone is told, audited, then published as an event.
 */
import { Cron } from 'croner';
import { createId } from '../../lib/ids.ts';
import { resolveVia, runAsCaller } from '../audit/caller.ts';
import { findCiRule, formatCiRuleRef, resolveCiRequirement } from '../ci/approvers.ts';
import { CI_DEFAULTS, type CiRuleConfig } from '../ci/config.ts';
import { formatDuration, parseDuration } from '../config/duration.ts';
import type { Config } from '../config/load.ts';
import type { RuleConfig } from '../config/schema.ts';
import type { Directory, Person } from '../directory/directory.ts';
import {
  ForbiddenError,
  InvalidInputError,
  NotFoundError,
  PolicyDeniedError,
  StateConflictError,
} from '../errors.ts';
import type { EventBus, IssuedCredential } from '../events/events.ts';
import type { Logger } from '../log.ts';
import type {
  AccessRequest,
  Approval,
  AuditEntry,
  AuditInput,
  CredentialRecord,
  RequestSource,
  RequestState,
} from '../model.ts';
import {
  type ApprovalRequirement,
  describeRequirement,
  evaluatePolicy,
  isRequirementMet,
  type PolicyDecision,
  resolveApprovers,
} from '../policy/evaluate.ts';
import type { CredentialProvider, TargetHealth } from '../providers/provider.ts';
import type { RequestFilter, Store } from '../store/store.ts';
import { type RevocationOutcome, Revoker } from './revoker.ts';

/** Who performs an operation: a person from the directory, or an admin/service token. */
export interface Actor {
  id: string;
  admin: boolean;
}

export interface CreateRequestInput {
  requester: string;
  target: string;
  level?: string | undefined;
  /** `30m`, or milliseconds. */
  duration?: string | number | undefined;
  reason?: string | undefined;
  breakGlass?: boolean | undefined;
  source: RequestSource;
  meta?: Record<string, unknown> | undefined;
}

/** A CI job's request, after its token was verified and a CI rule matched (see `broker/ci/`). */
export interface CreateCiRequestInput {
  /** `ci:<issuer>:<subject>`: the job, not a person. */
  requester: string;
  /** The matched CI rule: it sets target, level, maximum and approvers (`rules:` do not apply). */
  rule: CiRuleConfig;
  /** Granted lifetime in milliseconds, already checked against the rule's maximum. */
  durationMs: number;
  reason: string;
  /** Job facts (repository, run id, commit, ...). Never secrets. */
  meta: Record<string, unknown>;
}

/** A request as a call left it, and the credential when that call activated it (its caller's only). */
export interface Activation {
  request: AccessRequest;
  /** Present when this call minted: handed to the caller, never stored. */
  credential?: IssuedCredential;
}

export interface RequestDetails {
  request: AccessRequest;
  approvals: Approval[];
  credentials: CredentialRecord[];
  /** Who may still approve, resolved now (pending requests). */
  requirement: ApprovalRequirement | undefined;
}

export interface BrokerOptions {
  config: Config;
  directory: Directory;
  store: Store;
  providers: ReadonlyMap<string, CredentialProvider>;
  events: EventBus;
  logger: Logger;
  clock?: () => number;
  /** Identifies this replica in credential leases. */
  replicaId?: string;
}

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

const MAX_REASON = 500;
/** A `minting` record younger than this may belong to a mint in progress (reconciliation leaves it). */
const MINTING_GRACE_MS = 10 * 60_000;
/** How often the sweeper runs providers' upkeep (level privileges for new tables). */
const MAINTAIN_EVERY_MS = 60_000;
/** A failing revocation is told to approvers on its first failure and every this many attempts. */
const NOTIFY_EVERY_ATTEMPTS = 12;

export class Broker {
  readonly #config: Config;
  readonly #directory: Directory;
  readonly #store: Store;
  readonly #providers: ReadonlyMap<string, CredentialProvider>;
  readonly #events: EventBus;
  readonly #log: Logger;
  readonly #clock: () => number;
  readonly #revoker: Revoker;
  readonly #timers = new Map<string, Cron>();
  #sweeper: Cron | undefined;
  #sweeping: Promise<void> | undefined;
  #expiryBatch: AccessRequest[] = [];
  #expiryScheduled = false;
  #stopped = false;
  /** The first upkeep waits a full period: the first mint of each level looks at its privileges anyway. */
  #maintainedAt: number;

  constructor(options: BrokerOptions) {
    this.#config = options.config;
    this.#directory = options.directory;
    this.#store = options.store;
    this.#providers = options.providers;
    this.#events = options.events;
    this.#log = options.logger;
    this.#clock = options.clock ?? Date.now;
    this.#maintainedAt = this.#clock();
    this.#revoker = new Revoker({
      store: this.#store,
      providers: this.#providers,
      logger: this.#log,
      clock: this.#clock,
      owner: options.replicaId ?? createId('b'),
      leaseMs: this.#config.broker.revocation_lease,
      onOutcomes: (outcomes) => this.#onRevocations(outcomes),
    });
  }

  get events(): EventBus {
    return this.#events;
  }

  get config(): Config {
    return this.#config;
  }

  get directory(): Directory {
    return this.#directory;
  }

  // ---------------------------------------------------------------- requests

  /** Creates a request; auto-approved and break-glass requests come back already active. */
  async request(input: CreateRequestInput): Promise<AccessRequest> {
    return (await this.submit(input)).request;
  }

  /**
   * {@link request}, and the credential when the request activates at once (auto-approved,
   * break-glass): returned to this caller, so an API answer carries it without listening to events.
   */
  async submit(input: CreateRequestInput): Promise<Activation> {
    const now = this.#clock();
    const requester = this.#person(input.requester);
    let durationMs: number | undefined;
    try {
      durationMs = typeof input.duration === 'string' ? parseDuration(input.duration) : input.duration;
      if (input.reason && input.reason.length > MAX_REASON) {
        throw new InvalidInputError(
          'ERR_REQUEST_REASON',
          `the reason is longer than ${MAX_REASON} characters`,
        );
      }
    } catch (error) {
      await this.#refuse(requester.id, input, error as Error);
      throw error;
    }
    let decision: PolicyDecision;
    try {
      decision = evaluatePolicy(this.#config, this.#directory, {
        requester,
        target: input.target,
        level: input.level,
        durationMs,
        reason: input.reason ?? '',
        breakGlass: input.breakGlass,
        at: now,
      });
    } catch (error) {
      await this.#refuse(requester.id, input, error as Error);
      throw error;
    }
    const request = openRequest(now, decision, {
      requester: requester.id,
      reason: (input.reason ?? '').trim(),
      source: input.source,
      meta: input.meta ?? {},
    });
    await this.#open(request, {});
    if (decision.outcome === 'break_glass') {
      this.#log.warn(
        { request: request.id, requester: request.requester, target: request.target },
        'break-glass access',
      );
      await this.#audit(requester.id, 'grant.break_glass', request.id, {
        target: request.target,
        level: request.level,
        loud: true,
      });
      this.#events.publish({ type: 'grant.break_glass', request });
    }
    if (request.state === 'approved') return this.#activate(request);
    return { request };
  }

  /** Stores a new request, audits it, and tells subscribers. */
  async #open(request: AccessRequest, extra: Record<string, unknown>): Promise<void> {
    await this.#store.insertRequest(request);
    await this.#audit(request.requester, 'request.created', request.id, {
      target: request.target,
      level: request.level,
      duration: formatDuration(request.durationMs),
      reason: request.reason,
      rule: request.rule,
      outcome: request.decision.outcome,
      source: request.source,
      ...extra,
    });
    this.#events.publish({ type: 'request.created', request });
  }

  /**
   * Creates a CI job's request under a matched CI rule: the requester is not looked up in the
   * directory and `rules:` are not consulted. Auto-approved rules come back active; others stay
   * pending for the CI rule's approvers and, once approved, wait in `approved` until the job
   * collects them with {@link collectCi}, so a credential is only minted when the job is there
   * to receive it.
   */
  async requestCi(input: CreateCiRequestInput): Promise<Activation> {
    const now = this.#clock();
    const { rule } = input;
    if (!this.#providers.has(rule.target) || !this.#config.targets[rule.target]?.levels[rule.level]) {
      throw new InvalidInputError(
        'ERR_TARGET_UNKNOWN',
        `CI rule ${rule.name} names ${rule.target}:${rule.level}, which is not a configured target level`,
      );
    }
    const auto = rule.approval === 'auto';
    const approval = resolveCiRequirement(rule, this.#directory, input.requester);
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
    return auto ? this.#activate(request) : { request };
  }

  /**
   * Mints the credential of an approved CI request and makes it active. Exactly one caller wins
   * (the claim is a compare-and-set); a request left uncollected past its pending time times out.
   */
  async collectCi(id: string): Promise<Activation> {
    const request = await this.#get(id);
    if (request.source !== 'ci' || request.state !== 'approved' || request.meta.collectedAt !== undefined) {
      throw this.#stateConflict(request, 'collect');
    }
    const now = this.#clock();
    if (request.pendingUntil <= now) {
      const late = await this.#transition(request, ['approved'], {
        state: 'timed_out',
        endedAt: now,
        endReason: 'approved but not collected in time',
      });
      await this.#audit('warden', 'request.timed_out', id, { reason: 'not collected' });
      this.#events.publish({ type: 'request.timed_out', request: late });
      throw this.#stateConflict(late, 'collect');
    }
    const claimed = await this.#store.updateRequest(id, request.version, {
      meta: { ...request.meta, collectedAt: now },
    });
    if (!claimed) throw new StateConflictError(`request ${id} is being collected`, { state: request.state });
    return this.#activate(claimed);
  }

  /**
   * The requester collects the credential of their active grant, without chat (`warden credential
   * <id>`, `warden request --wait`). The provider issues the secret afresh at each collection (a
   * new proxy password, a new role password): nothing secret waited anywhere since activation, and
   * the secret of an earlier collection (or of the DM) stops working for new logins. Each
   * collection is audited with its number. Anyone else is refused, audited, and nothing changes;
   * so is a grant whose credential cannot be handed over again (an SSH key pair, shown once).
   */
  async collect(id: string, actor: Actor): Promise<Activation> {
    const request = await this.#get(id);
    if (request.requester !== actor.id) {
      await this.#audit(actor.id, 'credential.collect_refused', id, { code: 'ERR_CREDENTIAL_NOT_REQUESTER' });
      throw new ForbiddenError(
        'ERR_CREDENTIAL_NOT_REQUESTER',
        `only the requester can collect the credential of grant ${id}`,
      );
    }
    if (request.source === 'ci') {
      throw new StateConflictError(`grant ${id} is a CI job's: the job collects it through the CI exchange`, {
        state: request.state,
      });
    }
    if (request.state !== 'active' || request.kind !== 'access')
      throw this.#stateConflict(request, 'collect');
    const provider = this.#providers.get(request.target);
    const [record] = await this.#store.listCredentials({ requestId: id, states: ['active'] });
    if (!provider?.reissue || !record) {
      await this.#audit(actor.id, 'credential.collect_refused', id, {
        code: 'ERR_CREDENTIAL_NOT_REISSUABLE',
      });
      throw new StateConflictError(
        `the credential of grant ${id} (${provider?.name ?? 'no provider'}) cannot be handed over again${provider?.name === 'ssh-ca' ? ': run warden ssh login ' + id + ' for a fresh certificate' : ''}`,
        { state: request.state },
        'ERR_CREDENTIAL_NOT_REISSUABLE',
      );
    }
    const credential = await provider.reissue(record, request);
    const counted = await this.#countCollection(request);
    await this.#audit(actor.id, 'credential.collected', id, {
      target: request.target,
      handle: record.handle,
      login: credential.login,
      route: credential.route,
      collection: counted.meta.collections,
    });
    return { request: counted, credential };
  }

  /** Bumps `meta.collections` (a compare-and-set, retried while the grant stays active). */
  async #countCollection(request: AccessRequest): Promise<AccessRequest> {
    let current = request;
    for (let attempt = 0; attempt < 5; attempt++) {
      const collections = (Number(current.meta.collections) || 0) + 1;
      const done = await this.#store.updateRequest(current.id, current.version, {
        meta: { ...current.meta, collections },
      });
      if (done) return done;
      current = await this.#get(current.id);
    }
    throw new StateConflictError(`request ${request.id} is changing too fast; try again`);
  }

  /** Counts an approval; the last one needed activates the grant. */
  async approve(id: string, actor: Actor): Promise<AccessRequest> {
    try {
      return await this.#approve(id, actor);
    } catch (error) {
      await this.#audit(actor.id, 'approval.refused', String(id).slice(0, 64), {
        code: (error as { code?: string }).code,
        reason: (error as Error).message,
      });
      throw error;
    }
  }

  async #approve(id: string, actor: Actor): Promise<AccessRequest> {
    const request = await this.#get(id);
    if (request.state !== 'pending') throw this.#stateConflict(request, 'approve');
    const requirement = this.#checkApprover(request, actor, 'approve');
    const inserted = await this.#store.insertApproval({
      requestId: id,
      approver: actor.id,
      verdict: 'approve',
      reason: null,
      at: this.#clock(),
    });
    if (!inserted) {
      throw new StateConflictError(
        `${actor.id} already answered request ${id}`,
        {},
        'ERR_APPROVAL_DUPLICATE',
      );
    }
    const approvals = await this.#store.listApprovals(id);
    const approvers = approvals.filter((a) => a.verdict === 'approve').map((a) => a.approver);
    const met = isRequirementMet(requirement, approvers);
    const given = approvers.length;
    const needed = requirement.mode === 'every' ? requirement.groups.length : requirement.count;
    await this.#audit(actor.id, 'approval.counted', id, { given, needed });
    const approval = approvals.find((a) => a.approver === actor.id)!;
    if (!met) {
      const fresh = (await this.#store.getRequest(id))!;
      this.#events.publish({ type: 'approval.counted', request: fresh, approval, given, needed });
      return fresh;
    }
    // Several approvers may reach the threshold at once: exactly one compare-and-set wins.
    for (;;) {
      const current = (await this.#store.getRequest(id))!;
      if (current.state !== 'pending') {
        if (current.state === 'approved' || current.state === 'active') return current;
        throw this.#stateConflict(current, 'approve');
      }
      const won = await this.#store.updateRequest(id, current.version, {
        state: 'approved',
        decidedAt: this.#clock(),
      });
      if (!won) continue;
      this.#events.publish({ type: 'approval.counted', request: won, approval, given, needed });
      await this.#audit(actor.id, 'request.approved', id, { approvers });
      if (won.kind === 'extension') return this.#applyApprovedExtension(won, actor.id);
      // A CI grant is minted when the job collects it (collectCi), not at the click.
      if (won.source === 'ci') return won;
      return (await this.#activate(won)).request;
    }
  }

  /** Refuses a pending request; a reason is required. */
  async deny(id: string, actor: Actor, reason: string): Promise<AccessRequest> {
    const trimmed = reason.trim().slice(0, MAX_REASON);
    if (!trimmed) throw new InvalidInputError('ERR_REQUEST_REASON', 'say why you deny the request');
    const request = await this.#get(id);
    if (request.state !== 'pending') throw this.#stateConflict(request, 'deny');
    this.#checkApprover(request, actor, 'deny');
    await this.#store.insertApproval({
      requestId: id,
      approver: actor.id,
      verdict: 'deny',
      reason: trimmed,
      at: this.#clock(),
    });
    const denied = await this.#transition(request, ['pending'], {
      state: 'denied',
      decidedAt: this.#clock(),
      endedAt: this.#clock(),
      endedBy: actor.id,
      endReason: trimmed,
    });
    await this.#audit(actor.id, 'request.denied', id, { reason: trimmed });
    this.#events.publish({ type: 'request.denied', request: denied, by: actor.id, reason: trimmed });
    return denied;
  }

  /** The requester (or an admin) withdraws a pending request. */
  async cancel(id: string, actor: Actor): Promise<AccessRequest> {
    const request = await this.#get(id);
    if (request.requester !== actor.id && !this.#isAdmin(actor)) {
      throw new ForbiddenError('ERR_FORBIDDEN', 'only the requester can cancel a request');
    }
    if (request.state !== 'pending') throw this.#stateConflict(request, 'cancel');
    const cancelled = await this.#transition(request, ['pending'], {
      state: 'cancelled',
      endedAt: this.#clock(),
      endedBy: actor.id,
      endReason: 'cancelled',
    });
    await this.#audit(actor.id, 'request.cancelled', id, {});
    this.#events.publish({ type: 'request.cancelled', request: cancelled, by: actor.id });
    return cancelled;
  }

  /** Ends an active grant now: by its requester, one of its approvers, or an admin. */
  async revoke(id: string, actor: Actor, reason = 'revoked'): Promise<AccessRequest> {
    const request = await this.#get(id);
    const mayRevoke =
      this.#isAdmin(actor) ||
      request.requester === actor.id ||
      this.#resolveRequirement(request).groups.some((g) => g.members.includes(actor.id));
    if (!mayRevoke) {
      throw new ForbiddenError(
        'ERR_FORBIDDEN',
        'only the requester, an approver of this grant or an admin can revoke it',
      );
    }
    if (request.endState === 'revoked') return request;
    if (request.state !== 'active') throw this.#stateConflict(request, 'revoke');
    const text = reason.trim().slice(0, MAX_REASON) || 'revoked';
    // The grant stops being live here; it only reads `revoked` once its credentials are gone.
    const ending = await this.#transition(request, ['active'], {
      state: 'revoking',
      endState: 'revoked',
      endedAt: this.#clock(),
      endedBy: actor.id,
      endReason: text,
    });
    this.#cancelTimer(id);
    // Told first, so proxies cut the grant's sessions at the start of the revocation.
    this.#events.publish({ type: 'grant.revoked', request: ending, by: actor.id, reason: text });
    await this.#revokeCredentialsOf([ending]);
    await this.#audit(actor.id, 'grant.revoked', id, { reason: text });
    return (await this.#store.getRequest(id)) ?? ending;
  }

  /**
   * Lengthens an active grant by `duration`, within the rule's maximum. When the rule wants
   * extensions approved, returns a pending `extension` request instead.
   */
  async extend(id: string, actor: Actor, duration: string | number): Promise<AccessRequest> {
    const byMs = typeof duration === 'string' ? parseDuration(duration) : duration;
    const grant = await this.#get(id);
    if (grant.requester !== actor.id && !this.#isAdmin(actor)) {
      throw new ForbiddenError('ERR_FORBIDDEN', 'only the requester can extend a grant');
    }
    if (grant.state !== 'active' || grant.kind !== 'access') throw this.#stateConflict(grant, 'extend');
    const rule = this.#rule(grant);
    if (!(rule?.extend.allowed ?? grant.decision.extend.allowed)) {
      throw new PolicyDeniedError('ERR_POLICY_DENIED', `rule ${grant.rule} does not allow extensions`);
    }
    this.#checkExtensionTotal(grant, byMs);
    // Extensions are approved unless the rule opts out; a rule that is gone falls back to approval.
    if (rule?.extend.needs_approval ?? true) {
      const approvers = new Set(this.#resolveRequirement(grant).groups.flatMap((g) => g.members));
      approvers.delete(grant.requester);
      if (approvers.size === 0) {
        throw new PolicyDeniedError(
          'ERR_POLICY_NO_APPROVER',
          `rule ${grant.rule} has extensions approved and nobody can approve this one (set extend.needs_approval: false on the rule to extend without approval)`,
        );
      }
      const now = this.#clock();
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
      await this.#store.insertRequest(extension);
      await this.#audit(actor.id, 'request.created', extension.id, {
        extends: grant.id,
        by: formatDuration(byMs),
      });
      this.#events.publish({ type: 'request.created', request: extension });
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
    const max = this.#rule(grant)?.duration.max ?? grant.decision.maxDurationMs;
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
  async #applyApprovedExtension(extension: AccessRequest, by: string): Promise<AccessRequest> {
    try {
      return await this.#applyExtension(extension, by);
    } catch (error) {
      if ((error as { code?: string }).code !== 'ERR_REQUEST_DURATION') throw error;
      const message = (error as Error).message;
      const failed = await this.#transition(extension, ['approved'], {
        state: 'failed',
        error: message,
        endedAt: this.#clock(),
      });
      await this.#audit('warden', 'extension.refused', extension.id, {
        extends: extension.parentId,
        reason: message,
      });
      this.#events.publish({ type: 'grant.failed', request: failed, error: message });
      throw error;
    }
  }

  async #applyExtension(extension: AccessRequest, by: string): Promise<AccessRequest> {
    const parent = await this.#get(extension.parentId!);
    if (parent.state !== 'active') throw this.#stateConflict(parent, 'extend');
    this.#checkExtensionTotal(parent, extension.durationMs);
    const previous = parent.expiresAt!;
    const expiresAt = previous + extension.durationMs;
    for (const credential of await this.#store.listCredentials({
      requestId: parent.id,
      states: ['active'],
    })) {
      await this.#providers.get(credential.target)?.extend(credential, expiresAt);
      await this.#store.updateCredential(credential.id, { expiresAt });
    }
    const extended = await this.#transition(parent, ['active'], { expiresAt, expiringNotifiedAt: null });
    if (extension.id !== parent.id) {
      await this.#transition(extension, ['approved'], { activatedAt: this.#clock(), expiresAt });
    }
    this.#book(extended);
    await this.#audit(by, 'grant.extended', parent.id, {
      from: new Date(previous).toISOString(),
      to: new Date(expiresAt).toISOString(),
    });
    this.#events.publish({ type: 'grant.extended', request: extended, by, previousExpiresAt: previous });
    return extended;
  }

  async list(filter: RequestFilter): Promise<AccessRequest[]> {
    return this.#store.listRequests(filter);
  }

  /** Pending requests the person may approve. */
  async listAwaiting(personId: string): Promise<AccessRequest[]> {
    const pending = await this.#store.listRequests({ states: ['pending'], limit: 500 });
    return pending.filter(
      (r) =>
        r.requester !== personId &&
        this.#resolveRequirement(r).groups.some((g) => g.members.includes(personId)),
    );
  }

  async show(id: string): Promise<RequestDetails> {
    const request = await this.#get(id);
    return {
      request,
      approvals: await this.#store.listApprovals(id),
      credentials: await this.#store.listCredentials({ requestId: id }),
      requirement: request.state === 'pending' ? this.#resolveRequirement(request) : undefined,
    };
  }

  /** Whether `personId` may approve this request right now, and if not why. */
  async canApprove(id: string, personId: string): Promise<{ ok: boolean; reason?: string }> {
    const request = await this.#get(id);
    try {
      if (request.state !== 'pending') throw this.#stateConflict(request, 'approve');
      this.#checkApprover(request, { id: personId, admin: false }, 'approve');
      return { ok: true };
    } catch (error) {
      return { ok: false, reason: (error as Error).message };
    }
  }

  /**
   * Who may approve for `request`'s rule and level, resolved against the directory now (the
   * approvers of a grant also decide on the statements its sessions hold for review).
   */
  approversOf(request: AccessRequest): ApprovalRequirement {
    return this.#resolveRequirement(request);
  }

  /** The admin connection of each target that reports one (`/v1/health`). */
  targetHealth(): Record<string, TargetHealth> {
    const out: Record<string, TargetHealth> = {};
    for (const [name, provider] of this.#providers) {
      const health = provider.health?.();
      if (health) out[name] = health;
    }
    return out;
  }

  // ---------------------------------------------------------------- lifecycle

  /** Books timers for live grants, revokes what expired while down, removes orphans, starts the sweeper. */
  async start(): Promise<void> {
    await this.reconcile();
    for (const grant of await this.#store.listRequests({ states: ['active'], limit: 1000 }))
      this.#book(grant);
    const seconds = Math.max(1, Math.round(this.#config.broker.sweep_interval / 1000));
    this.#sweeper = new Cron(seconds < 60 ? `*/${seconds} * * * * *` : '* * * * *', { protect: true }, () =>
      this.sweep(),
    );
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#sweeper?.stop();
    for (const timer of this.#timers.values()) timer.stop();
    this.#timers.clear();
    await this.#sweeping;
  }

  /**
   * Start-up reconciliation: grants past expiry are revoked at once, and leftover credentials
   * are removed. A role is a leftover only when three things agree: the target says Warden
   * minted it (its mark, see the provider), the store recorded minting it, and no live grant
   * owns it. A role the store does not know (a DBA's, another Warden's) is never touched.
   */
  async reconcile(): Promise<{ expired: number; orphans: string[] }> {
    await this.sweep();
    const orphans: string[] = [];
    for (const [target, provider] of this.#providers) {
      let managed: string[];
      try {
        managed = await provider.listManaged();
      } catch (error) {
        this.#log.error({ err: error, target }, 'reconciliation cannot list credentials');
        continue;
      }
      if (managed.length === 0) continue;
      const records = await this.#store.listCredentials({ target, handles: managed });
      const byHandle = new Map<string, CredentialRecord[]>();
      for (const record of records)
        byHandle.set(record.handle, [...(byHandle.get(record.handle) ?? []), record]);
      for (const handle of managed) {
        const mine = byHandle.get(handle);
        if (!mine) {
          this.#log.warn(
            { target, handle },
            'role carries the mark but the store never minted it; not touched',
          );
          continue;
        }
        if (!(await this.#isLeftover(mine))) continue;
        try {
          await provider.removeOrphan(handle);
          orphans.push(handle);
          const now = this.#clock();
          for (const record of mine.filter((r) => r.state !== 'revoked')) {
            await this.#store.updateCredential(record.id, {
              state: 'revoked',
              revokedAt: now,
              lastError: null,
            });
          }
          await this.#audit('warden', 'credential.orphan_removed', handle, { target });
        } catch (error) {
          this.#log.error({ err: error, target, handle }, 'cannot remove orphaned credential');
        }
      }
    }
    return { expired: 0, orphans };
  }

  /**
   * A recorded credential nobody owns any more: not live or being revoked (the revoker's), and
   * not being minted right now (a `minting` record younger than {@link MINTING_GRACE_MS} whose
   * grant still waits in `approved`).
   */
  async #isLeftover(records: readonly CredentialRecord[]): Promise<boolean> {
    for (const record of records) {
      if (record.state === 'active' || record.state === 'revoking') return false;
      if (record.state === 'minting' && record.createdAt > this.#clock() - MINTING_GRACE_MS) {
        const grant = await this.#store.getRequest(record.requestId);
        if (grant?.state === 'approved') return false;
      }
    }
    return true;
  }

  /** One pass over time-based work: timeouts, reminders, expiry warnings, expiries, retries. */
  sweep(): Promise<void> {
    if (this.#sweeping) return this.#sweeping;
    this.#sweeping = this.#sweepOnce()
      .catch((error) => this.#log.error({ err: error }, 'sweep failed'))
      .finally(() => {
        this.#sweeping = undefined;
      });
    return this.#sweeping;
  }

  async #sweepOnce(): Promise<void> {
    const now = this.#clock();
    const due = await this.#store.findDue(now, this.#config.broker.expiring_soon);
    for (const request of due.timedOut) await this.#timeOut(request);
    for (const request of due.remind) {
      const reminded = await this.#store.updateRequest(request.id, request.version, { remindedAt: now });
      if (reminded) this.#events.publish({ type: 'request.reminder', request: reminded });
    }
    for (const grant of due.expiring) {
      const marked = await this.#store.updateRequest(grant.id, grant.version, { expiringNotifiedAt: now });
      if (marked)
        this.#events.publish({ type: 'grant.expiring', request: marked, inMs: grant.expiresAt! - now });
    }
    if (due.expired.length > 0) await this.#expire(due.expired);
    const retries = await this.#store.findRevocationsDue(now);
    if (retries.length > 0) {
      await this.#revoker.revoke(retries);
      await this.#complete([...new Set(retries.map((c) => c.requestId))]);
    }
    if (now - this.#maintainedAt >= MAINTAIN_EVERY_MS) {
      this.#maintainedAt = now;
      for (const [target, provider] of this.#providers) {
        await provider
          .maintain?.()
          .catch((error) => this.#log.warn({ err: error, target }, 'target upkeep failed'));
      }
    }
  }

  async #timeOut(request: AccessRequest): Promise<void> {
    const done = await this.#store.updateRequest(request.id, request.version, {
      state: 'timed_out',
      endedAt: this.#clock(),
      endReason: 'no decision in time',
    });
    if (!done) return;
    await this.#audit('warden', 'request.timed_out', request.id, {});
    this.#events.publish({ type: 'request.timed_out', request: done });
  }

  /** Expires grants (from timers or the sweeper); each transition wins once across replicas. */
  async #expire(grants: readonly AccessRequest[]): Promise<void> {
    const expired: AccessRequest[] = [];
    await Promise.all(
      grants.map(async (grant) => {
        const done = await this.#store.updateRequest(grant.id, grant.version, {
          state: 'revoking',
          endState: 'expired',
          endedAt: this.#clock(),
          endReason: 'expired',
        });
        if (done) expired.push(done);
      }),
    );
    for (const grant of expired) this.#cancelTimer(grant.id);
    // Told first, so proxies cut the grants' sessions at the start of the revocation.
    for (const grant of expired) this.#events.publish({ type: 'grant.expired', request: grant });
    await this.#revokeCredentialsOf(expired);
    await this.#auditBatch(
      expired.map((g) => ({
        at: this.#clock(),
        actor: 'warden',
        action: 'grant.expired',
        subject: g.id,
        data: {},
      })),
    );
  }

  async #revokeCredentialsOf(grants: readonly AccessRequest[]): Promise<void> {
    if (grants.length === 0) return;
    const credentials: CredentialRecord[] = [];
    for (const grant of grants) {
      credentials.push(
        ...(await this.#store.listCredentials({ requestId: grant.id, states: ['active', 'revoking'] })),
      );
    }
    await this.#revoker.revoke(credentials);
    // Grants left without credentials to remove (none minted, or removed by an earlier attempt).
    await this.#complete(grants.map((g) => g.id));
  }

  /** Ending grants among `ids` whose credentials are all gone reach `expired` / `revoked`. */
  async #complete(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    let done: AccessRequest[];
    try {
      done = await this.#store.completeRevocations(ids);
    } catch (error) {
      this.#log.error({ err: error }, 'recording finished revocations failed; the sweeper will retry');
      return;
    }
    for (const request of done) this.#events.publish({ type: 'grant.ended', request });
  }

  async #onRevocations(outcomes: readonly RevocationOutcome[]): Promise<void> {
    const at = this.#clock();
    await this.#auditBatch(
      outcomes.map(({ credential, error, details }) => ({
        at,
        actor: 'warden',
        action: error ? 'credential.revocation_failed' : 'credential.revoked',
        subject: credential.requestId,
        data: error
          ? {
              target: credential.target,
              handle: credential.handle,
              attempts: credential.attempts,
              error: credential.lastError,
              next_attempt_at: credential.nextAttemptAt
                ? new Date(credential.nextAttemptAt).toISOString()
                : null,
            }
          : { target: credential.target, handle: credential.handle, ...details },
      })),
    );
    for (const { credential, error } of outcomes) {
      if (!error) continue;
      this.#log.error(
        {
          err: error,
          request: credential.requestId,
          target: credential.target,
          handle: credential.handle,
          attempts: credential.attempts,
        },
        'credential revocation failed; will retry',
      );
      await this.#markRevocationFailed(credential);
    }
    await this.#complete([...new Set(outcomes.filter((o) => !o.error).map((o) => o.credential.requestId))]);
  }

  /**
   * Shows the failure on the grant (`revocation_failed`, `error`) and tells its approvers: on the
   * first failure, then about once an hour while it lasts (retries are capped at 5 minutes).
   */
  async #markRevocationFailed(credential: CredentialRecord): Promise<void> {
    const error = `revocation failed (${credential.attempts} attempts, retrying): ${credential.lastError}`;
    let request = await this.#store.getRequest(credential.requestId);
    for (let i = 0; request && i < 5; i++) {
      const ending = request.state === 'revoking' || request.state === 'revocation_failed';
      const updated = await this.#store.updateRequest(request.id, request.version, {
        error,
        ...(ending ? { state: 'revocation_failed' as const } : {}),
      });
      if (updated) {
        request = updated;
        break;
      }
      request = await this.#store.getRequest(credential.requestId);
    }
    if (!request) return;
    if (credential.attempts !== 1 && credential.attempts % NOTIFY_EVERY_ATTEMPTS !== 0) return;
    const approvers = [...new Set(this.#resolveRequirement(request).groups.flatMap((g) => g.members))];
    this.#events.publish({
      type: 'credential.revocation_failed',
      request,
      error: credential.lastError ?? 'unknown',
      attempts: credential.attempts,
      approvers,
    });
  }

  /**
   * Mints the credential and makes an approved request active; the credential goes back to the
   * caller. A chat request's is also published with `grant.active`, for the requester's DM (the
   * chat front end is the one that delivers it); a CI job's never is.
   */
  async #activate(request: AccessRequest): Promise<Activation> {
    const provider = this.#providers.get(request.target);
    const now = this.#clock();
    const expiresAt = now + request.durationMs;
    let credential: IssuedCredential | undefined;
    let handle: string | undefined;
    // Recorded before it exists on the target: reconciliation may only ever remove what the
    // store knows Warden minted.
    const planned = provider?.planHandle?.(request);
    const record: CredentialRecord = {
      id: createId('c'),
      requestId: request.id,
      target: request.target,
      provider: provider?.name ?? 'none',
      handle: planned ?? '',
      state: 'minting',
      createdAt: now,
      expiresAt,
      revokedAt: null,
      attempts: 0,
      nextAttemptAt: null,
      lastError: null,
      leaseOwner: null,
      leaseUntil: null,
    };
    try {
      if (!provider) throw new Error(`no credential provider for target ${request.target}`);
      if (planned) await this.#store.insertCredential(record);
      const minted = await provider.mint(request, expiresAt);
      credential = minted.credential;
      handle = minted.handle;
    } catch (error) {
      const message = (error as Error).message.slice(0, 500);
      if (planned) {
        await this.#store
          .updateCredential(record.id, { state: 'failed', lastError: message })
          .catch((e) => this.#log.error({ err: e, request: request.id }, 'recording a failed mint failed'));
      }
      const failed = await this.#transition(request, ['approved'], {
        state: 'failed',
        error: message,
        endedAt: now,
      });
      this.#log.error(
        { err: error, request: request.id, target: request.target },
        'minting the credential failed',
      );
      await this.#audit('warden', 'grant.failed', request.id, { error: message });
      this.#events.publish({ type: 'grant.failed', request: failed, error: message });
      return { request: failed };
    }
    if (planned) await this.#store.updateCredential(record.id, { state: 'active', handle });
    else await this.#store.insertCredential({ ...record, handle, state: 'active' });
    const active = await this.#transition(request, ['approved'], {
      state: 'active',
      activatedAt: now,
      expiresAt,
    });
    this.#book(active);
    await this.#audit('warden', 'grant.active', request.id, {
      target: request.target,
      level: request.level,
      handle,
      expires_at: new Date(expiresAt).toISOString(),
    });
    this.#events.publish({
      type: 'grant.active',
      request: active,
      ...(request.source === 'ci' ? {} : { credential }),
    });
    return { request: active, credential };
  }

  /** Books the grant's expiry on a timer (the sweeper is the safety net). */
  #book(grant: AccessRequest): void {
    if (this.#stopped || grant.expiresAt === null) return;
    this.#cancelTimer(grant.id);
    const fire = () => {
      this.#timers.delete(grant.id);
      void this.#queueExpiry(grant.id);
    };
    if (grant.expiresAt <= this.#clock()) {
      fire();
      return;
    }
    this.#timers.set(grant.id, new Cron(new Date(grant.expiresAt), fire));
  }

  #cancelTimer(id: string): void {
    this.#timers.get(id)?.stop();
    this.#timers.delete(id);
  }

  /** Timers that fire together are expired as one batch. */
  async #queueExpiry(id: string): Promise<void> {
    const grant = await this.#store.getRequest(id);
    if (grant?.state !== 'active') return;
    if (grant.expiresAt! > this.#clock()) {
      this.#book(grant);
      return;
    }
    this.#expiryBatch.push(grant);
    if (this.#expiryScheduled) return;
    this.#expiryScheduled = true;
    setImmediate(() => {
      this.#expiryScheduled = false;
      const batch = this.#expiryBatch;
      this.#expiryBatch = [];
      this.#expire(batch).catch((error) =>
        this.#log.error({ err: error }, 'expiry failed; the sweeper will retry'),
      );
    });
  }

  // ---------------------------------------------------------------- helpers

  async #get(id: string): Promise<AccessRequest> {
    const request = typeof id === 'string' && id.length <= 64 ? await this.#store.getRequest(id) : undefined;
    if (!request) throw new NotFoundError('request', String(id).slice(0, 64));
    return request;
  }

  #person(id: string): Person {
    const person = this.#directory.get(id);
    if (!person)
      throw new InvalidInputError('ERR_USER_UNKNOWN', `unknown person "${String(id).slice(0, 64)}"`);
    return person;
  }

  /** Admin by token, or a person marked `admin` in the directory. */
  #isAdmin(actor: Actor): boolean {
    return actor.admin || this.#directory.get(actor.id)?.admin === true;
  }

  #rule(request: AccessRequest): RuleConfig | undefined {
    return this.#config.rules.find((r) => r.name === request.rule);
  }

  /** The requirement resolved against the directory as it is now (people change groups). */
  #resolveRequirement(request: AccessRequest): ApprovalRequirement {
    if (request.source === 'ci') {
      const ciRule = findCiRule(this.#config.ci?.rules ?? [], request.rule);
      return resolveCiRequirement(ciRule, this.#directory, request.requester);
    }
    const rule = this.#rule(request);
    const requester = this.#directory.get(request.requester);
    if (!rule || !requester) return { ...request.decision.approval, groups: [] };
    const groups = resolveApprovers(rule, requester, this.#directory);
    return {
      mode: rule.approvals === 'every' ? 'every' : 'count',
      count: rule.approvals === 'every' ? groups.length : rule.approvals,
      groups,
    };
  }

  #checkApprover(request: AccessRequest, actor: Actor, verb: 'approve' | 'deny'): ApprovalRequirement {
    if (actor.id === request.requester) {
      throw new ForbiddenError('ERR_APPROVAL_SELF', `nobody can ${verb} their own request`);
    }
    const requirement = this.#resolveRequirement(request);
    const eligible = requirement.groups.some((g) => g.members.includes(actor.id));
    if (!eligible) {
      throw new ForbiddenError(
        'ERR_APPROVAL_NOT_ELIGIBLE',
        `${actor.id} cannot ${verb} this request: it needs ${describeRequirement(requirement)}`,
      );
    }
    return requirement;
  }

  #stateConflict(request: AccessRequest, verb: string): StateConflictError {
    const what = request.kind === 'extension' ? 'extension request' : 'request';
    const why = REQUEST_MESSAGES[request.state] ?? `is ${request.state}`;
    const by = request.endedBy ? ` by ${request.endedBy}` : '';
    return new StateConflictError(`cannot ${verb}: ${what} ${request.id} ${why}${by}`, {
      state: request.state,
    });
  }

  /** Compare-and-set from one of `from` states; retries on a version bump that kept the state. */
  async #transition(
    request: AccessRequest,
    from: RequestState[],
    patch: Partial<AccessRequest>,
  ): Promise<AccessRequest> {
    let current = request;
    for (let attempt = 0; attempt < 5; attempt++) {
      if (!from.includes(current.state)) throw this.#stateConflict(current, String(patch.state ?? 'update'));
      const done = await this.#store.updateRequest(current.id, current.version, patch);
      if (done) return done;
      current = (await this.#store.getRequest(current.id))!;
    }
    throw new StateConflictError(`request ${request.id} is changing too fast; try again`);
  }

  async #refuse(actor: string, input: CreateRequestInput, error: Error): Promise<void> {
    await this.#audit(actor, 'request.refused', input.target?.slice(0, 64) ?? '', {
      level: input.level,
      code: (error as { code?: string }).code,
      reason: error.message,
      source: input.source,
    });
  }

  async #audit(
    actor: string,
    action: string,
    subject: string,
    data: Record<string, unknown>,
    via?: string,
  ): Promise<AuditEntry | undefined> {
    try {
      return await this.#store.appendAudit({
        at: this.#clock(),
        actor,
        action,
        subject,
        data,
        via: resolveVia(actor, via),
      });
    } catch (error) {
      this.#log.error({ err: error, action, subject }, 'audit append failed');
      return undefined;
    }
  }

  async #auditBatch(entries: readonly AuditInput[]): Promise<void> {
    try {
      await this.#store.appendAuditBatch(entries.map((e) => ({ ...e, via: resolveVia(e.actor, e.via) })));
    } catch (error) {
      this.#log.error({ err: error, entries: entries.length }, 'audit append failed');
    }
  }

  /** Runs `fn` with `via` as the caller its audit entries record (a chat front end in this process). */
  runAs<T>(via: string, fn: () => T): T {
    return runAsCaller(via, fn);
  }

  /**
   * Appends an audit entry on behalf of another part (proxy, CI exchange). `via` names what made
   * the call (`proxy:ssh`, `session:<id>`); default: the caller of the current call.
   */
  recordAudit(
    actor: string,
    action: string,
    subject: string,
    data: Record<string, unknown>,
    via?: string,
  ): Promise<AuditEntry | undefined> {
    return this.#audit(actor, action, subject, data, via);
  }
}

/** The fields of a request record that has not been activated or ended yet. */
const UNSTARTED = {
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
function openRequest(
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
