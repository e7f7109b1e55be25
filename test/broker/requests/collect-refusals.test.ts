/**
 * Collections that cannot hand a credential over again are refused, audited, and change nothing:
 * a provider without `reissue` (the SSH CA: its key pair is shown once), a CI job's grant, a
 * request that does not exist. A fake provider stands in for the target.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { parseConfig } from '../../../broker/config/load.ts';
import { Secret } from '../../../broker/config/secrets.ts';
import { FileDirectory } from '../../../broker/directory/directory.ts';
import { EventBus } from '../../../broker/events/events.ts';
import { createLogger } from '../../../broker/log.ts';
import type { CredentialProvider } from '../../../broker/providers/provider.ts';
import { SshCredential } from '../../../broker/providers/ssh-ca/credential.ts';
import { Broker } from '../../../broker/requests/broker.ts';
import { openEmbeddedStore } from '../../../broker/store/sql-store.ts';

const config = parseConfig(
  {
    targets: {
      web: { kind: 'ssh', host: 'web.internal', levels: { shell: { principals: ['deploy'] } } },
    },
    ssh: { ca_key: { env: 'CA' } },
    people: [
      { id: 'alice', email: 'alice@example.com', manager: 'maria' },
      { id: 'maria', email: 'maria@example.com' },
    ],
    rules: [
      {
        name: 'web',
        targets: ['web'],
        duration: { default: '30m', max: '1h' },
        reason: { required: false },
        approvers: ['manager'],
      },
    ],
  },
  'test',
);

/** Mints certificates without `reissue`, as the SSH CA provider does. */
const onceOnly: CredentialProvider = {
  name: 'ssh-ca',
  async mint(grant, expiresAt) {
    return {
      handle: `serial:${grant.id}`,
      credential: new SshCredential({
        host: 'web.internal',
        port: 22,
        principals: ['deploy'],
        certificate: 'ssh-ed25519-cert-v01@openssh.com AAAA test',
        privateKey: new Secret('private-key'),
        password: new Secret('proxy-token'),
        keyId: grant.id,
        serial: '1',
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

describe('collect refusals', () => {
  it('refuses a credential that cannot be handed over again, and one of another person', async () => {
    const store = openEmbeddedStore(':memory:');
    await store.migrate();
    const logger = createLogger({
      level: 'silent',
      destination: new Writable({ write: (_c, _e, done) => done() }),
    });
    const broker = new Broker({
      config,
      directory: new FileDirectory(config.people),
      store,
      providers: new Map([['web', onceOnly]]),
      events: new EventBus(() => {}),
      logger,
    });
    try {
      const request = await broker.request({ requester: 'alice', target: 'web', source: 'api' });
      const grant = await broker.approve(request.id, { id: 'maria', admin: false });
      assert.equal(grant.state, 'active');
      await assert.rejects(broker.collect(grant.id, { id: 'alice', admin: false }), {
        code: 'ERR_CREDENTIAL_NOT_REISSUABLE',
        message: /warden ssh login/,
      });
      await assert.rejects(broker.collect(grant.id, { id: 'maria', admin: false }), {
        code: 'ERR_CREDENTIAL_NOT_REQUESTER',
      });
      await assert.rejects(broker.collect('rnope', { id: 'alice', admin: false }), { code: 'ERR_NOT_FOUND' });
      const after = (await store.getRequest(grant.id))!;
      assert.equal(after.state, 'active');
      assert.equal(after.version, grant.version, 'nothing changed on the grant');
      const refused = (await store.readAudit({ limit: 1000 })).filter(
        (e) => e.action === 'credential.collect_refused',
      );
      assert.deepEqual(
        refused.map((e) => [e.actor, e.data.code]),
        [
          ['alice', 'ERR_CREDENTIAL_NOT_REISSUABLE'],
          ['maria', 'ERR_CREDENTIAL_NOT_REQUESTER'],
        ],
      );
    } finally {
      await broker.stop();
      await store.close();
    }
  });
});
