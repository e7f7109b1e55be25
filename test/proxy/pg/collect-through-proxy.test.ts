/**
 * Credentials without chat on a target behind the recording proxy: a collection issues a new
 * proxy password (the minted role is untouched), real psql logs in through the proxy with it, and
 * the proxy refuses the earlier one. The credential says it goes through the proxy.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PostgresCredential } from '../../../broker/providers/postgres/credential.ts';
import { type PgCluster, startPgCluster } from '../../helpers/pg-cluster.ts';
import { type ProxyFixture, startProxyFixture } from '../../helpers/pg-proxy-fixture.ts';
import { runPsql } from '../../helpers/psql.ts';

describe('collecting a proxied credential', () => {
  let cluster: PgCluster;
  let fx: ProxyFixture;
  before(async () => {
    cluster = await startPgCluster();
    fx = await startProxyFixture(cluster);
  });
  after(async () => {
    await fx?.close();
    await cluster?.stop();
  });

  it('a second collection issues a new proxy password; the earlier one is refused by the proxy', async () => {
    const first = await fx.grant('read');
    assert.equal(first.port, fx.port, 'the credential points at the proxy');
    assert.equal((await runPsql(first, 'SELECT count(*) FROM customers')).ok, true);

    const collected = await fx.broker.app.broker.collect(first.grantId, { id: 'carol', admin: false });
    const credential = collected.credential;
    assert.ok(credential instanceof PostgresCredential);
    assert.equal(credential.route, 'proxy');
    assert.equal(credential.port, fx.port);
    assert.equal(credential.user, first.user, 'the same proxy login');
    assert.equal(credential.renderJson().route, 'proxy');
    const second = { ...first, password: credential.password.reveal() };
    assert.notEqual(second.password, first.password);
    assert.equal((await runPsql(second, 'SELECT count(*) FROM customers')).ok, true);
    const stale = await runPsql(first, 'SELECT 1');
    assert.equal(stale.ok, false, 'the earlier proxy password no longer logs in');
    assert.match(stale.stderr, /password authentication failed|authentication/i);

    await assert.rejects(fx.broker.app.broker.collect(first.grantId, { id: 'maria', admin: false }), {
      code: 'ERR_CREDENTIAL_NOT_REQUESTER',
    });
    assert.equal((await runPsql(second, 'SELECT 1')).ok, true, 'a refused collection changes nothing');
  });
});
