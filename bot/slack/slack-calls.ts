/**
 * Calls to the Slack Web API with a retry policy of our own: a 429 waits its Retry-After, a 5xx
 * or a network failure backs off, anything else (a channel the bot is not in, a bad token) fails
 * at once with a clear error. The decision is a pure function; only `callSlack` waits.
 */
import { SlackApiError } from '../errors.ts';

export interface RetryPolicy {
  /** Tries in all, first included. Default 4. */
  attempts: number;
  /** First back-off after a 5xx or network error, doubled each time. Default 250 ms. */
  baseDelayMs: number;
  /** Longest wait honoured, Retry-After included. Default 30 s. */
  maxDelayMs: number;
  sleep: (ms: number) => Promise<void>;
}

export const DEFAULT_RETRY: RetryPolicy = {
  attempts: 4,
  baseDelayMs: 250,
  maxDelayMs: 30_000,
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

/** What to do about a failed call. */
export type SlackFailure =
  | { retry: true; delayMs: number; reason: string }
  | { retry: false; error: SlackApiError };

interface WebApiErrorShape {
  code?: string;
  retryAfter?: number;
  statusCode?: number;
  data?: { error?: string };
  message?: string;
}

const EXPLAIN: Record<string, string> = {
  not_in_channel: 'the Warden app is not a member of that channel: invite it with /invite @Warden',
  channel_not_found:
    'that channel does not exist, or the Warden app cannot see it (invite it, or fix the configured channel)',
  is_archived: 'that channel is archived',
  invalid_auth: 'Slack refused the bot token (check chat.slack.bot_token)',
  not_authed: 'Slack refused the bot token (check chat.slack.bot_token)',
  missing_scope: 'the Slack app lacks a scope it needs: reinstall it from manifests/slack-app.yaml',
};

/** Decides whether a failed call is worth another try (`attempt` counts from 1). */
export function classifySlackFailure(error: unknown, attempt: number, policy: RetryPolicy): SlackFailure {
  const e = (error ?? {}) as WebApiErrorShape;
  const last = attempt >= policy.attempts;
  if (e.code === 'slack_webapi_rate_limited_error') {
    const delayMs = Math.min(policy.maxDelayMs, Math.max(0, (e.retryAfter ?? 1) * 1000));
    if (!last) return { retry: true, delayMs, reason: 'rate limited' };
    return {
      retry: false,
      error: new SlackApiError('ERR_BOT_SLACK_API', 'Slack is rate limiting Warden; try again shortly', {
        details: { retryAfter: e.retryAfter, transient: true },
      }),
    };
  }
  const transient =
    (e.code === 'slack_webapi_http_error' && (e.statusCode ?? 0) >= 500) ||
    e.code === 'slack_webapi_request_error';
  if (transient) {
    const delayMs = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
    if (!last)
      return { retry: true, delayMs, reason: e.statusCode ? `HTTP ${e.statusCode}` : 'network error' };
    return {
      retry: false,
      error: new SlackApiError(
        'ERR_BOT_SLACK_API',
        `Slack is unavailable (${e.statusCode ? `HTTP ${e.statusCode}` : 'network error'})`,
        {
          details: { statusCode: e.statusCode, transient: true },
          cause: error,
        },
      ),
    };
  }
  const slackError = e.code === 'slack_webapi_platform_error' ? e.data?.error : undefined;
  if (slackError === 'not_in_channel' || slackError === 'channel_not_found') {
    return {
      retry: false,
      error: new SlackApiError('ERR_BOT_SLACK_NOT_IN_CHANNEL', EXPLAIN[slackError]!, {
        details: { slackError },
      }),
    };
  }
  const message = slackError
    ? (EXPLAIN[slackError] ?? `Slack answered ${slackError}`)
    : 'the Slack call failed';
  return {
    retry: false,
    error: new SlackApiError('ERR_BOT_SLACK_API', message, { details: { slackError }, cause: error }),
  };
}

/** Runs a Web API call under the policy; throws a `SlackApiError` when it fails for good. */
export async function callSlack<T>(call: () => Promise<T>, policy: RetryPolicy = DEFAULT_RETRY): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (error) {
      const failure = classifySlackFailure(error, attempt, policy);
      if (!failure.retry) throw failure.error;
      await policy.sleep(failure.delayMs);
    }
  }
}
