/** The credential hand-off for proxied targets: what the requester gets, what the proxy gets. */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../../broker/config/load.ts';
import { Secret } from '../../broker/config/secrets.ts';
import { FileDirectory } from '../../broker/directory/directory.ts';
import { EventBus } from '../../broker/events/events.ts';
import type { AccessRequest, CredentialRecord } from '../../broker/model.ts';
import type { GrantChange } from '../../broker/ports/proxy.ts';
import { PostgresCredential } from '../../broker/providers/postgres/credential.ts';
import type { CredentialProvider } from '../../broker/providers/provider.ts';
import { ProxyAuthority, type ProxyVerifierStore } from '../../broker/proxy-authority.ts';
import { openEmbeddedStore } from '../../broker/store/sql-store.ts';
import { createScramVerifier, parseScramVerifier } from '../../proxy/pg/auth/scram.ts';

const config = parseConfig(
  {
    targets: {
      db: {
        kind: 'postgres',
        admin: { host: 'db.internal', port: 5432, database: 'app', user: 'admin', password: { env: 'X' } },
        levels: { read: { grants: ['select'] } },
        proxy: { listen: '0.0.0.0:6432', public: 'warden.example.com:6432', allow_plaintext: true },
      },
    },
    people: [{ id: 'carol', email: 'carol@example.com', groups: ['oncall'] }],
  },
  'test',
);
const dbTarget = config.targets.db!;
if (dbTarget.kind !== 'postgres') throw new Error('db is a postgres target');

const fakeProvider: CredentialProvider = {
  name: 'postgres',
  async mint(grant, expiresAt) {
    return {
      handle: `warden_${grant.id}`,
      credential: new PostgresCredential({
        host: 'db.internal',
        port: 5432,
        database: 'app',
        user: `warden_${grant.id}`,
        password: new Secret('upstream-secret'),
        expiresAt,
      }),
    };
  },
  extend: async () => {},
  revoke: async () => ({ failures: new Map(), details: new Map() }),
  listManaged: async () => [],
  removeOrphan: async () => {},
  check: async () => {},
  close: async () => {},
};

function grant(id: string, state: AccessRequest['state'] = 'active'): AccessRequest {
  return { id, requester: 'carol', target: 'db', level: 'read', state, expiresAt: 10_000 } as AccessRequest;
}

describe('ProxyAuthority', () => {
  it('issues proxy details and a proxy password; the proxy alone gets the minted credential', async () => {
    const authority = new ProxyAuthority({ directory: new FileDirectory(config.people), clock: () => 0 });
    const provider = authority.wrapProvider('db', dbTarget, fakeProvider);
    const { credential } = await provider.mint(grant('r1'), 10_000);
    if (!(credential instanceof PostgresCredential)) throw new Error('a postgres credential');
    assert.equal(credential.host, 'warden.example.com');
    assert.equal(credential.port, 6432);
    assert.equal(credential.user, 'warden_r1');
    assert.notEqual(credential.password.reveal(), 'upstream-secret');
    const seen = await authority.lookup('db', 'warden_r1');
    assert.ok(seen);
    assert.equal(seen.upstream.password.reveal(), 'upstream-secret');
    assert.equal(seen.upstream.host, 'db.internal');
    assert.deepEqual(seen.groups, ['oncall']);
    const verifier = parseScramVerifier(seen.verifier);
    const again = createScramVerifier(credential.password.reveal(), {
      salt: verifier.salt,
      iterations: verifier.iterations,
    });
    assert.deepEqual(again.storedKey, verifier.storedKey, 'the verifier matches the issued password');
    assert.equal(await authority.lookup('other', 'warden_r1'), undefined);
    assert.equal(await authority.lookup('db', 'nobody'), undefined);
  });

  it('forgets ended grants and tells the proxies why, before and after revocation', async () => {
    const events = new EventBus(() => {});
    const stored = new Map<string, AccessRequest>();
    const authority = new ProxyAuthority({
      directory: new FileDirectory(config.people),
      clock: () => 0,
      getRequest: async (id) => stored.get(id),
    });
    authority.follow(events);
    const changes: GrantChange[] = [];
    authority.watch((c) => changes.push(c));
    const provider = authority.wrapProvider('db', dbTarget, fakeProvider);
    await provider.mint(grant('r2'), 10_000);
    stored.set('r2', {
      ...grant('r2', 'revoked'),
      endState: 'revoked',
      endedBy: 'root',
      endReason: 'incident over',
    });
    await provider.revoke([{ requestId: 'r2' } as never]);
    assert.deepEqual(changes[0], {
      type: 'ended',
      grantId: 'r2',
      reason: 'revoked',
      detail: 'the grant was revoked by root: incident over',
    });
    assert.equal(await authority.lookup('db', 'warden_r2'), undefined);

    await provider.mint(grant('r3'), 10_000);
    events.publish({
      type: 'grant.extended',
      request: { ...grant('r3'), expiresAt: 20_000 },
      by: 'carol',
      previousExpiresAt: 10_000,
    });
    assert.equal((await authority.lookup('db', 'warden_r3'))?.expiresAt, 20_000);
    events.publish({ type: 'grant.expired', request: grant('r3', 'expired') });
    assert.equal(await authority.lookup('db', 'warden_r3'), undefined);
    assert.deepEqual(
      changes.slice(1).map((c) => c.type),
      ['extended', 'ended'],
    );
  });

  it('refuses grants past their expiry even before the broker says so', async () => {
    let now = 0;
    const authority = new ProxyAuthority({ directory: new FileDirectory(config.people), clock: () => now });
    await authority.wrapProvider('db', dbTarget, fakeProvider).mint(grant('r4'), 10_000);
    now = 10_000;
    assert.equal(await authority.lookup('db', 'warden_r4'), undefined);
  });
});

describe('ProxyAuthority across a restart', () => {
  /** The fake provider plus a password reset that counts its calls (or fails for `failing`). */
  function rotatingProvider(failing = new Set<string>()) {
    const resets: string[] = [];
    const provider: CredentialProvider = {
      ...fakeProvider,
      async resetPassword({ handle }) {
        if (failing.has(handle)) throw new Error('admin connection refused');
        resets.push(handle);
        return new Secret(`fresh-${resets.length}`);
      },
    };
    return { provider, resets };
  }

  it('stores only the verifier, restores live grants with a fresh upstream password, drops ended ones', async () => {
    const store = openEmbeddedStore(':memory:');
    await store.migrate();
    try {
      const requests = new Map<string, AccessRequest>();
      // The credential's handle is not the login name: restore resets by handle, logs in by user.
      const verifiers: ProxyVerifierStore = {
        saveProxyVerifier: (record) => store.saveProxyVerifier(record),
        listProxyVerifiers: () => store.listProxyVerifiers(),
        deleteProxyVerifiers: (id) => store.deleteProxyVerifiers(id),
        listCredentials: async ({ requestId }) => [
          { requestId, handle: `role-of-${requestId}`, expiresAt: 10_000 } as CredentialRecord,
        ],
      };
      const options = {
        directory: new FileDirectory(config.people),
        clock: () => 5_000,
        getRequest: async (id: string) => requests.get(id),
        verifiers,
      };
      const first = new ProxyAuthority(options);
      const wrapped = first.wrapProvider('db', dbTarget, rotatingProvider().provider);
      const issued = new Map<string, string>();
      for (const id of ['r1', 'r2', 'r3', 'r4']) {
        requests.set(id, grant(id));
        const { credential } = await wrapped.mint(grant(id), 10_000);
        if (credential instanceof PostgresCredential) issued.set(id, credential.password.reveal());
      }
      const rows = await store.listProxyVerifiers();
      assert.deepEqual(
        rows.map((r) => [r.target, r.user, r.grantId]),
        ['r1', 'r2', 'r3', 'r4'].map((id) => ['db', `warden_${id}`, id]),
      );
      const text = JSON.stringify(rows);
      assert.equal(text.includes('upstream-secret'), false, 'the minted password is never stored');
      for (const password of issued.values()) assert.equal(text.includes(password), false);

      // The process dies; r2 expired meanwhile, r3 was revoked, r4's reset fails (database down).
      requests.set('r2', { ...grant('r2'), expiresAt: 4_000 });
      requests.set('r3', grant('r3', 'revoked'));
      const second = new ProxyAuthority(options);
      const { provider, resets } = rotatingProvider(new Set(['role-of-r4']));
      second.wrapProvider('db', dbTarget, provider);
      const result = await second.restore();
      assert.deepEqual(result.restored, ['warden_r1']);
      assert.deepEqual(result.dropped.sort(), ['warden_r2', 'warden_r3']);
      assert.deepEqual(
        result.failed.map((f) => [f.user, f.error.message]),
        [['warden_r4', 'admin connection refused']],
      );
      assert.deepEqual(resets, ['role-of-r1'], 'the provider resets the credential by its handle');
      const restored = await second.lookup('db', 'warden_r1');
      assert.ok(restored);
      assert.equal(restored.upstream.password.reveal(), 'fresh-1');
      assert.equal(restored.upstream.host, 'db.internal');
      assert.equal(restored.expiresAt, 10_000);
      assert.deepEqual(restored.groups, ['oncall']);
      const verifier = parseScramVerifier(restored.verifier);
      const again = createScramVerifier(issued.get('r1')!, {
        salt: verifier.salt,
        iterations: verifier.iterations,
      });
      assert.deepEqual(again.storedKey, verifier.storedKey, 'the issued proxy password still matches');
      assert.equal(await second.lookup('db', 'warden_r4'), undefined);
      assert.deepEqual(
        (await store.listProxyVerifiers()).map((r) => r.user),
        ['warden_r1', 'warden_r4'],
        'the failed one is kept for the next start',
      );

      const events = new EventBus(() => {});
      second.follow(events);
      events.publish({ type: 'grant.expired', request: grant('r1', 'expired') });
      await waitForEmpty(store, 'warden_r1');
      assert.equal(await second.lookup('db', 'warden_r1'), undefined);
    } finally {
      await store.close();
    }
  });

  it('drops verifiers of targets that are no longer proxied, and does nothing without a store', async () => {
    const store = openEmbeddedStore(':memory:');
    await store.migrate();
    try {
      await store.saveProxyVerifier({
        target: 'gone',
        user: 'warden_x',
        grantId: 'x',
        verifier: 'v',
        createdAt: 1,
      });
      const authority = new ProxyAuthority({
        directory: new FileDirectory(config.people),
        getRequest: async () => grant('x'),
        clock: () => 0,
        verifiers: store,
      });
      assert.deepEqual(await authority.restore(), { restored: [], dropped: ['warden_x'], failed: [] });
      assert.deepEqual(await store.listProxyVerifiers(), []);
      const memoryOnly = new ProxyAuthority({ directory: new FileDirectory(config.people) });
      assert.deepEqual(await memoryOnly.restore(), { restored: [], dropped: [], failed: [] });
    } finally {
      await store.close();
    }
  });
});

async function waitForEmpty(store: { listProxyVerifiers(): Promise<{ user: string }[]> }, user: string) {
  for (let i = 0; i < 100; i++) {
    if (!(await store.listProxyVerifiers()).some((r) => r.user === user)) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.fail(`the verifier of ${user} was not deleted`);
}

describe('proxy settings in warden.yaml', () => {
  it('refuses a proxy without TLS unless plaintext is allowed, naming the path', () => {
    const target = dbTarget;
    assert.throws(
      () =>
        parseConfig(
          {
            targets: {
              db: {
                ...target,
                admin: { ...target.admin, password: { env: 'X' } },
                proxy: { listen: '127.0.0.1:6432' },
              },
            },
          },
          'test',
        ),
      (e: { code?: string; message: string }) =>
        e.code === 'ERR_CONFIG_INVALID' && /targets\.db\.proxy/.test(e.message) && /tls/.test(e.message),
    );
  });
});
