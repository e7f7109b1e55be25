/**
 * The broker's audit facade: appends entries with the caller of the current call (`via`), and
 * never lets a failed append fail the operation it records (it is logged instead).
 */
import { resolveVia } from '../audit/caller.ts';
import type { Logger } from '../log.ts';
import type { AuditEntry, AuditInput } from '../model.ts';
import type { Store } from '../store/store.ts';

/** Appends audit entries for the broker's parts. */
export class AuditLog {
  readonly #store: Pick<Store, 'appendAudit' | 'appendAuditBatch'>;
  readonly #log: Logger;
  readonly #clock: () => number;

  constructor(store: Pick<Store, 'appendAudit' | 'appendAuditBatch'>, logger: Logger, clock: () => number) {
    this.#store = store;
    this.#log = logger;
    this.#clock = clock;
  }

  /** One entry; `via` defaults to the caller of the current call. */
  async record(
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

  /** Several entries in one append. */
  async recordBatch(entries: readonly AuditInput[]): Promise<void> {
    try {
      await this.#store.appendAuditBatch(entries.map((e) => ({ ...e, via: resolveVia(e.actor, e.via) })));
    } catch (error) {
      this.#log.error({ err: error, entries: entries.length }, 'audit append failed');
    }
  }
}
