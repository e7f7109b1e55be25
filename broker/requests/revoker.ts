/**
 * Removes credentials. Calls arriving in the same tick are coalesced into one batch per target,
 * so a thousand grants expiring in the same second cost a few statements, not thousands.
 * A lease on each credential row makes exactly one replica work on it; failures are retried
 * with backoff and stay visible on the credential (attempts, last error).
 */
import type { Logger } from '../log.ts';
import type { CredentialRecord } from '../model.ts';
import type { CredentialProvider } from '../providers/provider.ts';
import type { Store } from '../store/store.ts';

/** Roles per provider call; large batches hold catalogue locks longer. */
const BATCH_SIZE = 100;
const LEASE_MS = 60_000;

export interface RevocationOutcome {
  credential: CredentialRecord;
  error?: Error;
}

export interface RevokerOptions {
  store: Store;
  providers: ReadonlyMap<string, CredentialProvider>;
  logger: Logger;
  clock: () => number;
  owner: string;
  /** Called once per credential after each attempt (audit, events). */
  onOutcome: (outcome: RevocationOutcome) => Promise<void>;
}

/** Backoff after a failed attempt: 1 s, 2 s, 4 s ... capped at 5 minutes. */
export function computeRetryDelay(attempts: number): number {
  return Math.min(1000 * 2 ** Math.max(0, attempts - 1), 300_000);
}

export class Revoker {
  readonly #options: RevokerOptions;
  #queue: { credential: CredentialRecord; done: () => void }[] = [];
  #scheduled = false;

  constructor(options: RevokerOptions) {
    this.#options = options;
  }

  /** Queues credentials for removal; resolves once this attempt finished (successfully or not). */
  revoke(credentials: readonly CredentialRecord[]): Promise<void> {
    if (credentials.length === 0) return Promise.resolve();
    const waits = credentials.map(
      (credential) => new Promise<void>((done) => this.#queue.push({ credential, done })),
    );
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => {
        this.#scheduled = false;
        const batch = this.#queue;
        this.#queue = [];
        void this.#run(batch);
      });
    }
    return Promise.all(waits).then(() => undefined);
  }

  async #run(batch: { credential: CredentialRecord; done: () => void }[]): Promise<void> {
    const { store, logger, clock, owner } = this.#options;
    try {
      const ids = [...new Set(batch.map((b) => b.credential.id))];
      const claimed = await store.claimRevocations(ids, owner, clock(), LEASE_MS);
      const byTarget = new Map<string, CredentialRecord[]>();
      for (const c of claimed) {
        const list = byTarget.get(c.target) ?? [];
        list.push(c);
        byTarget.set(c.target, list);
      }
      await Promise.all([...byTarget].map(([target, list]) => this.#revokeTarget(target, list)));
    } catch (error) {
      logger.error({ err: error }, 'revocation batch failed; the sweeper will retry');
    } finally {
      for (const b of batch) b.done();
    }
  }

  async #revokeTarget(target: string, credentials: CredentialRecord[]): Promise<void> {
    const provider = this.#options.providers.get(target);
    const chunks: CredentialRecord[][] = [];
    for (let i = 0; i < credentials.length; i += BATCH_SIZE)
      chunks.push(credentials.slice(i, i + BATCH_SIZE));
    await Promise.all(
      chunks.map(async (chunk) => {
        let failures: Map<string, Error>;
        if (!provider) {
          failures = new Map(
            chunk.map((c) => [c.id, new Error(`no provider configured for target ${target}`)]),
          );
        } else {
          try {
            failures = await provider.revoke(chunk);
          } catch (error) {
            failures = new Map(chunk.map((c) => [c.id, error as Error]));
          }
        }
        for (const credential of chunk) await this.#record(credential, failures.get(credential.id));
      }),
    );
  }

  async #record(credential: CredentialRecord, error: Error | undefined): Promise<void> {
    const { store, clock, onOutcome } = this.#options;
    const now = clock();
    if (!error) {
      const patch = {
        state: 'revoked' as const,
        revokedAt: now,
        leaseOwner: null,
        leaseUntil: null,
        lastError: null,
      };
      await store.updateCredential(credential.id, patch);
      await onOutcome({ credential: { ...credential, ...patch } });
      return;
    }
    const attempts = credential.attempts + 1;
    const patch = {
      state: 'revoking' as const,
      attempts,
      lastError: error.message.slice(0, 500),
      nextAttemptAt: now + computeRetryDelay(attempts),
      leaseOwner: null,
      leaseUntil: null,
    };
    await store.updateCredential(credential.id, patch);
    await onOutcome({ credential: { ...credential, ...patch }, error });
  }
}
