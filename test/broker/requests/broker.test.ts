import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import type { PostgresIssuedCredential } from '../../../broker/events/events.ts';
import type { AccessRequest } from '../../../broker/model.ts';
import { PostgresCredential } from '../../../broker/providers/postgres/credential.ts';
import type { Actor, CreateRequestInput } from '../../../broker/requests/broker.ts';
import {
  type BrokerFixture,
  loginWith,
  type StoreKind,
  startBrokerFixture,
  waitFor,
} from '../../helpers/broker-fixture.ts';
import { type PgCluster, startPgCluster } from '../../helpers/pg-cluster.ts';

const person = (id: string): Actor => ({ id, admin: false });

/** The grant's credential logs in (the fixture's helper). */
const connectAs = loginWith;

function credentialOf(fx: BrokerFixture, request: AccessRequest): PostgresIssuedCredential {
  const event = fx.events.find((e) => e.type === 'grant.active' && e.request.id === request.id);
  assert.ok(
    event && event.type === 'grant.active' && event.credential instanceof PostgresCredential,
    'grant.active event with a postgres credential',
  );
  return event.credential;
}

async function roleExists(cluster: PgCluster, name: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: cluster.url });
  await client.connect();
  try {
    const res = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [name]);
    return res.rowCount === 1;
  } finally {
    await client.end();
  }
}

async function wardenRoles(cluster: PgCluster): Promise<string[]> {
  const client = new pg.Client({ connectionString: cluster.url });
  await client.connect();
  try {
    const res = await client.query(
      "SELECT rolname FROM pg_roles WHERE starts_with(rolname, 'warden_') AND NOT starts_with(rolname, 'warden__')",
    );
    return res.rows.map((r) => r.rolname);
  } finally {
    await client.end();
  }
}

for (const kind of ['embedded', 'postgres'] as StoreKind[]) {
  describe(`broker with the ${kind} store`, () => {
    let cluster: PgCluster;
    let fx: BrokerFixture;

    before(async () => {
      cluster = await startPgCluster();
      fx = await startBrokerFixture(kind, cluster);
    });
    const ask = (requester: string, extra: Partial<CreateRequestInput>) =>
      fx.app.broker.request({ requester, target: 'app-db', source: 'cli', ...extra });
    after(async () => {
      await fx?.close();
      await cluster?.stop();
    });

    it('mints a read role after the manager approves: it reads, cannot write, and dies at expiry', async () => {
      const request = await ask('alice', { level: 'read', duration: '3s', reason: 'checking invoice 4411' });
      assert.equal(request.state, 'pending');
      assert.equal(request.decision.summary, '1 approval from maria (manager) or group dba');
      const active = await fx.app.broker.approve(request.id, person('maria'));
      assert.equal(active.state, 'active');
      const credential = credentialOf(fx, active);
      assert.match(credential.user, /^warden_alice_r/);

      const client = await connectAs(credential);
      const rows = await client.query('SELECT customer FROM invoices ORDER BY id');
      assert.deepEqual(
        rows.rows.map((r) => r.customer),
        ['acme', 'globex'],
      );
      await assert.rejects(
        client.query("INSERT INTO invoices (customer, amount) VALUES ('x', 1)"),
        /permission denied/,
      );
      await assert.rejects(client.query('CREATE ROLE sneaky LOGIN'), /permission denied/);
      await assert.rejects(client.query('SELECT pg_read_file($1)', ['/etc/passwd']), /permission denied/);

      const ended = new Promise<void>((resolve) => client.once('error', () => resolve()));
      await waitFor(
        async () => (await fx.app.broker.show(request.id)).request.state === 'expired',
        10_000,
        'expiry',
      );
      // `expired` is only written once the role is gone.
      assert.equal(await roleExists(cluster, credential.user), false);
      await ended;
      await assert.rejects(connectAs(credential), /password authentication failed|does not exist/);
      const details = await fx.app.broker.show(request.id);
      assert.equal(details.credentials[0]!.state, 'revoked');
      assert.deepEqual(
        fx.events.filter((e) => e.request.id === request.id).map((e) => e.type),
        [
          'request.created',
          'approval.counted',
          'grant.active',
          'grant.expiring',
          'grant.expired',
          'grant.ended',
        ],
      );
    });

    it('write needs one approval from each of manager and dba, by distinct people', async () => {
      const request = await ask('alice', { level: 'write', duration: '10m', reason: 'INC-2231 hotfix' });
      const afterManager = await fx.app.broker.approve(request.id, person('maria'));
      assert.equal(afterManager.state, 'pending');
      const active = await fx.app.broker.approve(request.id, person('bob'));
      assert.equal(active.state, 'active');
      const client = await connectAs(credentialOf(fx, active));
      await client.query("INSERT INTO invoices (customer, amount) VALUES ('initech', 5)");
      await assert.rejects(client.query('DROP TABLE invoices'), /must be owner/);
      await client.end();
      const revoked = await fx.app.broker.revoke(request.id, person('alice'), 'done');
      assert.equal(revoked.state, 'revoked');
      assert.deepEqual(await wardenRoles(cluster), []);
    });

    it('two approvals racing on one request yield exactly one grant', async () => {
      const request = await ask('alice', { level: 'read', duration: '10m', reason: 'race' });
      const results = await Promise.allSettled([
        fx.app.broker.approve(request.id, person('maria')),
        fx.app.broker.approve(request.id, person('bob')),
        fx.app.broker.approve(request.id, person('dana')),
      ]);
      assert.ok(results.some((r) => r.status === 'fulfilled'));
      const details = await fx.app.broker.show(request.id);
      assert.equal(details.request.state, 'active');
      assert.equal(details.credentials.length, 1);
      assert.equal(
        fx.events.filter((e) => e.type === 'grant.active' && e.request.id === request.id).length,
        1,
      );
      await fx.app.broker.revoke(request.id, person('root'));
    });

    it('refuses bad requests with a clear code and creates nothing', async () => {
      const before = (await fx.app.broker.list({ limit: 1000 })).length;
      const rolesBefore = await wardenRoles(cluster);
      const cases: [Parameters<typeof fx.app.broker.request>[0], string, RegExp][] = [
        [
          { requester: 'alice', target: 'app-dbb', duration: '30m', reason: 'x', source: 'cli' },
          'ERR_TARGET_UNKNOWN',
          /did you mean app-db/,
        ],
        [
          {
            requester: 'alice',
            target: 'app-db',
            level: 'admin',
            duration: '30m',
            reason: 'x',
            source: 'cli',
          },
          'ERR_LEVEL_UNKNOWN',
          /levels: read, write/,
        ],
        [
          { requester: 'alice', target: 'app-db', duration: '3h', reason: 'x', source: 'cli' },
          'ERR_REQUEST_DURATION',
          /2h maximum/,
        ],
        [
          { requester: 'alice', target: 'app-db', duration: '30x', reason: 'x', source: 'cli' },
          'ERR_DURATION_INVALID',
          /not a duration/,
        ],
        [
          { requester: 'alice', target: 'app-db', duration: '30m', reason: '  ', source: 'cli' },
          'ERR_REQUEST_REASON',
          /reason is required/,
        ],
        [
          {
            requester: 'alice',
            target: 'app-db',
            level: 'write',
            duration: '30m',
            reason: 'hotfix',
            source: 'cli',
          },
          'ERR_REQUEST_REASON',
          /ticket id/,
        ],
        [
          { requester: 'mallory', target: 'app-db', duration: '30m', reason: 'x', source: 'cli' },
          'ERR_USER_UNKNOWN',
          /unknown person/,
        ],
        [
          {
            requester: 'alice',
            target: 'app-db',
            duration: '30m',
            reason: 'x',
            breakGlass: true,
            source: 'cli',
          },
          'ERR_POLICY_DENIED',
          /break glass/,
        ],
      ];
      for (const [input, code, message] of cases) {
        await assert.rejects(fx.app.broker.request(input), (e: { code?: string; message: string }) => {
          assert.equal(e.code, code, `${JSON.stringify(input)}: ${e.message}`);
          assert.match(e.message, message);
          return true;
        });
      }
      assert.equal((await fx.app.broker.list({ limit: 1000 })).length, before);
      assert.deepEqual(await wardenRoles(cluster), rolesBefore);
      const audit = await fx.store.readAudit({});
      assert.ok(audit.filter((a) => a.action === 'request.refused').length >= cases.length - 1);
    });

    it('refuses self-approval, ineligible approvers, double clicks and approvals after the decision', async () => {
      const request = await ask('bob', { duration: '10m', reason: 'check' });
      const code = async (p: Promise<unknown>) => {
        try {
          await p;
          return 'ok';
        } catch (e) {
          return (e as { code: string }).code;
        }
      };
      assert.equal(await code(fx.app.broker.approve(request.id, person('bob'))), 'ERR_APPROVAL_SELF');
      assert.equal(
        await code(fx.app.broker.approve(request.id, person('carol'))),
        'ERR_APPROVAL_NOT_ELIGIBLE',
      );
      assert.equal(await code(fx.app.broker.deny(request.id, person('dana'), '')), 'ERR_REQUEST_REASON');
      const denied = await fx.app.broker.deny(request.id, person('dana'), 'use the replica');
      assert.equal(denied.state, 'denied');
      assert.equal(await code(fx.app.broker.approve(request.id, person('maria'))), 'ERR_STATE_CONFLICT');
      assert.equal(await code(fx.app.broker.approve('rnotthere00', person('maria'))), 'ERR_NOT_FOUND');
      const shown = await fx.app.broker.show(request.id);
      assert.equal(shown.credentials.length, 0);
      assert.equal(shown.request.endedBy, 'dana');
    });

    it('auto-approves on-call reads and lets sre break glass loudly', async () => {
      const auto = await ask('carol', { duration: '5m', reason: 'page 77' });
      assert.equal(auto.state, 'active');
      const glass = await ask('sam', { duration: '5m', reason: 'outage', breakGlass: true });
      assert.equal(glass.state, 'active');
      assert.ok(fx.events.some((e) => e.type === 'grant.break_glass' && e.request.id === glass.id));
      const audit = await fx.store.readAudit({});
      assert.ok(audit.some((a) => a.action === 'grant.break_glass' && a.data.loud === true));
      await fx.app.broker.revoke(auto.id, person('carol'));
      await fx.app.broker.revoke(glass.id, person('root'));
    });

    it('extends within the maximum and refuses beyond it', async () => {
      const grant = await ask('carol', { duration: '30m', reason: 'x' });
      const extended = await fx.app.broker.extend(grant.id, person('carol'), '1h');
      assert.equal(extended.expiresAt! - grant.expiresAt!, 3_600_000);
      await assert.rejects(fx.app.broker.extend(grant.id, person('carol'), '1h'), {
        code: 'ERR_REQUEST_DURATION',
      });
      await assert.rejects(fx.app.broker.extend(grant.id, person('alice'), '1m'), { code: 'ERR_FORBIDDEN' });
      await fx.app.broker.revoke(grant.id, person('root'));
    });

    it('cancels and times out pending requests', async () => {
      const request = await ask('alice', { duration: '5m', reason: 'x' });
      await assert.rejects(fx.app.broker.cancel(request.id, person('bob')), { code: 'ERR_FORBIDDEN' });
      assert.equal((await fx.app.broker.cancel(request.id, person('alice'))).state, 'cancelled');
    });

    it('never writes a minted password to the logs', async () => {
      const secrets = fx.events.flatMap((e) =>
        e.type === 'grant.active' && e.credential instanceof PostgresCredential
          ? [e.credential.password.reveal()]
          : [],
      );
      assert.ok(secrets.length > 0);
      const text = fx.logs.lines.join('\n');
      for (const secret of secrets)
        assert.equal(text.includes(secret), false, 'a minted password appeared in the logs');
      assert.equal(text.includes(cluster.password), false, 'the admin password appeared in the logs');
    });
  });
}
