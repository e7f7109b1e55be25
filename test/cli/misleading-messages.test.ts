/**
 * Issue 14, "Messages that mislead": `ssh login` without `--as` said only ERR_FORBIDDEN; `ci
 * exchange` against a broker without `ci:` said "invalid credentials"; a blocked statement hinted
 * "ask for a grant at a level that allows it" even when no level does. And `warden init --help`
 * printed the general help.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ApiServer } from '../../broker/api/server.ts';
import { Secret } from '../../broker/config/secrets.ts';
import { createSilentLogger } from '../../broker/log.ts';
import { COMMAND_HELP } from '../../cli/help.ts';
import { main } from '../../cli/main.ts';
import { ExitCode } from '../../cli/output.ts';
import { startPgProxy } from '../../proxy/pg/start.ts';
import { type BrokerFixture, startBrokerFixture } from '../helpers/broker-fixture.ts';
import { startOidcIssuer } from '../helpers/oidc-issuer.ts';
import { type PgCluster, startPgCluster } from '../helpers/pg-cluster.ts';
import { type ProxyFixture, startProxyFixture } from '../helpers/pg-proxy-fixture.ts';
import { runPsql } from '../helpers/psql.ts';
import { captureIo } from '../helpers/ssh-cli-fixture.ts';

describe('warden init --help prints the general help (fixed)', () => {
  it('each command prints its own usage', async () => {
    const io = captureIo({});
    assert.equal(await main(['init', '--help'], io), ExitCode.Ok);
    assert.match(io.outText(), /^usage: warden init \[FILE\] \[--force\]/);
    assert.doesNotMatch(io.outText(), /just-in-time privileged access/);
    for (const command of ['serve', 'request', 'audit', 'ci', 'ssh', 'replay', 'doctor', 'policy']) {
      const each = captureIo({});
      assert.equal(await main([command, '--help'], each), ExitCode.Ok, command);
      assert.equal(each.outText().trim(), COMMAND_HELP[command]!.trim(), command);
    }
    const topic = captureIo({});
    await main(['help', 'audit'], topic);
    assert.match(topic.outText(), /usage: warden audit verify/);
    const general = captureIo({});
    await main(['--help'], general);
    assert.match(general.outText(), /just-in-time privileged access/);
  });
});

describe('ssh login without --as says only ERR_FORBIDDEN (fixed)', () => {
  it('asks for --as before calling the broker', async () => {
    const io = captureIo({ WARDEN_TOKEN: 'some-token', WARDEN_URL: 'http://127.0.0.1:9' });
    assert.equal(await main(['ssh', 'login', 'rgrant1'], io), ExitCode.Usage);
    assert.match(
      io.errText(),
      /--as <you> \(or WARDEN_USER\); only the grant's requester gets a certificate/,
    );
  });
});

describe('ci exchange against a broker with no ci: section says "invalid credentials" (fixed)', () => {
  let cluster: PgCluster;
  let fx: BrokerFixture;
  let api: ApiServer;
  let dir: string;

  before(async () => {
    cluster = await startPgCluster();
    fx = await startBrokerFixture('embedded', cluster);
    api = new ApiServer({
      broker: fx.app.broker,
      store: fx.store,
      logger: createSilentLogger(),
      tokens: [{ name: 'admin', role: 'admin', secret: new Secret('admin-token-0123456789') }],
    });
    dir = mkdtempSync(join(tmpdir(), 'warden-no-ci-'));
  });
  after(async () => {
    await api?.close();
    await fx?.close();
    await cluster?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('says the broker has no ci: section', async () => {
    const issuer = await startOidcIssuer();
    try {
      const address = await api.listen(0);
      const tokenFile = join(dir, 'token');
      writeFileSync(tokenFile, await issuer.issue({}));
      const io = captureIo({});
      const code = await main(
        [
          'ci',
          'exchange',
          '--target',
          'app-db',
          '--level',
          'read',
          '--url',
          `http://127.0.0.1:${address.port}`,
          '--token-file',
          tokenFile,
        ],
        io,
      );
      assert.equal(code, 1);
      assert.match(
        io.errText(),
        /does not exchange CI tokens: its configuration has no ci: section \(ERR_CI_NOT_CONFIGURED\)/,
      );
      assert.doesNotMatch(io.errText(), /invalid credentials/);
    } finally {
      await issuer.close();
    }
  });
});

describe('blocked statements hint "ask for a grant at a level that allows it" even when no level does (fixed)', () => {
  let cluster: PgCluster;
  let fx: ProxyFixture;
  let proxy: Awaited<ReturnType<typeof startPgProxy>>;

  before(async () => {
    cluster = await startPgCluster();
    // TRUNCATE is allowed at the owner level only; DROP TABLE at none.
    fx = await startProxyFixture(cluster, {
      guardrails: { disable: [{ rule: 'truncate', levels: ['owner'] }] },
    });
    const target = fx.broker.config.targets['app-db']!;
    assert.ok(target.kind === 'postgres' && target.proxy);
    // The listener `warden serve` starts, from the target as configured (its levels included).
    proxy = await startPgProxy({
      settings: {
        targets: { 'app-db': { ...target, proxy: { ...target.proxy, listen: '127.0.0.1:0' } } },
        env: fx.broker.env,
      },
      ports: fx.broker.app.proxyPorts,
      clock: Date.now,
      logger: createSilentLogger(),
    });
  });
  after(async () => {
    await proxy?.close();
    await fx?.close();
    await cluster?.stop();
  });

  it('names the level that allows it, or says that none does (real psql)', async () => {
    const login = await fx.grant('read');
    const port = Number(proxy.listeners[0]!.address.split(':').at(-1));
    const truncate = await runPsql({ ...login, port }, 'TRUNCATE invoices');
    assert.equal(truncate.ok, false);
    assert.match(truncate.stderr, /rule truncate/);
    assert.match(truncate.stderr, /HINT: {2}a grant at level "owner" allows it/);
    const drop = await runPsql({ ...login, port }, 'DROP TABLE invoices');
    assert.match(drop.stderr, /rule drop-table/);
    assert.match(drop.stderr, /HINT: {2}no level of this target allows it/);
    assert.doesNotMatch(drop.stderr + truncate.stderr, /ask for a grant at a level that allows it/);
  });
});
