/** The credential hand-off for proxied targets: what the requester gets, what the proxy gets. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../../broker/config/load.ts';
import { Secret } from '../../broker/config/secrets.ts';
import { FileDirectory } from '../../broker/directory/directory.ts';
import { EventBus } from '../../broker/events/events.ts';
import type { AccessRequest } from '../../broker/model.ts';
import type { CredentialProvider } from '../../broker/providers/provider.ts';
import { type ProxiedGrantChange, ProxyAuthority } from '../../broker/proxy-authority.ts';
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
      credential: {
        kind: 'postgres',
        host: 'db.internal',
        port: 5432,
        database: 'app',
        user: `warden_${grant.id}`,
        password: new Secret('upstream-secret'),
        expiresAt,
      },
    };
  },
  extend: async () => {},
  revoke: async () => new Map(),
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
    if (credential.kind !== 'postgres') throw new Error('a postgres credential');
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
    const changes: ProxiedGrantChange[] = [];
    authority.watch((c) => changes.push(c));
    const provider = authority.wrapProvider('db', dbTarget, fakeProvider);
    await provider.mint(grant('r2'), 10_000);
    stored.set('r2', { ...grant('r2', 'revoked'), endedBy: 'root', endReason: 'incident over' });
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
