/** Broker events, published after each persisted transition; chat bots and proxies subscribe. */

import type { AccessRequest, Approval, StatementReview } from '../model.ts';
import type { IssuedCredential } from '../providers/credential.ts';

/** A minted credential, whatever its kind (see `providers/credential.ts`). */
export type { IssuedCredential } from '../providers/credential.ts';
/** A PostgreSQL login minted for a grant. */
export type { PostgresCredential as PostgresIssuedCredential } from '../providers/postgres/credential.ts';
/** An OpenSSH user certificate minted for a grant, and the one-time token the SSH proxy also accepts. */
export type { SshCredential as SshIssuedCredential } from '../providers/ssh-ca/credential.ts';

export type BrokerEvent =
  | { type: 'request.created'; request: AccessRequest }
  | {
      type: 'approval.counted';
      request: AccessRequest;
      approval: Approval;
      /** Every answer the request has had so far, this one included. */
      approvals: readonly Approval[];
      given: number;
      needed: number;
    }
  | { type: 'request.denied'; request: AccessRequest; by: string; reason: string }
  | { type: 'request.cancelled'; request: AccessRequest; by: string }
  | { type: 'request.timed_out'; request: AccessRequest }
  | { type: 'request.reminder'; request: AccessRequest }
  | { type: 'grant.active'; request: AccessRequest; credential?: IssuedCredential }
  | { type: 'grant.failed'; request: AccessRequest; error: string }
  | { type: 'grant.break_glass'; request: AccessRequest }
  | { type: 'grant.extended'; request: AccessRequest; by: string; previousExpiresAt: number }
  | { type: 'grant.expiring'; request: AccessRequest; inMs: number }
  /** The grant expired: it is no longer live and its credentials are being removed (`revoking`). */
  | { type: 'grant.expired'; request: AccessRequest }
  /** The grant was revoked: it is no longer live and its credentials are being removed (`revoking`). */
  | { type: 'grant.revoked'; request: AccessRequest; by: string; reason: string }
  /** Every credential of an ended grant is gone: it now reads `expired` or `revoked`. */
  | { type: 'grant.ended'; request: AccessRequest }
  /**
   * Removing a credential failed and is retried (`revocation_failed`); sent on the first failure
   * and about hourly after. `approvers`: the people who may approve the grant's target and level.
   */
  | {
      type: 'credential.revocation_failed';
      request: AccessRequest;
      error: string;
      attempts: number;
      approvers: string[];
    }
  /** A proxied statement waits for review; `request` is its grant. */
  | { type: 'review.requested'; request: AccessRequest; review: StatementReview }
  /** A review was approved, denied or expired; `request` is its grant. */
  | { type: 'review.decided'; request: AccessRequest; review: StatementReview };

export type BrokerEventType = BrokerEvent['type'];
export type EventHandler = (event: BrokerEvent) => void | Promise<void>;

/** The subscription side, what adapters see. */
export interface BrokerEvents {
  subscribe(handler: EventHandler): () => void;
}

/**
 * In-process publisher. A failing subscriber is reported to `onError` and never stops the broker
 * or the other subscribers: chat being down must not lose a grant.
 */
export class EventBus implements BrokerEvents {
  readonly #handlers = new Set<EventHandler>();
  readonly #onError: (error: unknown, event: BrokerEvent) => void;

  constructor(onError: (error: unknown, event: BrokerEvent) => void) {
    this.#onError = onError;
  }

  subscribe(handler: EventHandler): () => void {
    this.#handlers.add(handler);
    return () => this.#handlers.delete(handler);
  }

  publish(event: BrokerEvent): void {
    for (const handler of this.#handlers) {
      try {
        const result = handler(event);
        if (result && typeof (result as Promise<void>).catch === 'function') {
          (result as Promise<void>).catch((error) => this.#onError(error, event));
        }
      } catch (error) {
        this.#onError(error, event);
      }
    }
  }
}
