/**
 * The `chat:` section of `warden.yaml`: which chat front end runs and how it reaches Slack.
 * Secrets are references (`{env: NAME}` or `{file: /path}`), resolved only at start-up.
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
 * ```
 */
import { z } from 'zod';
import { formatConfigPath } from '../broker/config/load.ts';
import { secretRefSchema } from '../broker/config/schema.ts';
import { resolveSecret, type Secret, type SecretRef } from '../broker/config/secrets.ts';
import { BotConfigError } from './errors.ts';

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
});

export type BotConfig = z.output<typeof botConfigSchema>;
export type SlackConfig = z.output<typeof slackSchema>;

/** Validates the `chat:` section; throws `ERR_BOT_CONFIG` naming the offending key. */
export function parseBotConfig(raw: unknown): BotConfig {
  const parsed = botConfigSchema.safeParse(raw ?? {});
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const path = formatConfigPath(['chat', ...issue.path]);
  throw new BotConfigError(path, issue.message);
}

/** Slack settings with their secrets resolved. */
export interface SlackSettings {
  mode: 'http' | 'socket';
  host: string;
  port: number;
  signingSecret: Secret | undefined;
  botToken: Secret;
  appToken: Secret | undefined;
  userMapping: 'id' | 'email';
  apiUrl: string;
}

/** Resolves the Slack section's secrets; a missing one fails here, naming its config key. */
export function resolveSlackSettings(
  slack: SlackConfig,
  env: Record<string, string | undefined> = process.env,
): SlackSettings {
  const resolve = (ref: SecretRef | undefined, key: string) =>
    ref ? resolveSecret(ref, `chat.slack.${key}`, env) : undefined;
  const [host, port] = slack.listen.split(':') as [string, string];
  return {
    mode: slack.mode,
    host,
    port: Number(port),
    signingSecret: resolve(slack.signing_secret, 'signing_secret'),
    botToken: resolve(slack.bot_token, 'bot_token')!,
    appToken: resolve(slack.app_token, 'app_token'),
    userMapping: slack.user_mapping,
    apiUrl: slack.api_url,
  };
}
