/**
 * Holds a client message while Warden prepares the guardrails' decision on it with statements of
 * its own (reading the catalog, function bodies or the session's search_path back, taking the
 * planner's estimate): later client messages are kept in order, bounded by
 * {@link MAX_HELD_INPUT}, the session stops reading its client, and once the work is done the
 * decision is acted on and the kept messages are processed as if they had just arrived. The work
 * may wait for a kept message (a Parse waits for its Bind, whose parameters the estimate needs).
 * No sockets or timers.
 */
import { PgProxyError } from './errors.ts';
import type { FrontendMessage } from './protocol/frontend-parser.ts';
import { detach, MAX_HELD_INPUT } from './review-hold.ts';

/** What the hold asks of the relay. */
export interface GuardHoldHost {
  /** Processes a kept client message as if it had just arrived. */
  receive(message: FrontendMessage): void;
  /** Brackets what acting and replaying write outside a feed of bytes. */
  beginOutput(): void;
  endOutput(): void;
  /** Called with true when a message is held (stop reading the client), false when released. */
  onHold(holding: boolean): void;
  /** Called when the work or processing the kept input fails: end the session. */
  onFail(error: unknown): void;
}

/** What a waiting work makes of a kept message: the one it waits for, the end of the wait, or neither. */
export type KeptTest = (message: FrontendMessage) => 'found' | 'stop' | 'skip';

interface Waiter {
  test: KeptTest;
  resolve: (message: FrontendMessage | undefined) => void;
  from: number;
}

/** The hold of one session (see the module comment). */
export class GuardHold {
  private kept: FrontendMessage[] = [];
  private keptBytes = 0;
  private active = false;
  private closed = false;
  private waiter: Waiter | null = null;

  constructor(private readonly host: GuardHoldHost) {}

  get holding(): boolean {
    return this.active;
  }

  /**
   * Keeps a client message until the held one is settled.
   * @throws PgProxyError `ERR_PGPROXY_HELD_INPUT` past {@link MAX_HELD_INPUT} bytes: end the session.
   */
  keep(message: FrontendMessage): void {
    this.keptBytes += message.raw.length;
    if (this.keptBytes > MAX_HELD_INPUT) {
      throw new PgProxyError(
        'ERR_PGPROXY_HELD_INPUT',
        `more than ${MAX_HELD_INPUT} bytes arrived while Warden checked a statement`,
      );
    }
    this.kept.push(detach(message));
    this.offer();
  }

  /** Holds while `work` runs, then calls `act` with its result and processes the kept input. */
  start<T>(work: () => Promise<T>, act: (result: T) => void): void {
    this.active = true;
    this.host.onHold(true);
    work().then(
      (result) => this.release(() => act(result)),
      (error) => {
        if (!this.closed) this.host.onFail(error);
      },
    );
  }

  /**
   * Resolves with the first kept message (after those already looked at by earlier waits) that
   * `test` finds, or undefined when it says stop first. Messages it skips stay kept.
   */
  waitForKept(test: KeptTest): Promise<FrontendMessage | undefined> {
    return new Promise((resolve) => {
      this.waiter = { test, resolve, from: 0 };
      this.offer();
    });
  }

  /** Ends the hold without acting (the session is closing). */
  close(): void {
    this.closed = true;
    this.waiter?.resolve(undefined);
    this.waiter = null;
  }

  private offer(): void {
    const waiter = this.waiter;
    if (!waiter) return;
    for (let i = waiter.from; i < this.kept.length; i++) {
      const verdict = waiter.test(this.kept[i]!);
      waiter.from = i + 1;
      if (verdict === 'skip') continue;
      this.waiter = null;
      waiter.resolve(verdict === 'found' ? this.kept[i] : undefined);
      return;
    }
  }

  private release(act: () => void): void {
    if (this.closed) return;
    const kept = this.kept;
    this.kept = [];
    this.keptBytes = 0;
    this.active = false;
    this.host.beginOutput();
    try {
      act();
      for (let i = 0; i < kept.length; i++) {
        this.host.receive(kept[i]!);
        if (this.active) {
          // The replay started another hold: the rest waits behind it.
          for (const message of kept.slice(i + 1)) this.keep(message);
          return;
        }
      }
    } catch (error) {
      this.host.onFail(error);
      return;
    } finally {
      this.host.endOutput();
    }
    this.host.onHold(false);
  }
}
