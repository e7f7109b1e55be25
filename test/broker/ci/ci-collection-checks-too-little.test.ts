/**
 * Issue 14, "CI collection checks too little": a job whose token no rule allows (another workflow
 * of the same repository, same `sub`) collected the pending credential approved for another job,
 * because `collect()` compared only issuer and subject. The collecting token must fit the rule.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type CiExchangeFixture, startCiExchangeFixture } from '../../helpers/ci-exchange-fixture.ts';
import { type PgCluster, startPgCluster } from '../../helpers/pg-cluster.ts';

describe('CI collection checks too little', () => {
  let cluster: PgCluster;
  let fx: CiExchangeFixture;
  before(async () => {
    cluster = await startPgCluster();
    fx = await startCiExchangeFixture(cluster);
  });
  after(async () => {
    await fx?.close();
    await cluster?.stop();
  });

  it('another workflow of the same repository (same sub) is refused, and nothing changes', async () => {
    // The `migrations` rule: octo-org/reports in the production environment, approved by a dba.
    const opened = await fx.post(await fx.issuer.issue(), { target: 'app-db', level: 'write', ttl: '5m' });
    assert.equal(opened.status, 202, JSON.stringify(opened.json));
    const id = opened.json.pending as string;
    await fx.broker.app.broker.approve(id, { id: 'bob', admin: false });
    const rolesBefore = await fx.wardenRoles();

    const other = await fx.issuer.issue({
      workflow: 'adhoc-query',
      workflow_ref: 'octo-org/reports/.github/workflows/adhoc-query.yml@refs/heads/main',
      job_workflow_ref: 'octo-org/reports/.github/workflows/adhoc-query.yml@refs/heads/main',
      environment: 'scratch',
    });
    const stolen = await fx.poll(other, id);
    assert.equal(stolen.status, 404, JSON.stringify(stolen.json));
    assert.equal(stolen.json.error.code, 'ERR_CI_PENDING_NOT_FOUND');
    assert.equal(stolen.json.password, undefined);
    assert.deepEqual(await fx.wardenRoles(), rolesBefore, 'nothing minted');
    const request = await fx.broker.store.getRequest(id);
    assert.equal(request?.state, 'approved', 'still waiting for its own job');
    assert.equal(request?.meta.collectedAt, undefined);
    const refused = await fx.audit('ci.collect.refused');
    assert.ok(refused.some((e) => e.data.code === 'ERR_CI_PENDING_NOT_FOUND' && e.data.request === id));

    // The job the rule allows still collects it.
    const collected = await fx.poll(await fx.issuer.issue(), id);
    assert.equal(collected.status, 200, JSON.stringify(collected.json));
    assert.equal(collected.json.route, 'direct');
    assert.equal(collected.json.recorded, false, 'app-db has no proxy: the answer says so');
  });
});
