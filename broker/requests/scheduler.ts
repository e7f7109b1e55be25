/**
 * The broker's scheduler: expiry timers for live grants and the sweeper (timeouts, reminders,
 * expiry warnings, expiries, revocation retries, providers' upkeep), the revocation of ending
 * grants' credentials, and start-up reconciliation. Every transition is a compare-and-set, so
 * replicas sharing a store expire and revoke each grant exactly once.
 */
import { Cron } from 'croner';
import { createId } from '../../lib/ids.ts';
import type { AccessRequest, CredentialRecord } from '../model.ts';
import { type RevocationOutcome, Revoker } from './revoker.ts';
import type { BrokerContext } from './types.ts';

/** A `minting` record younger than this may belong to a mint in progress (reconciliation leaves it). */
const MINTING_GRACE_MS = 10 * 60_000;
/** How often the sweeper runs providers' upkeep (level privileges for new tables). */
const MAINTAIN_EVERY_MS = 60_000;
/** A failing revocation is told to approvers on its first failure and every this many attempts. */
const NOTIFY_EVERY_ATTEMPTS = 12;

/** Timers, the sweeper, revocation and reconciliation of one broker. */
export class Scheduler {
  readonly #c: BrokerContext;
  readonly #revoker: Revoker;
  readonly #timers = new Map<string, Cron>();
  #sweeper: Cron | undefined;
  #sweeping: Promise<void> | undefined;
  #expiryBatch: AccessRequest[] = [];
  #expiryScheduled = false;
  #stopped = false;
  /** The first upkeep waits a full period: the first mint of each level looks at its privileges anyway. */
  #maintainedAt: number;

  constructor(context: BrokerContext, options: { replicaId?: string | undefined }) {
    this.#c = context;
    this.#maintainedAt = context.clock();
    this.#revoker = new Revoker({
      store: context.store,
      providers: context.providers,
      logger: context.log,
      clock: context.clock,
      owner: options.replicaId ?? createId('b'),
      leaseMs: context.config.broker.revocation_lease,
      onOutcomes: (outcomes) => this.#onRevocations(outcomes),
    });
  }

  /** Books timers for live grants, revokes what expired while down, removes orphans, starts the sweeper. */
  async start(): Promise<void> {
    await this.reconcile();
    for (const grant of await this.#c.store.listRequests({ states: ['active'], limit: 1000 }))
      this.book(grant);
    const seconds = Math.max(1, Math.round(this.#c.config.broker.sweep_interval / 1000));
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
    for (const [target, provider] of this.#c.providers) {
      if (provider.reconcile) await this.#reconcileLeases(target, provider.reconcile.bind(provider), orphans);
      let managed: string[];
      try {
        managed = await provider.listManaged();
      } catch (error) {
        this.#c.log.error({ err: error, target }, 'reconciliation cannot list credentials');
        continue;
      }
      if (managed.length === 0) continue;
      const records = await this.#c.store.listCredentials({ target, handles: managed });
      const byHandle = new Map<string, CredentialRecord[]>();
      for (const record of records)
        byHandle.set(record.handle, [...(byHandle.get(record.handle) ?? []), record]);
      for (const handle of managed) {
        const mine = byHandle.get(handle);
        if (!mine) {
          this.#c.log.warn(
            { target, handle },
            'role carries the mark but the store never minted it; not touched',
          );
          continue;
        }
        if (!(await this.#isLeftover(mine))) continue;
        try {
          await provider.removeOrphan(handle);
          orphans.push(handle);
          const now = this.#c.clock();
          for (const record of mine.filter((r) => r.state !== 'revoked')) {
            await this.#c.store.updateCredential(record.id, {
              state: 'revoked',
              revokedAt: now,
              lastError: null,
            });
          }
          await this.#c.audit.record('warden', 'credential.orphan_removed', handle, { target });
        } catch (error) {
          this.#c.log.error({ err: error, target, handle }, 'cannot remove orphaned credential');
        }
      }
    }
    return { expired: 0, orphans };
  }

  /** A provider's own reconciliation (Vault leases), given the store's live credentials of the target. */
  async #reconcileLeases(
    target: string,
    reconcile: (live: readonly CredentialRecord[]) => Promise<string[]>,
    orphans: string[],
  ): Promise<void> {
    try {
      const live = await this.#c.store.listCredentials({ target, states: ['active', 'revoking', 'minting'] });
      for (const removed of await reconcile(live)) {
        orphans.push(removed);
        await this.#c.audit.record('warden', 'credential.orphan_removed', removed, { target });
      }
    } catch (error) {
      this.#c.log.error({ err: error, target }, 'reconciliation of the target failed');
    }
  }

  /**
   * A recorded credential nobody owns any more: not live or being revoked (the revoker's), and
   * not being minted right now (a `minting` record younger than {@link MINTING_GRACE_MS} whose
   * grant still waits in `approved`).
   */
  async #isLeftover(records: readonly CredentialRecord[]): Promise<boolean> {
    for (const record of records) {
      if (record.state === 'active' || record.state === 'revoking') return false;
      if (record.state === 'minting' && record.createdAt > this.#c.clock() - MINTING_GRACE_MS) {
        const grant = await this.#c.store.getRequest(record.requestId);
        if (grant?.state === 'approved') return false;
      }
    }
    return true;
  }

  /** One pass over time-based work: timeouts, reminders, expiry warnings, expiries, retries. */
  sweep(): Promise<void> {
    if (this.#sweeping) return this.#sweeping;
    this.#sweeping = this.#sweepOnce()
      .catch((error) => this.#c.log.error({ err: error }, 'sweep failed'))
      .finally(() => {
        this.#sweeping = undefined;
      });
    return this.#sweeping;
  }

  async #sweepOnce(): Promise<void> {
    const now = this.#c.clock();
    const due = await this.#c.store.findDue(now, this.#c.config.broker.expiring_soon);
    for (const request of due.timedOut) await this.#timeOut(request);
    for (const request of due.remind) {
      const reminded = await this.#c.store.updateRequest(request.id, request.version, { remindedAt: now });
      if (reminded) this.#c.events.publish({ type: 'request.reminder', request: reminded });
    }
    for (const grant of due.expiring) {
      const marked = await this.#c.store.updateRequest(grant.id, grant.version, { expiringNotifiedAt: now });
      if (marked)
        this.#c.events.publish({ type: 'grant.expiring', request: marked, inMs: grant.expiresAt! - now });
    }
    if (due.expired.length > 0) await this.#expire(due.expired);
    const retries = await this.#c.store.findRevocationsDue(now);
    if (retries.length > 0) {
      await this.#revoker.revoke(retries);
      await this.#complete([...new Set(retries.map((c) => c.requestId))]);
    }
    if (now - this.#maintainedAt >= MAINTAIN_EVERY_MS) {
      this.#maintainedAt = now;
      for (const [target, provider] of this.#c.providers) {
        await provider
          .maintain?.()
          .catch((error) => this.#c.log.warn({ err: error, target }, 'target upkeep failed'));
      }
    }
  }

  async #timeOut(request: AccessRequest): Promise<void> {
    const done = await this.#c.store.updateRequest(request.id, request.version, {
      state: 'timed_out',
      endedAt: this.#c.clock(),
      endReason: 'no decision in time',
    });
    if (!done) return;
    await this.#c.audit.record('warden', 'request.timed_out', request.id, {});
    this.#c.events.publish({ type: 'request.timed_out', request: done });
  }

  /** Expires grants (from timers or the sweeper); each transition wins once across replicas. */
  async #expire(grants: readonly AccessRequest[]): Promise<void> {
    const expired: AccessRequest[] = [];
    await Promise.all(
      grants.map(async (grant) => {
        const done = await this.#c.store.updateRequest(grant.id, grant.version, {
          state: 'revoking',
          endState: 'expired',
          endedAt: this.#c.clock(),
          endReason: 'expired',
        });
        if (done) expired.push(done);
      }),
    );
    for (const grant of expired) this.cancelTimer(grant.id);
    // Told first, so proxies cut the grants' sessions at the start of the revocation.
    for (const grant of expired) this.#c.events.publish({ type: 'grant.expired', request: grant });
    await this.revokeCredentialsOf(expired);
    await this.#c.audit.recordBatch(
      expired.map((g) => ({
        at: this.#c.clock(),
        actor: 'warden',
        action: 'grant.expired',
        subject: g.id,
        data: {},
      })),
    );
  }

  /** Removes the credentials of ending grants, then completes the grants left without any. */
  async revokeCredentialsOf(grants: readonly AccessRequest[]): Promise<void> {
    if (grants.length === 0) return;
    const credentials: CredentialRecord[] = [];
    for (const grant of grants) {
      credentials.push(
        ...(await this.#c.store.listCredentials({ requestId: grant.id, states: ['active', 'revoking'] })),
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
      done = await this.#c.store.completeRevocations(ids);
    } catch (error) {
      this.#c.log.error({ err: error }, 'recording finished revocations failed; the sweeper will retry');
      return;
    }
    for (const request of done) this.#c.events.publish({ type: 'grant.ended', request });
  }

  async #onRevocations(outcomes: readonly RevocationOutcome[]): Promise<void> {
    const at = this.#c.clock();
    await this.#c.audit.recordBatch(
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
      this.#c.log.error(
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
    let request = await this.#c.store.getRequest(credential.requestId);
    for (let i = 0; request && i < 5; i++) {
      const ending = request.state === 'revoking' || request.state === 'revocation_failed';
      const updated = await this.#c.store.updateRequest(request.id, request.version, {
        error,
        ...(ending ? { state: 'revocation_failed' as const } : {}),
      });
      if (updated) {
        request = updated;
        break;
      }
      request = await this.#c.store.getRequest(credential.requestId);
    }
    if (!request) return;
    if (credential.attempts !== 1 && credential.attempts % NOTIFY_EVERY_ATTEMPTS !== 0) return;
    const approvers = [...new Set(this.#c.approvers.resolve(request).groups.flatMap((g) => g.members))];
    this.#c.events.publish({
      type: 'credential.revocation_failed',
      request,
      error: credential.lastError ?? 'unknown',
      attempts: credential.attempts,
      approvers,
    });
  }

  /** Books the grant's expiry on a timer (the sweeper is the safety net). */
  book(grant: AccessRequest): void {
    if (this.#stopped || grant.expiresAt === null) return;
    this.cancelTimer(grant.id);
    const fire = () => {
      this.#timers.delete(grant.id);
      void this.#queueExpiry(grant.id);
    };
    if (grant.expiresAt <= this.#c.clock()) {
      fire();
      return;
    }
    this.#timers.set(grant.id, new Cron(new Date(grant.expiresAt), fire));
  }

  /** Forgets the expiry timer of a grant that ended otherwise. */
  cancelTimer(id: string): void {
    this.#timers.get(id)?.stop();
    this.#timers.delete(id);
  }

  /** Timers that fire together are expired as one batch. */
  async #queueExpiry(id: string): Promise<void> {
    const grant = await this.#c.store.getRequest(id);
    if (grant?.state !== 'active') return;
    if (grant.expiresAt! > this.#c.clock()) {
      this.book(grant);
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
        this.#c.log.error({ err: error }, 'expiry failed; the sweeper will retry'),
      );
    });
  }
}
