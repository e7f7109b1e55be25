/**
 * Calls to the Bot Connector (and the token endpoint) with Warden's retry policy, the same one
 * Slack's calls run under (`RetryPolicy`): a 429 waits its `Retry-After`, a 5xx or a network
 * failure backs off exponentially with jitter, anything else (403: the bot is not in that team,
 * 404: no such conversation) fails at once with a clear error. The decision is a pure function;
 * only `callTeams` waits.
 */
import { backoffDelay } from '../../lib/backoff.ts';
import { TeamsApiError } from '../errors.ts';
import { DEFAULT_RETRY, type RetryPolicy } from '../slack/slack-calls.ts';

export { DEFAULT_RETRY, type RetryPolicy } from '../slack/slack-calls.ts';

/** What to do about a failed call. */
export type TeamsFailure =
  | { retry: true; delayMs: number; reason: string }
  | { retry: false; error: TeamsApiError };

/** The shape of an HTTP client error (axios, which the Teams SDK uses, or ours). */
interface HttpErrorShape {
  code?: string;
  status?: number;
  response?: { status?: number; headers?: Record<string, unknown> };
}

const EXPLAIN: Record<number, string> = {
  401: 'the Bot Connector refused the bot token (check chat.teams.app_id and app_password)',
  403: 'the Warden bot is not installed where it was asked to post (add the app to the team or chat)',
  404: 'the Bot Connector knows no such conversation (check chat.teams.channels)',
};

function retryAfterMs(headers: Record<string, unknown> | undefined): number | undefined {
  const raw = headers?.['retry-after'];
  const value = typeof raw === 'string' || typeof raw === 'number' ? Number(raw) : Number.NaN;
  return Number.isFinite(value) && value >= 0 ? value * 1000 : undefined;
}

/** Decides whether a failed call is worth another try (`attempt` counts from 1). */
export function classifyTeamsFailure(
  error: unknown,
  attempt: number,
  policy: RetryPolicy,
  random: () => number = Math.random,
): TeamsFailure {
  if (error instanceof TeamsApiError) return { retry: false, error };
  const e = (error ?? {}) as HttpErrorShape;
  const status = e.response?.status ?? e.status;
  const last = attempt >= policy.attempts;
  const backoff = () =>
    backoffDelay(attempt, { initialMs: policy.baseDelayMs, maxMs: policy.maxDelayMs }, random);
  if (status === 429) {
    const delayMs = Math.min(policy.maxDelayMs, retryAfterMs(e.response?.headers) ?? backoff());
    if (!last) return { retry: true, delayMs, reason: 'rate limited' };
    return {
      retry: false,
      error: new TeamsApiError('Teams is rate limiting Warden; try again shortly', {
        details: { statusCode: 429, transient: true },
      }),
    };
  }
  const transient = (status !== undefined && status >= 500) || (status === undefined && e.code !== undefined);
  if (transient) {
    const reason = status ? `HTTP ${status}` : `network error ${e.code}`;
    if (!last) return { retry: true, delayMs: backoff(), reason };
    return {
      retry: false,
      error: new TeamsApiError(`Teams is unavailable (${reason})`, {
        details: { statusCode: status, transient: true },
        cause: error,
      }),
    };
  }
  const message =
    (status ? EXPLAIN[status] : undefined) ?? `the Teams call failed${status ? ` (HTTP ${status})` : ''}`;
  return {
    retry: false,
    error: new TeamsApiError(message, { details: { statusCode: status }, cause: error }),
  };
}

/** Runs a Connector call under the policy; throws a `TeamsApiError` when it fails for good. */
export async function callTeams<T>(call: () => Promise<T>, policy: RetryPolicy = DEFAULT_RETRY): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (error) {
      const failure = classifyTeamsFailure(error, attempt, policy);
      if (!failure.retry) throw failure.error;
      await policy.sleep(failure.delayMs);
    }
  }
}
