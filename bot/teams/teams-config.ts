/**
 * The `chat.teams:` section: how Warden reaches Microsoft Teams as a bot (an Entra app
 * registration) and how Teams users become Warden people. Reference: docs/teams.md.
 *
 * ```yaml
 * chat:
 *   teams:
 *     app_id: 11111111-2222-3333-4444-555555555555   # the Entra app (client) id
 *     app_password: { env: TEAMS_APP_PASSWORD }       # its client secret
 *     tenant_id: 66666666-7777-8888-9999-000000000000
 *     listen: 0.0.0.0:3978                            # POST /api/messages
 *     channels:                                       # approval channel names → Teams channel ids
 *       "#db-approvals": "19:abc…@thread.tacv2"
 *     user_mapping: id                                # or upn (people[].email = the user's UPN)
 *     contact: "the IT service desk (#it-help)"      # whom an unknown user is told to ask
 * ```
 */
import { z } from 'zod';
import type { ResolveSecret, Revealable } from '../../broker/ports/chat.ts';
import { secretRefSchema } from '../config-schemas.ts';

const guid = z
  .string()
  .regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, { error: 'a GUID' });

/** Endpoints of the Microsoft cloud; only changed for a sovereign cloud or a local stand-in. */
const cloudSchema = z.strictObject({
  /** Where outbound tokens come from (`<login_endpoint>/<tenant>/oauth2/v2.0/token`). */
  login_endpoint: z.url().default('https://login.microsoftonline.com'),
  /** OpenID metadata of the Bot Connector: its `jwks_uri` holds the keys inbound tokens are signed with. */
  openid_metadata_url: z.url().default('https://login.botframework.com/v1/.well-known/openidconfiguration'),
  /** The `iss` of inbound tokens. */
  token_issuer: z.string().min(1).default('https://api.botframework.com'),
  /** The scope of outbound tokens. */
  bot_scope: z.string().min(1).default('https://api.botframework.com/.default'),
});

export const teamsSchema = z.strictObject({
  /** The Entra app (client) id: the audience of inbound tokens and the bot's id. */
  app_id: guid,
  /** The app's client secret (outbound tokens). */
  app_password: secretRefSchema,
  /** The Entra tenant the app is registered in (single-tenant bots). */
  tenant_id: guid,
  /** `host:port` where `POST /api/messages` is served. Default `127.0.0.1:3978`. */
  listen: z
    .string()
    .regex(/^[^:]+:\d{1,5}$/, { error: 'listen is "host:port"' })
    .default('127.0.0.1:3978'),
  /** Approval channel names (as rules and targets name them) → Teams channel conversation ids. */
  channels: z.record(z.string().min(1), z.string().min(1)).default({}),
  /** The Bot Connector for proactive messages before any activity told Warden its own. */
  service_url: z.url().default('https://smba.trafficmanager.net/teams/'),
  /** `id`: `people[].teams` is the Entra object id; `upn`: also match the UPN against `people[].email`. */
  user_mapping: z.enum(['id', 'upn']).default('id'),
  /** Whom a Teams user Warden does not know is told to ask. */
  contact: z.string().min(1).max(200).default('a Warden admin'),
  cloud: cloudSchema.prefault({}),
  /**
   * Accept activities WITHOUT checking that the Bot Connector sent them. Local testing only:
   * anyone who reaches the endpoint can then act as anyone. Start-up says so loudly.
   */
  insecure_skip_auth: z.boolean().default(false),
});

export type TeamsConfig = z.output<typeof teamsSchema>;

/** Teams settings with their secret resolved. */
export interface TeamsSettings {
  appId: string;
  appPassword: Revealable;
  tenantId: string;
  host: string;
  port: number;
  channels: Readonly<Record<string, string>>;
  serviceUrl: string;
  userMapping: 'id' | 'upn';
  contact: string;
  loginEndpoint: string;
  openIdMetadataUrl: string;
  tokenIssuer: string;
  botScope: string;
  insecureSkipAuth: boolean;
}

/** Resolves the Teams section's secret; a missing one fails here, naming its config key. */
export async function resolveTeamsSettings(
  teams: TeamsConfig,
  resolve: ResolveSecret,
): Promise<TeamsSettings> {
  const [host, port] = teams.listen.split(':') as [string, string];
  return {
    appId: teams.app_id.toLowerCase(),
    appPassword: await resolve(teams.app_password, 'chat.teams.app_password'),
    tenantId: teams.tenant_id.toLowerCase(),
    host,
    port: Number(port),
    channels: teams.channels,
    serviceUrl: teams.service_url,
    userMapping: teams.user_mapping,
    contact: teams.contact,
    loginEndpoint: teams.cloud.login_endpoint.replace(/\/+$/, ''),
    openIdMetadataUrl: teams.cloud.openid_metadata_url,
    tokenIssuer: teams.cloud.token_issuer,
    botScope: teams.cloud.bot_scope,
    insecureSkipAuth: teams.insecure_skip_auth,
  };
}
