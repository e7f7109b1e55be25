/**
 * The broker: requests, approvals and grants. Every transition is a compare-and-set on the
 * stored record, written before anyone is told, audited, then published as an event. This file
 * holds the commands; the scheduler (`scheduler.ts`), activation (`activation.ts`), approvers
 * (`approvers.ts`), extensions (`extensions.ts`), CI requests (`ci-requests.ts`) and the audit facade
 * (`audit-log.ts`) are its parts; request records are read and moved through `records.ts`.
 */
import { runAsCaller } from '../audit/caller.ts';
import { formatDuration, parseDuration } from '../config/duration.ts';
import type { Config } from '../config/load.ts';
import type { Directory, Person } from '../directory/directory.ts';
import { ForbiddenError, InvalidInputError, StateConflictError } from '../errors.ts';
import type { EventBus } from '../events/events.ts';
import type { AccessRequest, AuditEntry } from '../model.ts';
import {
  type ApprovalRequirement,
  evaluatePolicy,
  isRequirementMet,
  type PolicyDecision,
} from '../policy/evaluate.ts';
import type { TargetHealth } from '../providers/provider.ts';
import type { RequestFilter } from '../store/store.ts';
import { Activator } from './activation.ts';
import { Approvers } from './approvers.ts';
import { AuditLog } from './audit-log.ts';
import { CiRequests } from './ci-requests.ts';
import { Extensions } from './extensions.ts';
import { getRequest, MAX_REASON, openRequest, stateConflict, transition } from './records.ts';
import { Scheduler } from './scheduler.ts';
import type {
  Activation,
  Actor,
  BrokerContext,
  BrokerOptions,
  CreateCiRequestInput,
  CreateRequestInput,
  RequestDetails,
} from './types.ts';

export type {
  Activation,
  Actor,
  BrokerOptions,
  CreateCiRequestInput,
  CreateRequestInput,
  RequestDetails,
} from './types.ts';

export class Broker {
  readonly #c: BrokerContext;
  readonly #scheduler: Scheduler;
  readonly #activator: Activator;
  readonly #ci: CiRequests;
  readonly #extensions: Extensions;

  constructor(options: BrokerOptions) {
    const clock = options.clock ?? Date.now;
    this.#c = {
      config: options.config,
      directory: options.directory,
      store: options.store,
      providers: options.providers,
      events: options.events,
      log: options.logger,
      clock,
      audit: new AuditLog(options.store, options.logger, clock),
      approvers: new Approvers(options.config, options.directory),
    };
    this.#scheduler = new Scheduler(this.#c, { replicaId: options.replicaId });
    this.#activator = new Activator(this.#c, this.#scheduler);
    this.#extensions = new Extensions(this.#c, this.#scheduler);
    this.#ci = new CiRequests(this.#c, this.#activator, (request, extra) => this.#open(request, extra));
  }

  get events(): EventBus {
    return this.#c.events;
  }

  get config(): Config {
    return this.#c.config;
  }

  get directory(): Directory {
    return this.#c.directory;
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
    const now = this.#c.clock();
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
      decision = evaluatePolicy(this.#c.config, this.#c.directory, {
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
      this.#c.log.warn(
        { request: request.id, requester: request.requester, target: request.target },
        'break-glass access',
      );
      await this.#c.audit.record(requester.id, 'grant.break_glass', request.id, {
        target: request.target,
        level: request.level,
        loud: true,
      });
      this.#c.events.publish({ type: 'grant.break_glass', request });
    }
    if (request.state === 'approved') return this.#activator.activate(request);
    return { request };
  }

  /** Stores a new request, audits it, and tells subscribers. */
  async #open(request: AccessRequest, extra: Record<string, unknown>): Promise<void> {
    await this.#c.store.insertRequest(request);
    await this.#c.audit.record(request.requester, 'request.created', request.id, {
      target: request.target,
      level: request.level,
      duration: formatDuration(request.durationMs),
      reason: request.reason,
      rule: request.rule,
      outcome: request.decision.outcome,
      source: request.source,
      ...extra,
    });
    this.#c.events.publish({ type: 'request.created', request });
  }

  /** Creates a CI job's request under a matched CI rule (see {@link CiRequests.requestCi}). */
  requestCi(input: CreateCiRequestInput): Promise<Activation> {
    return this.#ci.requestCi(input);
  }

  /** Mints the credential of an approved CI request its job collects (see {@link CiRequests.collectCi}). */
  collectCi(id: string): Promise<Activation> {
    return this.#ci.collectCi(id);
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
    const request = await getRequest(this.#c.store, id);
    if (request.requester !== actor.id) {
      await this.#c.audit.record(actor.id, 'credential.collect_refused', id, {
        code: 'ERR_CREDENTIAL_NOT_REQUESTER',
      });
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
    if (request.state !== 'active' || request.kind !== 'access') throw stateConflict(request, 'collect');
    const provider = this.#c.providers.get(request.target);
    const [record] = await this.#c.store.listCredentials({ requestId: id, states: ['active'] });
    if (!provider?.reissue || !record) {
      await this.#c.audit.record(actor.id, 'credential.collect_refused', id, {
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
    await this.#c.audit.record(actor.id, 'credential.collected', id, {
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
      const done = await this.#c.store.updateRequest(current.id, current.version, {
        meta: { ...current.meta, collections },
      });
      if (done) return done;
      current = await getRequest(this.#c.store, current.id);
    }
    throw new StateConflictError(`request ${request.id} is changing too fast; try again`);
  }

  /** Counts an approval; the last one needed activates the grant. */
  async approve(id: string, actor: Actor): Promise<AccessRequest> {
    try {
      return await this.#approve(id, actor);
    } catch (error) {
      await this.#c.audit.record(actor.id, 'approval.refused', String(id).slice(0, 64), {
        code: (error as { code?: string }).code,
        reason: (error as Error).message,
      });
      throw error;
    }
  }

  async #approve(id: string, actor: Actor): Promise<AccessRequest> {
    const request = await getRequest(this.#c.store, id);
    if (request.state !== 'pending') throw stateConflict(request, 'approve');
    const requirement = this.#c.approvers.check(request, actor, 'approve');
    const inserted = await this.#c.store.insertApproval({
      requestId: id,
      approver: actor.id,
      verdict: 'approve',
      reason: null,
      at: this.#c.clock(),
    });
    if (!inserted) {
      throw new StateConflictError(
        `${actor.id} already answered request ${id}`,
        {},
        'ERR_APPROVAL_DUPLICATE',
      );
    }
    const approvals = await this.#c.store.listApprovals(id);
    const approvers = approvals.filter((a) => a.verdict === 'approve').map((a) => a.approver);
    const met = isRequirementMet(requirement, approvers);
    const given = approvers.length;
    const needed = requirement.mode === 'every' ? requirement.groups.length : requirement.count;
    await this.#c.audit.record(actor.id, 'approval.counted', id, { given, needed });
    const approval = approvals.find((a) => a.approver === actor.id)!;
    if (!met) {
      const fresh = (await this.#c.store.getRequest(id))!;
      this.#c.events.publish({
        type: 'approval.counted',
        request: fresh,
        approval,
        approvals,
        given,
        needed,
      });
      return fresh;
    }
    // Several approvers may reach the threshold at once: exactly one compare-and-set wins.
    for (;;) {
      const current = (await this.#c.store.getRequest(id))!;
      if (current.state !== 'pending') {
        if (current.state === 'approved' || current.state === 'active') return current;
        throw stateConflict(current, 'approve');
      }
      const won = await this.#c.store.updateRequest(id, current.version, {
        state: 'approved',
        decidedAt: this.#c.clock(),
      });
      if (!won) continue;
      this.#c.events.publish({ type: 'approval.counted', request: won, approval, approvals, given, needed });
      await this.#c.audit.record(actor.id, 'request.approved', id, { approvers });
      if (won.kind === 'extension') return this.#extensions.applyApproved(won, actor.id);
      // A CI grant is minted when the job collects it (collectCi), not at the click.
      if (won.source === 'ci') return won;
      return (await this.#activator.activate(won)).request;
    }
  }

  /** Refuses a pending request; a reason is required. */
  async deny(id: string, actor: Actor, reason: string): Promise<AccessRequest> {
    const trimmed = reason.trim().slice(0, MAX_REASON);
    if (!trimmed) throw new InvalidInputError('ERR_REQUEST_REASON', 'say why you deny the request');
    const request = await getRequest(this.#c.store, id);
    if (request.state !== 'pending') throw stateConflict(request, 'deny');
    this.#c.approvers.check(request, actor, 'deny');
    await this.#c.store.insertApproval({
      requestId: id,
      approver: actor.id,
      verdict: 'deny',
      reason: trimmed,
      at: this.#c.clock(),
    });
    const denied = await transition(this.#c.store, request, ['pending'], {
      state: 'denied',
      decidedAt: this.#c.clock(),
      endedAt: this.#c.clock(),
      endedBy: actor.id,
      endReason: trimmed,
    });
    await this.#c.audit.record(actor.id, 'request.denied', id, { reason: trimmed });
    this.#c.events.publish({ type: 'request.denied', request: denied, by: actor.id, reason: trimmed });
    return denied;
  }

  /** The requester (or an admin) withdraws a pending request. */
  async cancel(id: string, actor: Actor): Promise<AccessRequest> {
    const request = await getRequest(this.#c.store, id);
    if (request.requester !== actor.id && !this.#c.approvers.isAdmin(actor)) {
      throw new ForbiddenError('ERR_FORBIDDEN', 'only the requester can cancel a request');
    }
    if (request.state !== 'pending') throw stateConflict(request, 'cancel');
    const cancelled = await transition(this.#c.store, request, ['pending'], {
      state: 'cancelled',
      endedAt: this.#c.clock(),
      endedBy: actor.id,
      endReason: 'cancelled',
    });
    await this.#c.audit.record(actor.id, 'request.cancelled', id, {});
    this.#c.events.publish({ type: 'request.cancelled', request: cancelled, by: actor.id });
    return cancelled;
  }

  /** Ends an active grant now: by its requester, one of its approvers, or an admin. */
  async revoke(id: string, actor: Actor, reason = 'revoked'): Promise<AccessRequest> {
    const request = await getRequest(this.#c.store, id);
    const mayRevoke =
      this.#c.approvers.isAdmin(actor) ||
      request.requester === actor.id ||
      this.#c.approvers.resolve(request).groups.some((g) => g.members.includes(actor.id));
    if (!mayRevoke) {
      throw new ForbiddenError(
        'ERR_FORBIDDEN',
        'only the requester, an approver of this grant or an admin can revoke it',
      );
    }
    if (request.endState === 'revoked') return request;
    if (request.state !== 'active') throw stateConflict(request, 'revoke');
    const text = reason.trim().slice(0, MAX_REASON) || 'revoked';
    // The grant stops being live here; it only reads `revoked` once its credentials are gone.
    const ending = await transition(this.#c.store, request, ['active'], {
      state: 'revoking',
      endState: 'revoked',
      endedAt: this.#c.clock(),
      endedBy: actor.id,
      endReason: text,
    });
    this.#scheduler.cancelTimer(id);
    // Told first, so proxies cut the grant's sessions at the start of the revocation.
    this.#c.events.publish({ type: 'grant.revoked', request: ending, by: actor.id, reason: text });
    await this.#scheduler.revokeCredentialsOf([ending]);
    await this.#c.audit.record(actor.id, 'grant.revoked', id, { reason: text });
    return (await this.#c.store.getRequest(id)) ?? ending;
  }

  /**
   * Lengthens an active grant by `duration`, within the rule's maximum; by default a pending
   * `extension` request for the grant's approvers (see `extensions.ts`).
   */
  extend(id: string, actor: Actor, duration: string | number): Promise<AccessRequest> {
    return this.#extensions.extend(id, actor, duration);
  }

  async list(filter: RequestFilter): Promise<AccessRequest[]> {
    return this.#c.store.listRequests(filter);
  }

  /** Pending requests the person may approve. */
  async listAwaiting(personId: string): Promise<AccessRequest[]> {
    const pending = await this.#c.store.listRequests({ states: ['pending'], limit: 500 });
    return pending.filter(
      (r) =>
        r.requester !== personId &&
        this.#c.approvers.resolve(r).groups.some((g) => g.members.includes(personId)),
    );
  }

  async show(id: string): Promise<RequestDetails> {
    const request = await getRequest(this.#c.store, id);
    return {
      request,
      approvals: await this.#c.store.listApprovals(id),
      credentials: await this.#c.store.listCredentials({ requestId: id }),
      requirement: request.state === 'pending' ? this.#c.approvers.resolve(request) : undefined,
    };
  }

  /** Whether `personId` may approve this request right now, and if not why. */
  async canApprove(id: string, personId: string): Promise<{ ok: boolean; reason?: string }> {
    const request = await getRequest(this.#c.store, id);
    try {
      if (request.state !== 'pending') throw stateConflict(request, 'approve');
      this.#c.approvers.check(request, { id: personId, admin: false }, 'approve');
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
    return this.#c.approvers.resolve(request);
  }

  /** The admin connection of each target that reports one (`/v1/health`). */
  targetHealth(): Record<string, TargetHealth> {
    const out: Record<string, TargetHealth> = {};
    for (const [name, provider] of this.#c.providers) {
      const health = provider.health?.();
      if (health) out[name] = health;
    }
    return out;
  }

  // ---------------------------------------------------------------- lifecycle (the scheduler's)

  /** Books timers for live grants, revokes what expired while down, removes orphans, starts the sweeper. */
  start(): Promise<void> {
    return this.#scheduler.start();
  }

  stop(): Promise<void> {
    return this.#scheduler.stop();
  }

  /** Start-up reconciliation (see {@link Scheduler.reconcile}). */
  reconcile(): Promise<{ expired: number; orphans: string[] }> {
    return this.#scheduler.reconcile();
  }

  /** One pass over time-based work: timeouts, reminders, expiry warnings, expiries, retries. */
  sweep(): Promise<void> {
    return this.#scheduler.sweep();
  }

  // ---------------------------------------------------------------- helpers

  #person(id: string): Person {
    const person = this.#c.directory.get(id);
    if (!person)
      throw new InvalidInputError('ERR_USER_UNKNOWN', `unknown person "${String(id).slice(0, 64)}"`);
    return person;
  }

  async #refuse(actor: string, input: CreateRequestInput, error: Error): Promise<void> {
    await this.#c.audit.record(actor, 'request.refused', input.target?.slice(0, 64) ?? '', {
      level: input.level,
      code: (error as { code?: string }).code,
      reason: error.message,
      source: input.source,
    });
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
    return this.#c.audit.record(actor, action, subject, data, via);
  }
}
