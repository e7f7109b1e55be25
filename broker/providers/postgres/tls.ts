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
import { resolveSecret } from '../../config/secrets.ts';

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
 * The CA, certificate and key are secret references, resolved asynchronously.
 * @throws SecretError (`ERR_CONFIG_SECRET`) naming `targets.<name>.tls.<key>`.
 */
export async function resolvePgTls(
  name: string,
  target: Pick<PostgresTargetConfig, 'tls' | 'admin'>,
  host: string,
  env: Record<string, string | undefined> = process.env,
): Promise<PgTlsSettings> {
  const tls = target.tls;
  if (!tls) return selectTargetDefaultTls(target, host);
  const path = `targets.${name}.tls`;
  const read = (key: 'ca' | 'cert' | 'key') => {
    const ref = tls[key];
    return ref ? resolveSecret(ref, `${path}.${key}`, env) : undefined;
  };
  const [ca, cert, key] = await Promise.all([read('ca'), read('cert'), read('key')]);
  return {
    mode: tls.mode ?? selectDefaultTlsMode(host),
    ca: ca?.reveal(),
    cert: cert?.reveal(),
    key,
    servername: tls.servername,
  };
}

/**
 * The settings of a target without a `tls:` block (nothing to resolve). A target with one needs
 * {@link resolvePgTls}; asking here throws, so nobody connects without its CA by mistake.
 */
export function selectTargetDefaultTls(
  target: Pick<PostgresTargetConfig, 'tls' | 'admin'>,
  host: string,
): PgTlsSettings {
  if (target.tls) throw new Error('a target with a tls block needs its settings resolved (resolvePgTls)');
  return { mode: target.admin.ssl ? 'verify-full' : selectDefaultTlsMode(host) };
}
