/**
 * The recording proxy as its own process for `bench/pg-proxy.ts`, so clients, pgbench and the
 * proxy do not share one event loop and the proxy's RSS can be read alone. Reads its settings
 * from WARDEN_BENCH_PROXY (JSON), grants one fixed user, records into an embedded store, and
 * prints `READY <port>` once listening.
 */
import type { GrantAuthority } from '../broker/ports/proxy.ts';
import { openEmbeddedStore } from '../broker/store/sql-store.ts';
import { Secret } from '../lib/secret.ts';
import { createScramVerifier, formatScramVerifier } from '../proxy/pg/auth/scram.ts';
import { compilePgProxyTarget, type PgProxyTargetConfig } from '../proxy/pg/config.ts';
import { PgProxyServer } from '../proxy/pg/server.ts';

interface BenchProxySettings {
  user: string;
  password: string;
  upstream: { host: string; port: number; database: string; user: string; password: string };
  proxy: PgProxyTargetConfig;
  storePath: string;
}

const settings = JSON.parse(process.env.WARDEN_BENCH_PROXY ?? '{}') as BenchProxySettings;
const store = openEmbeddedStore(settings.storePath, { backgroundCheckpoints: true });
await store.migrate();
const verifier = formatScramVerifier(createScramVerifier(settings.password));
const authority: GrantAuthority = {
  async lookup(_target, user) {
    if (user !== settings.user) return undefined;
    return {
      grantId: 'bench',
      requester: 'bench',
      groups: [],
      level: 'read',
      target: 'bench',
      expiresAt: Date.now() + 3_600_000,
      verifier,
      upstream: { ...settings.upstream, password: new Secret(settings.upstream.password) },
    };
  },
  getGrant: async () => undefined,
  watch: () => () => {},
};
const server = new PgProxyServer({
  target: compilePgProxyTarget('bench', settings.proxy, { env: process.env }),
  // The store records as in `warden serve`; audit entries go nowhere (the bench has no broker).
  ports: { grants: authority, sessions: store, audit: { record: async () => {} } },
  maxConnections: 5_000,
});
const address = await server.listen(0, '127.0.0.1');
process.stdout.write(`READY ${address.port}\n`);
process.on('SIGTERM', () => {
  void server
    .close()
    .then(() => store.close())
    .then(() => process.exit(0));
});
