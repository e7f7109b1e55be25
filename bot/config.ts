/**
 * The `chat:` section of `warden.yaml`: which chat front end runs and how it reaches Slack.
 * Secrets are references (`{env: NAME}` or `{file: /path}`), resolved only at start-up by the
 * resolver the caller passes in (the broker's), so a secret can come from anywhere it can read.
 *
 * ```yaml
 * chat:
 *   default_channel: "#access-requests"
 *   slack:
 *     mode: http                      # or socket (no public endpoint)
 *     listen: 0.0.0.0:3000            # http mode: where /slack/events is served
 *     signing_secret: { env: SLACK_SIGNING_SECRET }
 *     bot_token: { env: SLACK_BOT_TOKEN }
 *     app_token: { env: SLACK_APP_TOKEN }   # socket mode
 *     user_mapping: id                # or email (users.info → people[].email)
 *     reconnect_max_delay: 1m         # longest wait between tries while Slack is unreachable
 * ```
 */
import { z } from 'zod';
import type { ResolveSecret, Revealable, SecretRef } from '../broker/ports/chat.ts';
import { parseDurationMs } from '../lib/duration.ts';
import { durationSchema, secretRefSchema } from './config-schemas.ts';
import { BotConfigError } from './errors.ts';
import { teamsSchema } from './teams/teams-config.ts';

const slackSchema = z
  .strictObject({
    /** `http`: Slack posts signed requests to `/slack/events`; `socket`: Socket Mode over a WebSocket. */
    mode: z.enum(['http', 'socket']).default('http'),
    /** HTTP mode: `host:port` to listen on. Default `127.0.0.1:3000`. */
    listen: z
      .string()
      .regex(/^[^:]+:\d{1,5}$/, { error: 'listen is "host:port"' })
      .default('127.0.0.1:3000'),
    signing_secret: secretRefSchema.optional(),
    /** The bot token (`xoxb-…`). */
    bot_token: secretRefSchema,
    /** Socket Mode app-level token (`xapp-…`). */
    app_token: secretRefSchema.optional(),
    /** How a Slack user becomes a Warden person: by `people[].slack` id, or by e-mail (users.info). */
    user_mapping: z.enum(['id', 'email']).default('id'),
    /** Web API base URL; only changed for tests or an egress proxy. */
    api_url: z.url().default('https://slack.com/api/'),
    /** Longest wait between tries while Slack is unreachable (the first is 1 s, doubling). Default 1m. */
    reconnect_max_delay: durationSchema.default('1m'),
  })
  .superRefine((slack, ctx) => {
    if (slack.mode === 'http' && !slack.signing_secret) {
      ctx.addIssue({
        code: 'custom',
        path: ['signing_secret'],
        message: 'HTTP mode needs signing_secret to check that requests come from Slack',
      });
    }
    if (slack.mode === 'socket' && !slack.app_token) {
      ctx.addIssue({ code: 'custom', path: ['app_token'], message: 'Socket Mode needs an app-level token' });
    }
  });

/** The `chat:` section. */
export const botConfigSchema = z.strictObject({
  /** Where requests are posted when neither their rule nor their target names an approval channel. */
  default_channel: z.string().min(1).default('#access-requests'),
  slack: slackSchema.optional(),
  /** Microsoft Teams (`bot/teams/`; reference in docs/teams.md). */
  teams: teamsSchema.optional(),
});

export type BotConfig = z.output<typeof botConfigSchema>;
export type SlackConfig = z.output<typeof slackSchema>;
export {
  resolveTeamsSettings,
  type TeamsConfig,
  type TeamsSettings,
} from './teams/teams-config.ts';

/** `chat.slack.listen`, `people[2]`: a config path as the rest of Warden prints it. */
function formatPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>(
    (out, key) => (typeof key === 'number' ? `${out}[${key}]` : out ? `${out}.${String(key)}` : String(key)),
    '',
  );
}

/** Validates the `chat:` section; throws `ERR_BOT_CONFIG` naming the offending key. */
export function parseBotConfig(raw: unknown): BotConfig {
  const parsed = botConfigSchema.safeParse(raw ?? {});
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  throw new BotConfigError(formatPath(['chat', ...issue.path]), issue.message);
}

/** Slack settings with their secrets resolved. */
export interface SlackSettings {
  mode: 'http' | 'socket';
  host: string;
  port: number;
  signingSecret: Revealable | undefined;
  botToken: Revealable;
  appToken: Revealable | undefined;
  userMapping: 'id' | 'email';
  apiUrl: string;
  /** Longest wait between tries while Slack is unreachable, in ms. Default 60,000. */
  reconnectMaxDelayMs?: number;
}

/** Resolves the Slack section's secrets; a missing one fails here, naming its config key. */
export async function resolveSlackSettings(
  slack: SlackConfig,
  resolve: ResolveSecret,
): Promise<SlackSettings> {
  const secret = async (ref: SecretRef | undefined, key: string) =>
    ref ? await resolve(ref, `chat.slack.${key}`) : undefined;
  const [host, port] = slack.listen.split(':') as [string, string];
  return {
    mode: slack.mode,
    host,
    port: Number(port),
    signingSecret: await secret(slack.signing_secret, 'signing_secret'),
    botToken: (await secret(slack.bot_token, 'bot_token'))!,
    appToken: await secret(slack.app_token, 'app_token'),
    userMapping: slack.user_mapping,
    apiUrl: slack.api_url,
    reconnectMaxDelayMs: parseDurationMs(slack.reconnect_max_delay),
  };
}
