/**
 * Issue 14, "Extensions go past the rule's maximum": two `extend 45m` calls, both approved, made a
 * rule with a 1h maximum last 105 minutes. Extensions need approval by default, and the total is
 * checked when an extension is asked for and again when it is applied.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Actor } from '../../../broker/requests/broker.ts';
import { type BrokerFixture, startBrokerFixture } from '../../helpers/broker-fixture.ts';
import { type PgCluster, startPgCluster } from '../../helpers/pg-cluster.ts';

const person = (id: string): Actor => ({ id, admin: false });

describe("extensions go past the rule's maximum", () => {
  let cluster: PgCluster;
  let fx: BrokerFixture;
  before(async () => {
    cluster = await startPgCluster();
    fx = await startBrokerFixture('embedded', cluster, {
      rules: [
        {
          name: 'app-read',
          targets: ['app-db'],
          levels: ['read'],
          duration: { default: '15m', max: '1h' },
          approvers: ['manager'],
          approvals: 1,
          // The rule says nothing about extensions: the default applies (approval needed).
        },
      ],
    });
  });
  after(async () => {
    await fx?.close();
    await cluster?.stop();
  });

  async function activeGrant() {
    const request = await fx.app.broker.request({
      requester: 'alice',
      target: 'app-db',
      level: 'read',
      duration: '15m',
      reason: 'INC-1',
      source: 'cli',
    });
    const grant = await fx.app.broker.approve(request.id, person('maria'));
    assert.equal(grant.state, 'active');
    return grant;
  }

  it('an extension needs approval by default: asking does not move the expiry', async () => {
    const grant = await activeGrant();
    const extension = await fx.app.broker.extend(grant.id, person('alice'), '30m');
    assert.equal(extension.kind, 'extension');
    assert.equal(extension.state, 'pending');
    assert.equal((await fx.store.getRequest(grant.id))!.expiresAt, grant.expiresAt);
    await assert.rejects(fx.app.broker.approve(extension.id, person('alice')), { code: 'ERR_APPROVAL_SELF' });
    const extended = await fx.app.broker.approve(extension.id, person('maria'));
    assert.equal(extended.expiresAt! - grant.expiresAt!, 30 * 60_000);
  });

  it('two 45m extensions approved one after the other: the second is refused when applied', async () => {
    const grant = await activeGrant();
    // Each fits alone (15m + 45m = 1h), so both may be asked for.
    const first = await fx.app.broker.extend(grant.id, person('alice'), '45m');
    const second = await fx.app.broker.extend(grant.id, person('alice'), '45m');
    assert.equal(first.state, 'pending');
    assert.equal(second.state, 'pending');
    const extended = await fx.app.broker.approve(first.id, person('maria'));
    assert.equal(extended.expiresAt! - extended.activatedAt!, 60 * 60_000);
    await assert.rejects(fx.app.broker.approve(second.id, person('maria')), { code: 'ERR_REQUEST_DURATION' });
    const after = (await fx.store.getRequest(grant.id))!;
    assert.equal(after.expiresAt! - after.activatedAt!, 60 * 60_000, 'the grant keeps the 1h maximum');
    assert.equal((await fx.store.getRequest(second.id))!.state, 'failed');
    const audit = await fx.store.readAudit({ afterSeq: 0, limit: 5000 });
    assert.ok(audit.some((e) => e.action === 'extension.refused' && e.subject === second.id));
  });

  it('an extension past the maximum is refused when asked for, and nothing is created', async () => {
    const grant = await activeGrant();
    const before = await fx.store.listRequests({ limit: 1000 });
    await assert.rejects(fx.app.broker.extend(grant.id, person('alice'), '50m'), {
      code: 'ERR_REQUEST_DURATION',
    });
    assert.equal((await fx.store.listRequests({ limit: 1000 })).length, before.length);
  });
});
