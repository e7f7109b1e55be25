/**
 * Follows schema changes in the scope of a target's masked levels (issue 15, item 5). Column
 * privileges deny what is added (a column, a table) until a look grants it, but a rename keeps
 * the column's grant: `ALTER TABLE invoices RENAME COLUMN ref TO card_number` would leave a
 * granted column under a masked name. Without a superuser there is no event trigger to hear it,
 * so the provider reads a fingerprint of the scope's names every few seconds (one catalogue scan
 * of the scope's relations) and looks again at once when it changes.
 *
 * What remains is the interval itself: between the rename and the next look (at most
 * {@link SCHEMA_WATCH_MS} and the look's own time) the renamed column is readable. docs/masking.md
 * says so.
 */
import type pg from 'pg';
import type { Logger } from '../../log.ts';
import { MASK_SCHEMA } from './masking-views.ts';

/** How often the scope's names are read, in ms. */
export const SCHEMA_WATCH_MS = 2_000;

/**
 * One fingerprint of every relation and column name of the scope (`$1` schemas, `$2` tables as
 * `schema.table`).
 */
export const SCOPE_FINGERPRINT_SQL = `
SELECT md5(coalesce(string_agg(c.oid::text || ' ' || n.nspname || ' ' || c.relname || ' ' || a.attnum || ' ' || a.attname,
                               ',' ORDER BY c.oid, a.attnum), '')) AS fingerprint
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND n.nspname <> '${MASK_SCHEMA}'
  AND (n.nspname = ANY($1::text[]) OR (n.nspname || '.' || c.relname) = ANY($2::text[]))`;

export interface SchemaWatchOptions {
  targetName: string;
  /** The schemas and tables (`schema.table`) of every masked level. */
  scope: { schemas: string[]; tables: string[] };
  connect: () => Promise<pg.PoolClient>;
  release: (client: pg.PoolClient, error?: unknown) => void;
  /** The level refresh; called on the first read and whenever the fingerprint changes. */
  onChange: () => Promise<void>;
  logger?: Logger | undefined;
  intervalMs?: number;
}

export class SchemaWatch {
  readonly #options: SchemaWatchOptions;
  #timer: NodeJS.Timeout | undefined;
  #last: string | undefined;
  #reading: Promise<void> | undefined;
  #failing = false;

  constructor(options: SchemaWatchOptions) {
    this.#options = options;
  }

  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => void this.check(), this.#options.intervalMs ?? SCHEMA_WATCH_MS);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#reading;
  }

  /** Reads the fingerprint once (ticks that find a read under way skip). Never throws. */
  check(): Promise<void> {
    this.#reading ??= this.#read().finally(() => {
      this.#reading = undefined;
    });
    return this.#reading;
  }

  async #read(): Promise<void> {
    const { connect, release, scope, logger, targetName } = this.#options;
    let fingerprint: string;
    try {
      const client = await connect();
      let failure: unknown;
      try {
        const { rows } = await client.query<{ fingerprint: string }>(SCOPE_FINGERPRINT_SQL, [
          scope.schemas,
          scope.tables,
        ]);
        fingerprint = rows[0]!.fingerprint;
      } catch (error) {
        failure = error;
        throw error;
      } finally {
        release(client, failure);
      }
    } catch (error) {
      // The target is down or busy: the next tick tries again, and the minute upkeep still runs.
      if (!this.#failing) logger?.warn({ target: targetName, err: error }, 'cannot read the masked scope');
      this.#failing = true;
      return;
    }
    this.#failing = false;
    if (fingerprint === this.#last) return;
    if (this.#last !== undefined)
      logger?.info({ target: targetName }, 'tables of a masked scope changed: looking again');
    // The refresh logs what it cannot do itself; the fingerprint counts as seen either way.
    await this.#options.onChange().catch(() => {});
    this.#last = fingerprint;
  }
}
