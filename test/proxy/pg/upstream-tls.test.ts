/**
 * TLS from the proxy (and the broker's admin connection) to a real PostgreSQL 15 started with
 * `ssl=on` and a certificate made here: verify-full succeeds and the session really is encrypted
 * (pg_stat_ssl); a wrong CA, a wrong host name and a server without TLS each fail with their code,
 * and a client of the proxy gets a FATAL it can read, with nothing secret in it.
 */

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, readFileSync } from 'node:fs';
import { type AddressInfo, connect, createServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { TLSSocket } from 'node:tls';
import pg from 'pg';
import { parseConfig } from '../../../broker/config/load.ts';
import { Secret } from '../../../broker/config/secrets.ts';
import type { GrantAuthority, ProxiedGrant } from '../../../broker/ports/proxy.ts';
import { PostgresProvider } from '../../../broker/providers/postgres/postgres-provider.ts';
import { buildScramVerifier } from '../../../broker/providers/postgres/scram-verifier.ts';
import { resolvePgTls } from '../../../broker/providers/postgres/tls.ts';
import type { PgTlsSettings } from '../../../lib/pg-tls.ts';
import { compilePgProxyTarget } from '../../../proxy/pg/config.ts';
import { encodeMessages, writeCancelRequest } from '../../../proxy/pg/protocol/serializer.ts';
import { PgProxyServer } from '../../../proxy/pg/server.ts';
import { cancelUpstream, connectUpstream } from '../../../proxy/pg/upstream.ts';
import { execSql, type PgCluster, startPgCluster } from '../../helpers/pg-cluster.ts';
import {
  createTestCertificate,
  type ProxyFixture,
  removeDir,
  startProxyFixture,
} from '../../helpers/pg-proxy-fixture.ts';
import { prepareTargetAdmin, TEST_ADMIN_USER } from '../../helpers/target-admin.ts';

const SSL_SQL = 'SELECT ssl::text, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()';

/** PostgreSQL (running as `postgres`) must read the certificate and own its private key. */
function shareWithPostgres(files: { cert: string; key: string; dir: string }): void {
  chmodSync(files.dir, 0o755);
  chmodSync(files.cert, 0o644);
  chmodSync(files.key, 0o600);
  if (process.getuid?.() === 0) execFileSync('chown', ['postgres:postgres', files.key]);
}

describe('TLS from the proxy to the database', () => {
  let server: { cert: string; key: string; dir: string };
  let stranger: { cert: string; key: string; dir: string };
  let tlsCluster: PgCluster;
  let plainCluster: PgCluster;
  let fx: ProxyFixture | undefined;
  let ca: string;
  let wrongCa: string;

  before(async () => {
    server = createTestCertificate();
    stranger = createTestCertificate();
    shareWithPostgres(server);
    ca = readFileSync(server.cert, 'utf8');
    wrongCa = readFileSync(stranger.cert, 'utf8');
    tlsCluster = await startPgCluster({
      ssl: 'on',
      ssl_cert_file: `'${server.cert}'`,
      ssl_key_file: `'${server.key}'`,
    });
    plainCluster = await startPgCluster({ ssl: 'off' });
  });

  after(async () => {
    await fx?.close();
    await tlsCluster?.stop();
    await plainCluster?.stop();
    removeDir(server.dir);
    removeDir(stranger.dir);
  });

  // The superuser here only stands for any login: these check the TLS of a raw upstream
  // connection, not what Warden's admin may do (that is the broker test below).
  const login = (cluster: PgCluster, tls: PgTlsSettings) =>
    connectUpstream(
      {
        host: '127.0.0.1',
        port: cluster.port,
        database: 'postgres',
        user: cluster.user,
        password: cluster.password,
        tls,
      },
      new Map(),
      { initialQueries: [SSL_SQL] },
    );

  it('verify-full with the right CA logs in over TLS (pg_stat_ssl says so)', async () => {
    for (const tls of [
      { mode: 'verify-full', ca },
      { mode: 'verify-full', ca, servername: 'localhost' },
      { mode: 'verify-ca', ca, servername: 'db.example.com' },
      { mode: 'require' },
    ] as PgTlsSettings[]) {
      const upstream = await login(tlsCluster, tls);
      upstream.socket.destroy();
      assert.equal(upstream.results[0]!.rows[0]?.[0], 'true', `${tls.mode} is encrypted`);
      assert.match(upstream.results[0]!.rows[0]?.[1] ?? '', /^TLSv1\.[23]$/);
    }
    const plain = await login(tlsCluster, { mode: 'disable' });
    plain.socket.destroy();
    assert.equal(plain.results[0]!.rows[0]?.[0], 'false', 'disable stays in plaintext');
  });

  const failures: [string, () => PgCluster, () => PgTlsSettings, string, RegExp][] = [
    [
      'a certificate from another CA',
      () => tlsCluster,
      () => ({ mode: 'verify-full', ca: wrongCa }),
      'ERR_PGPROXY_UPSTREAM_TLS_UNTRUSTED',
      /certificate is not trusted \(DEPTH_ZERO_SELF_SIGNED_CERT\)/,
    ],
    [
      'a certificate from another CA under verify-ca',
      () => tlsCluster,
      () => ({ mode: 'verify-ca', ca: wrongCa }),
      'ERR_PGPROXY_UPSTREAM_TLS_UNTRUSTED',
      /not trusted/,
    ],
    [
      'a certificate for another host name',
      () => tlsCluster,
      () => ({ mode: 'verify-full', ca, servername: 'db.example.com' }),
      'ERR_PGPROXY_UPSTREAM_TLS_HOSTNAME',
      /not valid for the expected host name/,
    ],
    [
      'a server without TLS under require',
      () => plainCluster,
      () => ({ mode: 'require' }),
      'ERR_PGPROXY_UPSTREAM_TLS_REFUSED',
      /does not offer TLS, and tls\.mode require requires it/,
    ],
    [
      'a server without TLS under verify-full',
      () => plainCluster,
      () => ({ mode: 'verify-full', ca }),
      'ERR_PGPROXY_UPSTREAM_TLS_REFUSED',
      /does not offer TLS/,
    ],
  ];
  for (const [name, cluster, tls, code, message] of failures) {
    it(`refuses ${name} (${code}) and never falls back to plaintext`, async () => {
      await assert.rejects(login(cluster(), tls()), (error: Error & { code?: string }) => {
        assert.equal(error.code, code);
        assert.match(error.message, message);
        assert.ok(!error.message.includes(cluster().password), 'no password in the error');
        return true;
      });
    });
  }

  it('a client of the proxy gets a FATAL it can read, with nothing secret in it', async () => {
    const upstreamPassword = tlsCluster.password;
    const grant: ProxiedGrant = {
      grantId: 'r_tls',
      requester: 'carol',
      groups: [],
      level: 'read',
      target: 'app-db',
      expiresAt: Date.now() + 600_000,
      verifier: await buildScramVerifier('proxy-password'),
      upstream: {
        host: '127.0.0.1',
        port: tlsCluster.port,
        database: 'postgres',
        user: tlsCluster.user,
        password: new Secret(upstreamPassword),
        tls: { mode: 'verify-full', ca: wrongCa },
      },
    };
    const authority: GrantAuthority = {
      lookup: async (_target, user) => (user === 'warden_carol_r_tls' ? grant : undefined),
      getGrant: async () => undefined,
      watch: () => () => {},
    };
    const ended: string[] = [];
    const proxy = new PgProxyServer({
      target: compilePgProxyTarget('app-db', {
        listen: '127.0.0.1:0',
        allow_plaintext: true,
        guardrails: {},
        masking: {},
        record_rows: false,
      }),
      ports: {
        grants: authority,
        sessions: {
          insertSession: async () => {},
          appendSessionEvents: async () => {},
          appendSessionFrames: async () => {},
          endSession: async (_id, end) => {
            ended.push(end.endReason);
          },
        },
        audit: { record: async () => {} },
      },
    });
    const address = await proxy.listen(0, '127.0.0.1');
    try {
      const client = new pg.Client({
        host: '127.0.0.1',
        port: address.port,
        database: 'postgres',
        user: 'warden_carol_r_tls',
        password: 'proxy-password',
        ssl: false,
      });
      await assert.rejects(client.connect(), (error: Error & { code?: string; severity?: string }) => {
        assert.equal(error.severity, 'FATAL');
        assert.equal(error.code, '08001');
        assert.match(error.message, /the database's TLS certificate is not trusted/);
        assert.ok(!error.message.includes(upstreamPassword));
        return true;
      });
    } finally {
      await proxy.close();
    }
  });

  it('the broker admin connection follows the same tls block', async () => {
    await prepareTargetAdmin(tlsCluster, 'postgres');
    const build = async (tls: Record<string, unknown>) => {
      const config = parseConfig(
        {
          targets: {
            'app-db': {
              kind: 'postgres',
              admin: {
                host: '127.0.0.1',
                port: tlsCluster.port,
                database: 'postgres',
                user: TEST_ADMIN_USER,
                password: { env: 'PW' },
              },
              levels: { read: { grants: ['select'] } },
              tls,
            },
          },
        },
        'test',
      );
      const target = config.targets['app-db']!;
      if (target.kind !== 'postgres') throw new Error('a postgres target');
      return new PostgresProvider({
        targetName: 'app-db',
        target,
        adminPassword: new Secret(tlsCluster.password),
        tls: await resolvePgTls('app-db', target, target.admin.host, {}),
      });
    };
    const good = await build({ mode: 'verify-full', ca: { file: server.cert } });
    try {
      await good.check();
    } finally {
      await good.close();
    }
    for (const [tls, pattern] of [
      [{ mode: 'verify-full', ca: { file: stranger.cert } }, /self-signed certificate/],
      [{ mode: 'verify-full', ca: { file: server.cert }, servername: 'db.example.com' }, /db\.example\.com/],
    ] as const) {
      const bad = await build(tls);
      try {
        await assert.rejects(bad.check(), (error: Error & { code?: string }) => {
          assert.equal(error.code, 'ERR_PROVIDER_FAILED');
          assert.match(error.message, pattern);
          return true;
        });
      } finally {
        await bad.close();
      }
    }
  });

  it('a proxied grant end to end: broker and proxy both reach the database over verified TLS', async () => {
    fx = await startProxyFixture(
      tlsCluster,
      {},
      {},
      { tls: { mode: 'verify-full', ca: { file: server.cert } } },
    );
    const grant = await fx.grant('read');
    const client = new pg.Client({ ...grant, ssl: false });
    await client.connect();
    try {
      const mine = await client.query('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
      assert.deepEqual(mine.rows, [{ ssl: true }], 'the upstream session is encrypted');
      // Other sessions' details are for privileged roles only: ask as the superuser.
      const [admin] = await execSql(
        tlsCluster,
        'postgres',
        "SELECT bool_and(s.ssl) AS ssl, count(*)::int AS n FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'warden-broker'",
      );
      assert.equal(admin!.rows[0].ssl, true, 'the broker admin connections are encrypted');
      assert.ok(admin!.rows[0].n >= 1, 'the broker holds an admin connection');

      // A cancel reaches the database inside TLS too (cancelUpstream with the grant's settings).
      const keys = client as unknown as { processID: number; secretKey: number };
      const sleeping = client.query('SELECT pg_sleep(30)');
      await new Promise((r) => setTimeout(r, 300));
      const cancel = connect({ host: grant.host, port: grant.port });
      cancel.on('error', () => {});
      cancel.write(encodeMessages((w) => writeCancelRequest(w, keys.processID, keys.secretKey)));
      await assert.rejects(sleeping, (error: { code?: string }) => error.code === '57014');
      cancel.destroy();
    } finally {
      await client.end();
    }
  });
});

describe('cancelUpstream', () => {
  let server: { cert: string; key: string; dir: string };
  let stranger: { cert: string; key: string; dir: string };
  before(() => {
    server = createTestCertificate();
    stranger = createTestCertificate();
  });
  after(() => {
    removeDir(server.dir);
    removeDir(stranger.dir);
  });

  /** A stand-in server: answers the SSLRequest with `answer`, then speaks TLS if it said S. */
  async function standIn(answer: 'S' | 'N', cert: { cert: string; key: string }) {
    const received: { plain: Buffer[]; secure: Buffer[] } = { plain: [], secure: [] };
    const server = createServer((socket) => {
      socket.once('data', (request) => {
        received.plain.push(request);
        socket.write(answer);
        if (answer === 'N') {
          socket.on('data', (more) => received.plain.push(more));
          return;
        }
        const secure = new TLSSocket(socket, {
          isServer: true,
          cert: readFileSync(cert.cert),
          key: readFileSync(cert.key),
        });
        secure.on('data', (bytes) => {
          received.secure.push(bytes);
          secure.end();
        });
        secure.on('error', () => {});
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return { server, received, port: (server.address() as AddressInfo).port };
  }

  it('sends the CancelRequest inside verified TLS', async () => {
    const fake = await standIn('S', server);
    try {
      await cancelUpstream('127.0.0.1', fake.port, 4242, 77, {
        mode: 'verify-full',
        ca: readFileSync(server.cert, 'utf8'),
      });
      assert.equal(Buffer.concat(fake.received.plain).readInt32BE(4), 80877103, 'an SSLRequest first');
      const cancel = Buffer.concat(fake.received.secure);
      assert.equal(cancel.length, 16);
      assert.equal(cancel.readInt32BE(4), 80877102, 'a CancelRequest inside TLS');
      assert.deepEqual([cancel.readInt32BE(8), cancel.readInt32BE(12)], [4242, 77]);
    } finally {
      fake.server.close();
    }
  });

  for (const [name, answer, mode] of [
    ['a server without TLS', 'N', 'require'],
    ['a server whose certificate is not trusted', 'S', 'verify-full'],
  ] as const) {
    it(`sends no backend key to ${name}`, async () => {
      // The stand-in presents the stranger's certificate; only the server's CA is trusted.
      const fake = await standIn(answer, stranger);
      try {
        const settings: PgTlsSettings =
          mode === 'require' ? { mode } : { mode, ca: readFileSync(server.cert, 'utf8') };
        await cancelUpstream('127.0.0.1', fake.port, 4242, 77, settings);
        assert.equal(Buffer.concat(fake.received.plain).length, 8, 'only the SSLRequest in plaintext');
        assert.equal(fake.received.secure.length, 0);
      } finally {
        fake.server.close();
      }
    });
  }
});

describe('the answer to the proxy SSLRequest', () => {
  const answers: [string, Buffer][] = [
    ['S followed by injected bytes', Buffer.from('SR\0\0\0\x08\0\0\0\0')],
    ['an ErrorResponse', Buffer.from('E\0\0\0\x05\0')],
    ['an unknown byte', Buffer.from('X')],
  ];
  for (const [name, answer] of answers) {
    it(`refuses ${name} (ERR_PGPROXY_UPSTREAM), without sending a startup message`, async () => {
      const received: Buffer[] = [];
      const server = createServer((socket) => {
        socket.on('data', (chunk) => {
          received.push(chunk);
          if (received.length === 1) socket.write(answer);
        });
        socket.on('error', () => {});
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const { port } = server.address() as AddressInfo;
      try {
        await assert.rejects(
          connectUpstream(
            {
              host: '127.0.0.1',
              port,
              database: 'd',
              user: 'u',
              password: 'secret-pw',
              tls: { mode: 'require' },
            },
            new Map(),
          ),
          (error: Error & { code?: string }) => {
            assert.equal(error.code, 'ERR_PGPROXY_UPSTREAM');
            assert.match(error.message, /answered the TLS request with something other than S or N/);
            return true;
          },
        );
        assert.deepEqual(
          Buffer.concat(received),
          Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]),
          'SSLRequest only',
        );
      } finally {
        await new Promise((resolve) => server.close(resolve));
      }
    });
  }
});
