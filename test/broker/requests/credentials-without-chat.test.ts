/**
 * Issue 14, "Credentials without chat": a request approved without chat must be collectable by its
 * requester alone. Each collection issues a fresh password (the earlier one stops logging in) and is
 * audited; anyone else is refused and nothing changes. Real PostgreSQL, the README's CREATEROLE admin.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { PostgresCredential } from '../../../broker/providers/postgres/credential.ts';
import type { Actor } from '../../../broker/requests/broker.ts';
import { type BrokerFixture, startBrokerFixture } from '../../helpers/broker-fixture.ts';
import { type PgCluster, startPgCluster } from '../../helpers/pg-cluster.ts';

const person = (id: string): Actor => ({ id, admin: false });

async function logsIn(
  credential: PostgresCredential,
  password = credential.password.reveal(),
): Promise<boolean> {
  const client = new pg.Client({
    host: credential.host,
    port: credential.port,
    database: credential.database,
    user: credential.user,
    password,
  });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('SELECT count(*) FROM invoices');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

describe('credentials without chat', () => {
  let cluster: PgCluster;
  let fx: BrokerFixture;
  before(async () => {
    cluster = await startPgCluster();
    fx = await startBrokerFixture('embedded', cluster);
  });
  after(async () => {
    await fx?.close();
    await cluster?.stop();
  });

  it('only the requester collects; each collection is a fresh password, audited', async () => {
    const request = await fx.app.broker.request({
      requester: 'alice',
      target: 'app-db',
      level: 'read',
      reason: 'INC-7',
      source: 'api',
    });
    const grant = await fx.app.broker.approve(request.id, person('maria'));
    assert.equal(grant.state, 'active');

    const first = await fx.app.broker.collect(grant.id, person('alice'));
    assert.ok(first.credential instanceof PostgresCredential);
    assert.ok(await logsIn(first.credential), 'the collected password logs in');

    // Someone else (even the approver) is refused, audited, and the collected password still works.
    await assert.rejects(fx.app.broker.collect(grant.id, person('maria')), {
      code: 'ERR_CREDENTIAL_NOT_REQUESTER',
    });
    assert.ok(await logsIn(first.credential), 'a refused collection changes nothing');

    const second = await fx.app.broker.collect(grant.id, person('alice'));
    assert.ok(second.credential instanceof PostgresCredential);
    assert.notEqual(second.credential.password.reveal(), first.credential.password.reveal());
    assert.ok(await logsIn(second.credential));
    assert.equal(await logsIn(first.credential), false, 'the first password no longer logs in');

    const audit = (await fx.store.readAudit({ afterSeq: 0, limit: 5000 })).filter(
      (e) => e.subject === grant.id,
    );
    const collected = audit.filter((e) => e.action === 'credential.collected');
    assert.deepEqual(
      collected.map((e) => [e.actor, e.data.collection]),
      [
        ['alice', 1],
        ['alice', 2],
      ],
    );
    assert.ok(audit.some((e) => e.action === 'credential.collect_refused' && e.actor === 'maria'));
    const text = JSON.stringify(audit);
    assert.equal(text.includes(second.credential.password.reveal()), false, 'no secret in the audit log');
  });

  it('a grant that is not active yet cannot be collected', async () => {
    const request = await fx.app.broker.request({
      requester: 'alice',
      target: 'app-db',
      level: 'read',
      reason: 'INC-8',
      source: 'api',
    });
    await assert.rejects(fx.app.broker.collect(request.id, person('alice')), { code: 'ERR_STATE_CONFLICT' });
  });
});
