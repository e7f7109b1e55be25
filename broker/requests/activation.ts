/**
 * Activation: the provider mints the credential of an approved request, recorded in the store
 * before it exists on the target, and the grant becomes active with its expiry booked.
 */
import { createId } from '../../lib/ids.ts';
import type { IssuedCredential } from '../events/events.ts';
import type { AccessRequest, CredentialRecord } from '../model.ts';
import { transition } from './records.ts';
import type { Scheduler } from './scheduler.ts';
import type { Activation, BrokerContext } from './types.ts';

/** Mints credentials and makes approved requests active. */
export class Activator {
  readonly #c: BrokerContext;
  readonly #scheduler: Scheduler;

  constructor(context: BrokerContext, scheduler: Scheduler) {
    this.#c = context;
    this.#scheduler = scheduler;
  }

  /**
   * Mints the credential and makes an approved request active; the credential goes back to the
   * caller. A chat request's is also published with `grant.active`, for the requester's DM (the
   * chat front end is the one that delivers it); a CI job's never is.
   */
  async activate(request: AccessRequest): Promise<Activation> {
    const provider = this.#c.providers.get(request.target);
    const now = this.#c.clock();
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
      if (planned) await this.#c.store.insertCredential(record);
      const minted = await provider.mint(request, expiresAt);
      credential = minted.credential;
      handle = minted.handle;
    } catch (error) {
      const message = (error as Error).message.slice(0, 500);
      if (planned) {
        await this.#c.store
          .updateCredential(record.id, { state: 'failed', lastError: message })
          .catch((e) => this.#c.log.error({ err: e, request: request.id }, 'recording a failed mint failed'));
      }
      const failed = await transition(this.#c.store, request, ['approved'], {
        state: 'failed',
        error: message,
        endedAt: now,
      });
      this.#c.log.error(
        { err: error, request: request.id, target: request.target },
        'minting the credential failed',
      );
      await this.#c.audit.record('warden', 'grant.failed', request.id, { error: message });
      this.#c.events.publish({ type: 'grant.failed', request: failed, error: message });
      return { request: failed };
    }
    if (planned) await this.#c.store.updateCredential(record.id, { state: 'active', handle });
    else await this.#c.store.insertCredential({ ...record, handle, state: 'active' });
    const active = await transition(this.#c.store, request, ['approved'], {
      state: 'active',
      activatedAt: now,
      expiresAt,
    });
    this.#scheduler.book(active);
    await this.#c.audit.record('warden', 'grant.active', request.id, {
      target: request.target,
      level: request.level,
      handle,
      expires_at: new Date(expiresAt).toISOString(),
    });
    this.#c.events.publish({
      type: 'grant.active',
      request: active,
      ...(request.source === 'ci' ? {} : { credential }),
    });
    return { request: active, credential };
  }
}
