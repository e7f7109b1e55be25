/**
 * Issue 13, "CI's route answer tells the truth": `credential-route.ts` said the proxy did not
 * exist and answered `route: direct, recorded: false` for CI sessions that went through it. Here a
 * CI job's target sits behind the recording proxy: the answer says `proxy` and `recorded`, its URI
 * points at the proxy, real psql runs through it, and the proxy records the session.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CiExchange } from '../../../broker/ci/exchange.ts';
import { createLogger } from '../../../broker/log.ts';
import { waitFor } from '../../helpers/broker-fixture.ts';
import { type OidcIssuer, startOidcIssuer } from '../../helpers/oidc-issuer.ts';
import { type PgCluster, startPgCluster } from '../../helpers/pg-cluster.ts';
import { type ProxyFixture, startProxyFixture } from '../../helpers/pg-proxy-fixture.ts';
import { runPsql } from '../../helpers/psql.ts';

const AUDIENCE = 'https://warden.example.com';

describe('CI route through the recording proxy', () => {
  let cluster: PgCluster;
  let issuer: OidcIssuer;
  let fx: ProxyFixture;
  let exchange: CiExchange;
  before(async () => {
    cluster = await startPgCluster();
    issuer = await startOidcIssuer({ audience: AUDIENCE });
    fx = await startProxyFixture(
      cluster,
      {},
      {},
      {},
      {
        ci: {
          issuers: [{ name: 'github', issuer: issuer.url, audience: AUDIENCE, kind: 'github' }],
          rules: [
            {
              name: 'nightly-report',
              issuer: 'github',
              match: { repository: 'octo-org/reports' },
              target: 'app-db',
              level: 'read',
              max_duration: '15m',
            },
          ],
        },
      },
    );
    exchange = new CiExchange({
      config: fx.broker.config.ci!,
      broker: fx.broker.app.broker,
      store: fx.broker.store,
      logger: createLogger({ level: 'debug', destination: fx.broker.logs }),
    });
  });
  after(async () => {
    exchange?.close();
    await fx?.close();
    await issuer?.close();
    await cluster?.stop();
  });

  it('answers route proxy, recorded true, and the session goes through the proxy', async () => {
    const outcome = await exchange.exchange({
      authorization: `Bearer ${await issuer.issue()}`,
      body: { target: 'app-db', level: 'read', ttl: '5m' },
    });
    assert.equal(outcome.status, 'granted');
    if (outcome.status !== 'granted') return;
    const c = outcome.connection;
    assert.equal(c.route, 'proxy');
    assert.equal(c.recorded, true);
    assert.equal(c.port, fx.port, 'the URI points at the proxy');
    const ran = await runPsql(c, 'SELECT count(*) FROM customers');
    assert.equal(ran.ok, true, ran.stderr);
    const sessions = await waitFor(
      async () => {
        const list = await fx.broker.store.listSessions({ limit: 100 });
        return list.some((s) => s.grantId === outcome.requestId) ? list : undefined;
      },
      10_000,
      'the recorded session',
    );
    assert.ok(sessions?.some((s) => s.grantId === outcome.requestId));
    const granted = (await fx.broker.store.readAudit({ limit: 10_000 })).find(
      (e) => e.action === 'ci.exchange.granted' && e.subject === outcome.requestId,
    );
    assert.equal(granted?.data.route, 'proxy');
    assert.equal(granted?.data.recorded, true);
  });
});
