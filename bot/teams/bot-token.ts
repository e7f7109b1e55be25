/**
 * The bot's outbound token (OAuth 2.0 client credentials against Entra ID), cached and refreshed
 * before it expires: a token is reused until five minutes before its `expires_in` (or half its
 * life, if shorter), and concurrent callers share one fetch. The Teams SDK asks for it on every
 * Connector call (`App({ token })`). The secret and the token never reach a log or an error.
 */
import type { Revealable } from '../../broker/ports/chat.ts';
import { TeamsApiError } from '../errors.ts';
import { callTeams, DEFAULT_RETRY, type RetryPolicy } from './teams-calls.ts';

export interface BotTokenOptions {
  appId: string;
  appPassword: Revealable;
  tenantId: string;
  /** `https://login.microsoftonline.com`. */
  loginEndpoint: string;
  fetch?: typeof fetch;
  clock?: () => number;
  retry?: RetryPolicy;
}

const EARLY_MS = 5 * 60 * 1000;
const FETCH_TIMEOUT_MS = 10_000;

export class BotTokenSource {
  readonly #options: BotTokenOptions;
  readonly #fetch: typeof fetch;
  readonly #clock: () => number;
  readonly #cache = new Map<string, { token: string; refreshAt: number; expiresAt: number }>();
  readonly #loading = new Map<string, Promise<string>>();
  /** How many tokens were fetched (doctor, tests). */
  fetches = 0;

  constructor(options: BotTokenOptions) {
    this.#options = options;
    this.#fetch = options.fetch ?? fetch;
    this.#clock = options.clock ?? Date.now;
  }

  /** A token for `scope`: the cached one while it is fresh, else a new one. */
  async get(scope: string): Promise<string> {
    const cached = this.#cache.get(scope);
    const now = this.#clock();
    if (cached && now < cached.refreshAt) return cached.token;
    let loading = this.#loading.get(scope);
    if (!loading) {
      loading = callTeams(() => this.#fetchToken(scope), this.#options.retry ?? DEFAULT_RETRY).finally(() =>
        this.#loading.delete(scope),
      );
      this.#loading.set(scope, loading);
    }
    try {
      return await loading;
    } catch (error) {
      // A token still valid (refreshing early failed) is better than none.
      if (cached && this.#clock() < cached.expiresAt) return cached.token;
      throw error;
    }
  }

  async #fetchToken(scope: string): Promise<string> {
    const { appId, appPassword, tenantId, loginEndpoint } = this.#options;
    const url = `${loginEndpoint}/${encodeURIComponent(tenantId)}/oauth2/v2.0/token`;
    const body = new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: appId,
      client_secret: appPassword.reveal(),
      scope,
    });
    const started = this.#clock();
    let res: Response;
    try {
      res = await this.#fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body,
        signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
      });
    } catch (error) {
      throw Object.assign(new Error('cannot reach the token endpoint'), {
        code: (error as { cause?: { code?: string } }).cause?.code ?? 'ENETWORK',
      });
    }
    this.fetches++;
    if (res.status === 429 || res.status >= 500) {
      throw {
        status: res.status,
        response: { status: res.status, headers: Object.fromEntries(res.headers) },
      };
    }
    const json = (await res.json().catch(() => ({}))) as {
      access_token?: unknown;
      expires_in?: unknown;
      error?: unknown;
    };
    if (!res.ok || typeof json.access_token !== 'string') {
      const why = typeof json.error === 'string' ? json.error.slice(0, 60) : `HTTP ${res.status}`;
      throw new TeamsApiError(
        `Entra ID refused the bot's credentials (${why}): check chat.teams.app_id, app_password and tenant_id`,
        { details: { statusCode: res.status } },
      );
    }
    const lifetimeMs = Math.max(0, Number(json.expires_in ?? 0)) * 1000;
    const early = Math.min(EARLY_MS, lifetimeMs / 2);
    this.#cache.set(scope, {
      token: json.access_token,
      refreshAt: started + lifetimeMs - early,
      expiresAt: started + lifetimeMs,
    });
    return json.access_token;
  }
}
