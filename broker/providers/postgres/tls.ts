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

import { type PgTlsSettings, selectDefaultTlsMode } from '../../../lib/pg-tls.ts';
import type { PostgresTargetConfig } from '../../config/schema.ts';
import { resolveLocalSecret } from '../../config/secrets.ts';

/** The pure part (modes, settings, `tls.connect` options) lives in `lib/pg-tls.ts`. */
export {
  buildPgSslOption,
  buildTlsConnectOptions,
  isLoopbackHost,
  type PgTlsMode,
  type PgTlsSettings,
  selectDefaultTlsMode,
} from '../../../lib/pg-tls.ts';

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
    return ref ? resolveLocalSecret(ref, `${path}.${key}`, env) : undefined;
  };
  return {
    mode: tls.mode ?? selectDefaultTlsMode(host),
    ca: read('ca')?.reveal(),
    cert: read('cert')?.reveal(),
    key: read('key'),
    servername: tls.servername,
  };
}
