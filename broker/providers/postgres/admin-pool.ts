/**
 * The broker's connections to one target as its admin role, and what they say about the
 * target's health.
 *
 * node-postgres emits `'error'` on a client whose connection dies (a terminated backend, a
 * database restart, a network drop). The pool listens on idle clients only; a client that is
 * checked out when its connection dies throws the event at nobody and takes the process down.
 * Every client this pool hands out gets its own listener first, so a lost connection marks the
 * target unhealthy, is logged, and the client is destroyed instead of returned; the next call
 * connects again. While unhealthy, a probe retries the connection with backoff (capped), so the
 * target turns healthy again without waiting for traffic.
 */
import pg from 'pg';
import type { Logger } from '../../log.ts';
import type { TargetHealth } from '../provider.ts';

export interface AdminPoolOptions {
  targetName: string;
  config: pg.PoolConfig;
  logger?: Logger | undefined;
  clock?: () => number;
  /** First probe delay after a failure (default 1 s), doubled up to `maxProbeMs` (default 30 s). */
  probeMs?: number;
  maxProbeMs?: number;
}

/** Short, secret-free text of a pg error: SQLSTATE and message. */
export function describePgError(error: unknown): string {
  const e = error as { code?: string; message?: string };
  return `${e.code ? `${e.code} ` : ''}${(e.message ?? String(error)).slice(0, 300)}`;
}

/** SQLSTATE classes that mean the connection, not the statement, failed. */
function isConnectionError(error: unknown): boolean {
  const code = (error as { code?: string }).code ?? '';
  if (code.startsWith('08') || code.startsWith('57P')) return true;
  const message = (error as Error).message ?? '';
  return /Connection terminated|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|timeout exceeded when trying to connect|Query read timeout/i.test(
    message,
  );
}

export class AdminPool {
  readonly #options: AdminPoolOptions;
  readonly #pool: pg.Pool;
  readonly #clock: () => number;
  readonly #watched = new WeakSet<pg.PoolClient>();
  readonly #broken = new WeakSet<pg.PoolClient>();
  #health: TargetHealth;
  #probe: NodeJS.Timeout | undefined;
  #probeDelay: number;
  #closed = false;

  constructor(options: AdminPoolOptions) {
    this.#options = options;
    this.#clock = options.clock ?? Date.now;
    this.#health = { ok: true, since: this.#clock() };
    this.#probeDelay = options.probeMs ?? 1000;
    this.#pool = new pg.Pool(options.config);
    // Idle clients: the pool removes them itself; we only record what happened.
    this.#pool.on('error', (error) => this.#lost(error));
  }

  get health(): TargetHealth {
    return { ...this.#health };
  }

  /** A client with its own `'error'` listener; release it with {@link release}. */
  async connect(): Promise<pg.PoolClient> {
    let client: pg.PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (error) {
      this.#lost(error);
      throw error;
    }
    if (!this.#watched.has(client)) {
      this.#watched.add(client);
      client.on('error', (error) => {
        this.#broken.add(client);
        this.#lost(error);
      });
    }
    return client;
  }

  /**
   * Returns a client to the pool, or destroys it when its connection failed (or `error` says the
   * connection failed): a dead connection must not be handed out again.
   */
  release(client: pg.PoolClient, error?: unknown): void {
    const dead = this.#broken.has(client) || (error !== undefined && isConnectionError(error));
    if (dead) this.#lost(error ?? new Error('connection lost'));
    else if (error === undefined) this.#healthy();
    client.release(dead ? true : undefined);
  }

  async end(): Promise<void> {
    this.#closed = true;
    if (this.#probe) clearTimeout(this.#probe);
    await this.#pool.end();
  }

  #healthy(): void {
    if (this.#health.ok) return;
    this.#health = { ok: true, since: this.#clock() };
    this.#probeDelay = this.#options.probeMs ?? 1000;
    if (this.#probe) clearTimeout(this.#probe);
    this.#probe = undefined;
    this.#options.logger?.info({ target: this.#options.targetName }, 'admin connection to target is back');
  }

  #lost(error: unknown): void {
    const text = describePgError(error);
    if (this.#health.ok) {
      this.#health = { ok: false, since: this.#clock(), error: text };
      this.#options.logger?.error(
        { target: this.#options.targetName, error: text },
        'admin connection to target lost; retrying',
      );
    } else {
      this.#health = { ...this.#health, error: text };
    }
    this.#scheduleProbe();
  }

  #scheduleProbe(): void {
    if (this.#probe || this.#closed) return;
    const delay = this.#probeDelay;
    this.#probeDelay = Math.min(delay * 2, this.#options.maxProbeMs ?? 30_000);
    this.#probe = setTimeout(() => {
      this.#probe = undefined;
      void this.#runProbe();
    }, delay);
    this.#probe.unref();
  }

  async #runProbe(): Promise<void> {
    if (this.#closed || this.#health.ok) return;
    let client: pg.PoolClient | undefined;
    try {
      client = await this.connect();
      await client.query('SELECT 1');
      this.release(client);
    } catch (error) {
      if (client) this.release(client, error);
      else this.#lost(error);
    }
  }
}
