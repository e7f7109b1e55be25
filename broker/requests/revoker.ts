/**
 * Removes credentials. Calls are coalesced into batches per target,
 * so a thousand grants expiring in the same second cost a few statements, not thousands.
 * A lease on each credential row makes exactly one replica work on it; failures are retried
 * with backoff (capped at 5 minutes) for as long as it takes, and stay visible on the
 * credential (attempts, last error) and on its grant (`revocation_failed`).
 */
import type { Logger } from '../log.ts';
import type { CredentialRecord } from '../model.ts';
import type { CredentialProvider, RevokeResult } from '../providers/provider.ts';
import type { Store } from '../store/store.ts';

/** Roles per provider call; large batches hold catalogue locks longer. */
const BATCH_SIZE = 100;
/** Default lease on a credential being revoked (`broker.revocation_lease`). */
export const DEFAULT_LEASE_MS = 60_000;
/** Credentials one worker takes from its queue at a time. */
const MAX_BATCH = 1000;

interface QueueItem {
  credential: CredentialRecord;
  done: () => void;
}

export interface RevocationOutcome {
  credential: CredentialRecord;
  error?: Error;
  /** What the provider reports of the removal (objects dropped, ...), for the audit. */
  details?: Record<string, unknown>;
}

export interface RevokerOptions {
  store: Store;
  providers: ReadonlyMap<string, CredentialProvider>;
  logger: Logger;
  clock: () => number;
  owner: string;
  /** How long a claimed credential stays with this replica (default {@link DEFAULT_LEASE_MS}). */
  leaseMs?: number;
  /** Called after each provider call with its outcomes (audit, events). */
  onOutcomes: (outcomes: readonly RevocationOutcome[]) => Promise<void>;
}

/** Backoff after a failed attempt: 1 s, 2 s, 4 s ... capped at 5 minutes. */
export function computeRetryDelay(attempts: number): number {
  return Math.min(1000 * 2 ** Math.max(0, attempts - 1), 300_000);
}

export class Revoker {
  readonly #options: RevokerOptions;
  /** Per target: credentials waiting, and whether a worker is draining them. */
  readonly #queues = new Map<string, { waiting: QueueItem[]; running: boolean }>();

  constructor(options: RevokerOptions) {
    this.#options = options;
  }

  /**
   * Queues credentials for removal; resolves once this attempt finished (successfully or not).
   * One worker per target drains its queue: while a batch runs, later arrivals pile up and go
   * together in the next one, so batches grow with the load instead of with a fixed delay.
   */
  revoke(credentials: readonly CredentialRecord[]): Promise<void> {
    if (credentials.length === 0) return Promise.resolve();
    const waits = credentials.map(
      (credential) =>
        new Promise<void>((done) => {
          const queue = this.#queues.get(credential.target) ?? { waiting: [], running: false };
          this.#queues.set(credential.target, queue);
          queue.waiting.push({ credential, done });
        }),
    );
    for (const [target, queue] of this.#queues) {
      if (!queue.running && queue.waiting.length > 0) {
        queue.running = true;
        void this.#drain(target, queue);
      }
    }
    return Promise.all(waits).then(() => undefined);
  }

  async #drain(target: string, queue: { waiting: QueueItem[]; running: boolean }): Promise<void> {
    try {
      while (queue.waiting.length > 0) {
        const batch = queue.waiting.splice(0, MAX_BATCH);
        try {
          await this.#run(target, batch);
        } finally {
          for (const item of batch) item.done();
        }
      }
    } finally {
      queue.running = false;
    }
  }

  async #run(target: string, batch: QueueItem[]): Promise<void> {
    const { store, logger, clock, owner } = this.#options;
    try {
      const ids = [...new Set(batch.map((b) => b.credential.id))];
      const claimed = await store.claimRevocations(
        ids,
        owner,
        clock(),
        this.#options.leaseMs ?? DEFAULT_LEASE_MS,
      );
      if (claimed.length > 0) await this.#revokeTarget(target, claimed);
    } catch (error) {
      logger.error({ err: error, target }, 'revocation batch failed; the sweeper will retry');
    }
  }

  async #revokeTarget(target: string, credentials: CredentialRecord[]): Promise<void> {
    const provider = this.#options.providers.get(target);
    // Bookkeeping (store, audit) of one chunk runs while the next chunk's roles are dropped.
    const bookkeeping: Promise<void>[] = [];
    for (let i = 0; i < credentials.length; i += BATCH_SIZE) {
      const chunk = credentials.slice(i, i + BATCH_SIZE);
      let result: RevokeResult;
      if (!provider) {
        result = {
          failures: new Map(
            chunk.map((c) => [c.id, new Error(`no provider configured for target ${target}`)]),
          ),
          details: new Map(),
        };
      } else {
        try {
          result = await provider.revoke(chunk);
        } catch (error) {
          result = { failures: new Map(chunk.map((c) => [c.id, error as Error])), details: new Map() };
        }
      }
      bookkeeping.push(this.#record(chunk, result));
    }
    await Promise.all(bookkeeping);
  }
  async #record(chunk: readonly CredentialRecord[], result: RevokeResult): Promise<void> {
    const failures = result.failures;
    const { store, clock, onOutcomes, logger } = this.#options;
    try {
      const now = clock();
      const outcomes: RevocationOutcome[] = [];
      const revoked = chunk.filter((c) => !failures.has(c.id));
      await store.markCredentialsRevoked(
        revoked.map((c) => c.id),
        now,
      );
      for (const credential of revoked) {
        outcomes.push({
          credential: {
            ...credential,
            state: 'revoked',
            revokedAt: now,
            leaseOwner: null,
            leaseUntil: null,
            lastError: null,
          },
          ...(result.details.has(credential.id) ? { details: result.details.get(credential.id)! } : {}),
        });
      }
      for (const credential of chunk) {
        const error = failures.get(credential.id);
        if (!error) continue;
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
        outcomes.push({ credential: { ...credential, ...patch }, error });
      }
      await onOutcomes(outcomes);
    } catch (error) {
      logger.error({ err: error }, 'recording revocation outcomes failed; the sweeper will reconcile');
    }
  }
}
