/**
 * How a CI job reaches its database: directly, or through Warden's recording proxy when its target
 * sits behind one. The answer follows the credential the provider issued, never a guess.
 */
import type { IssuedCredential } from '../providers/credential.ts';
import { PostgresCredential } from '../providers/postgres/credential.ts';

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
 * The connection a job receives for its credential, and where its sessions go. The route is the
 * credential's own: a target behind Warden's recording proxy issues the proxy's address and a proxy
 * password (see `proxy-authority.ts`), so `route: proxy, recorded: true` is said exactly when the
 * session goes through the proxy. CI exchanges mint PostgreSQL credentials only.
 */
export function routeCiCredential(credential: IssuedCredential): CiConnection {
  if (!(credential instanceof PostgresCredential)) {
    throw new Error('CI exchanges mint PostgreSQL credentials only');
  }
  const { host, port, database, user } = credential;
  const password = credential.password.reveal();
  return {
    uri: buildPostgresUri({ host, port, database, user, password }),
    host,
    port,
    database,
    user,
    password,
    expiresAt: credential.expiresAt,
    route: credential.route,
    recorded: credential.route === 'proxy',
  };
}
