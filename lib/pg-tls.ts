/**
 * TLS towards a Postgres server, the way libpq's `sslmode` reads: resolved settings in, `tls.connect`
 * options out. Shared by the broker's admin connection and the recording proxy's upstream
 * connections (one `tls:` block per target governs both, see `broker/providers/postgres/tls.ts`),
 * so the two can never disagree. Pure; depends on nothing of ours.
 */
import { isIP } from 'node:net';
import { type ConnectionOptions, checkServerIdentity, type PeerCertificate } from 'node:tls';
import type { Secret } from './secret.ts';

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
