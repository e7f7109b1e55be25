/**
 * Whether Warden can talk to Slack, and getting back to it when it cannot. A Slack outage must
 * never stop Warden: the adapter starts whatever the answer, keeps trying with back-off
 * (`auth.test`, then in Socket Mode the WebSocket), reports its state for `/v1/health`, and when
 * Slack answers again runs `onConnected` (which posts what could not be posted meanwhile).
 * `warden doctor` runs the same check once and tells a network failure from a refused token.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { type BackoffPolicy, backoffDelay } from '../../lib/backoff.ts';
import type { Logger } from '../../lib/log.ts';

/** Who the bot is in the workspace, from `auth.test`. */
export interface SlackIdentity {
  botUserId: string | undefined;
  botId: string | undefined;
  team: string | undefined;
  user: string | undefined;
}

/** Why Slack could not be reached, as far as a person has to act on it. */
export type SlackFailureKind =
  /** Network trouble or Slack answering 5xx / 429: Warden keeps trying; check egress if it lasts. */
  | 'unreachable'
  /** Slack refused the token: fix `chat.slack.bot_token` (or the app token) or reinstall the app. */
  | 'refused'
  /** Anything else Slack answered. */
  | 'failed';

export interface SlackFailure {
  kind: SlackFailureKind;
  /** What happened, for logs, health and doctor. Never holds a token. */
  message: string;
}

/** The adapter's state as `/v1/health` shows it. */
export interface ChatStatus {
  state: 'connecting' | 'connected' | 'degraded';
  /** When it entered this state (ms since the epoch). */
  since: number;
  /** Failed tries since the last success. */
  failures: number;
  /** The last failure, while not connected. */
  error?: SlackFailure;
}

interface WebApiErrorShape {
  code?: string;
  statusCode?: number;
  data?: { error?: string };
  original?: { message?: string; cause?: { code?: string; message?: string } };
  message?: string;
}

const REFUSED = new Set([
  'invalid_auth',
  'not_authed',
  'account_inactive',
  'token_revoked',
  'token_expired',
  'not_allowed_token_type',
]);

/** Sorts an `auth.test` (or `apps.connections.open`) failure into network, refused or other. */
export function classifySlackConnectionError(error: unknown): SlackFailure {
  const e = (error ?? {}) as WebApiErrorShape;
  if (e.code === 'slack_webapi_request_error') {
    const cause = e.original?.cause;
    const why = cause?.code ?? cause?.message ?? e.original?.message ?? 'network error';
    return { kind: 'unreachable', message: `cannot reach the Slack API (${why})` };
  }
  if (e.code === 'slack_webapi_http_error' || e.code === 'slack_webapi_rate_limited_error') {
    const status = e.code === 'slack_webapi_rate_limited_error' ? 429 : (e.statusCode ?? 0);
    return { kind: 'unreachable', message: `the Slack API answered HTTP ${status}` };
  }
  const slackError = e.code === 'slack_webapi_platform_error' ? e.data?.error : undefined;
  if (slackError && REFUSED.has(slackError)) {
    return { kind: 'refused', message: `Slack refused the token (${slackError})` };
  }
  if (slackError) return { kind: 'failed', message: `Slack answered ${slackError}` };
  return { kind: 'failed', message: (e.message ?? String(error)).slice(0, 200) };
}

export interface SlackConnectionOptions {
  /** `auth.test` with the bot token. */
  verify: () => Promise<SlackIdentity>;
  /** After a good `auth.test`: open the Socket Mode WebSocket (HTTP mode needs nothing). */
  connect?: () => Promise<void>;
  /** Runs each time the connection is (re)established. */
  onConnected?: () => Promise<unknown>;
  logger: Logger;
  backoff: BackoffPolicy;
  clock?: () => number;
  random?: () => number;
}

export class SlackConnection {
  readonly #options: SlackConnectionOptions;
  readonly #clock: () => number;
  #identity: SlackIdentity | undefined;
  #checking: Promise<SlackFailure | undefined> | undefined;
  #status: ChatStatus;
  #loop: Promise<void> | undefined;
  #abort = new AbortController();
  #stopped = false;

  constructor(options: SlackConnectionOptions) {
    this.#options = options;
    this.#clock = options.clock ?? Date.now;
    this.#status = { state: 'connecting', since: this.#clock(), failures: 0 };
  }

  /** The bot's identity from the last good `auth.test`. */
  get identity(): SlackIdentity | undefined {
    return this.#identity;
  }

  status(): ChatStatus {
    return { ...this.#status };
  }

  /** One `auth.test` (shared with any already running): undefined when Slack accepts the token. */
  check(): Promise<SlackFailure | undefined> {
    this.#checking ??= this.#options
      .verify()
      .then((identity) => {
        this.#identity = identity;
        return undefined;
      })
      .catch((error: unknown) => {
        const failure = classifySlackConnectionError(error);
        this.#fail(failure);
        return failure;
      })
      .finally(() => {
        this.#checking = undefined;
      });
    return this.#checking;
  }

  /** Keeps trying until connected, then runs `onConnected`. Returns at once. */
  start(): void {
    if (this.#stopped || this.#loop) return;
    this.#loop = this.#run().finally(() => {
      this.#loop = undefined;
    });
  }

  /**
   * Told by the adapter that a call failed because Slack is unreachable: the state turns degraded
   * and the loop starts again, so `onConnected` runs once Slack is back.
   */
  lost(failure: SlackFailure): void {
    if (this.#stopped) return;
    this.#fail(failure);
    this.start();
  }

  /** Stops trying (a sleep in progress ends at once). */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#abort.abort();
    await this.#loop?.catch(() => {});
  }

  async #run(): Promise<void> {
    for (let attempt = 1; !this.#stopped; attempt++) {
      const failure = (await this.check()) ?? (await this.#connect());
      if (this.#stopped) return;
      if (!failure) {
        this.#connected();
        try {
          await this.#options.onConnected?.();
        } catch (error) {
          this.#options.logger.error({ err: error }, 'catching up with Slack failed');
        }
        return;
      }
      const delay = backoffDelay(attempt, this.#options.backoff, this.#options.random);
      this.#options.logger[attempt === 1 ? 'error' : 'warn'](
        { kind: failure.kind, error: failure.message, attempt, retryInMs: delay },
        'Slack is not reachable; Warden keeps running and tries again',
      );
      try {
        await sleep(delay, undefined, { signal: this.#abort.signal });
      } catch {
        return;
      }
    }
  }

  async #connect(): Promise<SlackFailure | undefined> {
    if (!this.#options.connect) return undefined;
    // Socket Mode may keep retrying inside Bolt without settling: stopping must not wait for it.
    const signal = this.#abort.signal;
    let onAbort = () => {};
    const stopped = new Promise<void>((resolve) => {
      onAbort = resolve;
      signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      await Promise.race([this.#options.connect(), stopped]);
      return undefined;
    } catch (error) {
      const failure = classifySlackConnectionError(error);
      this.#fail(failure);
      return failure;
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  #connected(): void {
    const was = this.#status;
    this.#status = { state: 'connected', since: this.#clock(), failures: 0 };
    if (was.state !== 'connected') {
      this.#options.logger.info(
        { team: this.#identity?.team, after: was.failures },
        was.failures > 0 ? 'Slack is reachable again' : 'Slack connected',
      );
    }
  }

  #fail(failure: SlackFailure): void {
    const was = this.#status;
    this.#status = {
      state: 'degraded',
      since: was.state === 'degraded' ? was.since : this.#clock(),
      failures: was.failures + 1,
      error: failure,
    };
  }
}
