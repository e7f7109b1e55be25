/**
 * How a CI job reaches its database: directly, or through Warden's proxy when the rule wants the
 * session recorded. The proxy does not exist yet; {@link routeCiCredential} is the one place that
 * will point credentials at it once `warden serve` passes a proxy endpoint. Until then every
 * credential is direct and the response says `recorded: false`.
 */
import type { IssuedCredential } from '../events/events.ts';
import type { CiRuleConfig } from './config.ts';

/** Where the Postgres proxy listens for clients. */
export interface CiProxyEndpoint {
  readonly host: string;
  readonly port: number;
}

/** Connection details the job receives. `password` is in clear: only the HTTP answer holds it. */
export interface CiConnection {
  readonly uri: string;
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;
  readonly password: string;
  /** Epoch milliseconds. */
  readonly expiresAt: number;
  /** `proxy` when the session goes through (and is recorded by) Warden's proxy. */
  readonly route: 'direct' | 'proxy';
  readonly recorded: boolean;
}

/**
 * Builds `postgresql://user:password@host:port/database`, percent-encoding every part (a password
 * may hold `@`, `/` or `:`) and bracketing IPv6 hosts.
 */
export function buildPostgresUri(parts: {
  host: string;
  port: number;
  database: string;
  user: string;
  password: string;
}): string {
  const host = parts.host.includes(':') ? `[${parts.host}]` : parts.host;
  const enc = encodeURIComponent;
  return `postgresql://${enc(parts.user)}:${enc(parts.password)}@${host}:${parts.port}/${enc(parts.database)}`;
}

/**
 * Chooses the route of a minted credential: through `proxy` when the rule says `recorded` and a
 * proxy is configured, else direct to the database. The proxy authenticates the grant's user and
 * one-time password and injects the upstream credential, so only host and port change.
 */
export function routeCiCredential(
  credential: IssuedCredential,
  rule: Pick<CiRuleConfig, 'recorded'>,
  proxy: CiProxyEndpoint | undefined,
): CiConnection {
  if (credential.kind !== 'postgres') throw new Error('CI exchanges mint PostgreSQL credentials only');
  const viaProxy = rule.recorded && proxy !== undefined;
  const host = viaProxy ? proxy.host : credential.host;
  const port = viaProxy ? proxy.port : credential.port;
  const password = credential.password.reveal();
  return {
    uri: buildPostgresUri({ host, port, database: credential.database, user: credential.user, password }),
    host,
    port,
    database: credential.database,
    user: credential.user,
    password,
    expiresAt: credential.expiresAt,
    route: viaProxy ? 'proxy' : 'direct',
    recorded: viaProxy,
  };
}
