/**
 * TLS towards a Postgres target, the way libpq's `sslmode` reads: one `tls:` block per target
 * governs both the broker's admin connection (node `pg`) and the recording proxy's upstream
 * connections, so the two can never disagree.
 *
 * Default when `tls.mode` is not given: `verify-full` for any host that is not loopback, and
 * `disable` for loopback (127.0.0.0/8, ::1, localhost), where the bytes never leave the machine
 * and the local demo database has no certificate. `prefer` is deliberately not offered: a
 * connection that silently falls back to plaintext protects against nobody.
 */
import { isIP } from 'node:net';
import { type ConnectionOptions, checkServerIdentity, type PeerCertificate } from 'node:tls';
import type { PostgresTargetConfig } from '../../config/schema.ts';
import { resolveSecret, type Secret } from '../../config/secrets.ts';

/** How strictly the connection is protected (libpq's `sslmode` names). */
export type PgTlsMode = 'disable' | 'require' | 'verify-ca' | 'verify-full';

/** Resolved TLS settings towards one host of a target (secrets read, default mode applied). */
export interface PgTlsSettings {
  mode: PgTlsMode;
  /** PEM of the certificate authorities to trust (default: Node's bundled roots). */
  ca?: string | undefined;
  /** PEM client certificate and key, for servers that ask for one (`clientcert=verify-full`). */
  cert?: string | undefined;
  key?: Secret | undefined;
  /** Name the server certificate must carry under `verify-full` (default: the host connected to). */
  servername?: string | undefined;
}

/** True for 127.0.0.0/8, ::1 and `localhost`: connections that never leave the machine. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  return h === 'localhost' || h.endsWith('.localhost') || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

/** The mode a host gets when `tls.mode` is not set (see the module comment). */
export function selectDefaultTlsMode(host: string): PgTlsMode {
  return isLoopbackHost(host) ? 'disable' : 'verify-full';
}

/**
 * Resolves target `name`'s TLS settings for a connection to `host` (the admin host or the
 * `connect` host). The legacy `admin.ssl: true` reads as `verify-full` with the default roots.
 * @throws SecretError (`ERR_CONFIG_SECRET`) naming `targets.<name>.tls.<key>`.
 */
export function resolvePgTls(
  name: string,
  target: Pick<PostgresTargetConfig, 'tls' | 'admin'>,
  host: string,
  env: Record<string, string | undefined> = process.env,
): PgTlsSettings {
  const tls = target.tls;
  if (!tls) return { mode: target.admin.ssl ? 'verify-full' : selectDefaultTlsMode(host) };
  const path = `targets.${name}.tls`;
  const read = (key: 'ca' | 'cert' | 'key') => {
    const ref = tls[key];
    return ref ? resolveSecret(ref, `${path}.${key}`, env) : undefined;
  };
  return {
    mode: tls.mode ?? selectDefaultTlsMode(host),
    ca: read('ca')?.reveal(),
    cert: read('cert')?.reveal(),
    key: read('key'),
    servername: tls.servername,
  };
}

/**
 * `tls.connect` options for `settings` towards `host` (without the socket), or undefined under
 * `disable`. Under `verify-full` the certificate must name `servername` or `host`; under
 * `verify-ca` only its chain is checked; under `require` nothing is (encryption only).
 */
export function buildTlsConnectOptions(settings: PgTlsSettings, host: string): ConnectionOptions | undefined {
  if (settings.mode === 'disable') return undefined;
  const expected = settings.servername ?? host;
  const options: ConnectionOptions = {
    minVersion: 'TLSv1.2',
    rejectUnauthorized: settings.mode !== 'require',
    // SNI carries a DNS name only (RFC 6066 section 3).
    ...(isIP(expected) === 0 ? { servername: expected } : {}),
    ...(settings.ca ? { ca: settings.ca } : {}),
    ...(settings.cert ? { cert: settings.cert } : {}),
    ...(settings.key ? { key: settings.key.reveal() } : {}),
  };
  options.checkServerIdentity =
    settings.mode === 'verify-full'
      ? (_host: string, cert: PeerCertificate) => checkServerIdentity(expected, cert)
      : () => undefined;
  return options;
}

/** node `pg`'s `ssl` option for `settings` towards `host` (false under `disable`). */
export function buildPgSslOption(settings: PgTlsSettings, host: string): false | ConnectionOptions {
  return buildTlsConnectOptions(settings, host) ?? false;
}
