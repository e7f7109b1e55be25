import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseConfig, parseConfigText } from '../../broker/config/load.ts';
import { openEmbeddedStore } from '../../broker/store/sql-store.ts';
import { runDoctorChecks } from '../../cli/commands/doctor.ts';
import { INIT_TEMPLATE } from '../../cli/commands/init.ts';
import { main } from '../../cli/main.ts';
import type { Io } from '../../cli/output.ts';
import {
  buildTestConfig,
  createTargetDatabase,
  TARGET_ADMIN_ENV,
  TEST_ADMIN_USER,
} from '../helpers/broker-fixture.ts';
import { type OidcIssuer, startOidcIssuer } from '../helpers/oidc-issuer.ts';
import { execSql, freePort, type PgCluster, startPgCluster } from '../helpers/pg-cluster.ts';
import { SlackStandin } from '../helpers/slack-standin.ts';

describe('warden init and doctor', () => {
  let cluster: PgCluster;
  let dir: string;
  let slack: SlackStandin;
  let issuer: OidcIssuer;

  before(async () => {
    cluster = await startPgCluster();
    dir = mkdtempSync(join(tmpdir(), 'warden-doctor-'));
    slack = await SlackStandin.start({ token: 'xoxb-doctor' });
    issuer = await startOidcIssuer();
  });
  after(async () => {
    await issuer.close();
    await slack.close();
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('init writes a commented configuration that validates, and refuses to overwrite it', async () => {
    const out: string[] = [];
    const io: Io = { out: (l) => out.push(l), err: (l) => out.push(l), env: {} };
    const file = join(dir, 'warden.yaml');
    assert.equal(await main(['init', file], io), 0);
    assert.equal(readFileSync(file, 'utf8'), INIT_TEMPLATE);
    assert.ok(parseConfigText(INIT_TEMPLATE).targets['prod-db']);
    assert.equal(await main(['init', file], io), 2);
    assert.match(out.at(-1)!, /exists; pass --force/);
  });

  it('checks the store, each target, Slack and the OIDC issuers, and says how to fix what fails', async () => {
    const db = await createTargetDatabase(cluster);
    const raw = buildTestConfig(cluster, db);
    raw.broker = { store: { kind: 'embedded', path: join(dir, 'w.db') } };
    // biome-ignore lint/suspicious/noExplicitAny: the configuration is edited loosely in this test
    const good = (raw.targets as Record<string, any>)['app-db'];
    (raw.targets as Record<string, unknown>)['wrong-db'] = {
      ...good,
      admin: { ...good.admin, password: { env: 'WRONG_PW' } },
    };
    raw.chat = {
      slack: {
        mode: 'http',
        signing_secret: { env: 'SLACK_SIGNING' },
        bot_token: { env: 'SLACK_BOT' },
        api_url: slack.apiUrl,
      },
    };
    raw.ci = {
      issuers: [{ name: 'gh', issuer: issuer.url, audience: 'warden-test', kind: 'github' }],
      rules: [
        {
          name: 'r',
          issuer: 'gh',
          match: { repository: 'o/r' },
          target: 'app-db',
          level: 'read',
          max_duration: '15m',
        },
      ],
    };
    const config = parseConfig(raw);
    // doctor only reads the store: warden serve creates it.
    const created = openEmbeddedStore(join(dir, 'w.db'));
    await created.migrate();
    await created.close();
    const env = {
      [TARGET_ADMIN_ENV]: cluster.password,
      WRONG_PW: 'nope',
      SLACK_SIGNING: 's',
      SLACK_BOT: 'xoxb-doctor',
    };
    const checks = await runDoctorChecks(config, env);
    const byName = Object.fromEntries(checks.map((c) => [c.name, c]));
    assert.equal(byName['store (embedded)']!.ok, true);
    const appDb = checks.filter((c) => c.name.startsWith('target app-db:'));
    assert.deepEqual(
      appDb.map((c) => c.name),
      [
        'target app-db: admin role',
        'target app-db: level read: privileges',
        'target app-db: level write: privileges',
        'target app-db: level read: mint, login, revoke',
        'target app-db: level write: mint, login, revoke',
      ],
    );
    for (const c of appDb) assert.equal(c.ok, true, `${c.name}: ${c.detail}`);
    assert.match(byName['target app-db: admin role']!.detail, /warden has CREATEROLE, PostgreSQL 15/);
    assert.equal(byName['target wrong-db: admin role']!.ok, false);
    assert.match(byName['target wrong-db: admin role']!.detail, /password authentication failed/);
    assert.match(byName['target wrong-db: admin role']!.fix!, /targets\.wrong-db\.admin/);
    // The cycle left nothing behind.
    const left = await execSql(
      cluster,
      db,
      "SELECT rolname FROM pg_roles WHERE rolname LIKE 'warden_doctor%'",
    );
    assert.deepEqual(left[0]!.rows, []);
    assert.equal(byName['Slack auth.test']!.ok, true, byName['Slack auth.test']!.detail);
    assert.equal(byName['OIDC issuer gh']!.ok, true, byName['OIDC issuer gh']!.detail);

    const broken = await runDoctorChecks(config, { ...env, SLACK_BOT: 'xoxb-forged' });
    assert.equal(broken.find((c) => c.name === 'Slack auth.test')!.ok, false);
    issuer.setJwksMode('http-error');
    const down = await runDoctorChecks(config, env);
    assert.equal(down.find((c) => c.name === 'OIDC issuer gh')!.ok, false);
    issuer.setJwksMode('ok');
    for (const c of [...checks, ...broken, ...down]) {
      assert.equal(
        `${c.detail} ${c.fix ?? ''}`.includes(cluster.password),
        false,
        'a secret in the doctor output',
      );
    }
  });

  it('names the privilege the admin lacks, and leaves nothing behind', async () => {
    const db = await createTargetDatabase(cluster);
    await execSql(cluster, db, `CREATE TABLE secrets (x int); REVOKE ALL ON secrets FROM ${TEST_ADMIN_USER}`);
    const raw = buildTestConfig(cluster, db);
    raw.broker = { store: { kind: 'embedded', path: join(dir, 'w2.db') } };
    // biome-ignore lint/suspicious/noExplicitAny: the configuration is edited loosely in this test
    const target = (raw.targets as Record<string, any>)['app-db'];
    target.levels = { ...target.levels, vault: { grants: ['select'], tables: ['public.secrets'] } };
    const checks = await runDoctorChecks(parseConfig(raw), { [TARGET_ADMIN_ENV]: cluster.password });
    for (const level of ['read', 'vault']) {
      const step = checks.find((c) => c.name === `target app-db: level ${level}: privileges`)!;
      assert.equal(step.ok, false);
      assert.match(step.detail, /warden cannot grant SELECT on public\.secrets/);
      assert.equal(step.fix, 'GRANT SELECT ON TABLE public.secrets TO "warden" WITH GRANT OPTION');
    }
    // A schema-wide level still works without that table; a level naming it cannot be minted.
    assert.equal(checks.find((c) => c.name === 'target app-db: level read: mint, login, revoke')!.ok, true);
    const cycle = checks.find((c) => c.name === 'target app-db: level vault: mint, login, revoke')!;
    assert.equal(cycle.ok, false);
    assert.match(cycle.detail, /cannot grant SELECT on public\.secrets/);
    const left = await execSql(
      cluster,
      db,
      "SELECT rolname FROM pg_roles WHERE rolname LIKE 'warden_doctor%'",
    );
    assert.deepEqual(left[0]!.rows, []);
  });

  it('tells a network failure reaching Slack from a refused token (it used to blame the token)', async () => {
    const closed = await freePort();
    const slackConfig = (apiUrl: string) =>
      parseConfig({
        ...buildTestConfig(cluster, 'postgres'),
        broker: { store: { kind: 'embedded', path: join(dir, 'slack.db') } },
        targets: {},
        rules: [],
        chat: {
          slack: {
            mode: 'http',
            signing_secret: { env: 'SLACK_SIGNING' },
            bot_token: { env: 'SLACK_BOT' },
            api_url: apiUrl,
          },
        },
      });
    const env = { SLACK_SIGNING: 's', SLACK_BOT: 'xoxb-doctor' };
    const unreachable = (await runDoctorChecks(slackConfig(`http://127.0.0.1:${closed}/api/`), env)).find(
      (c) => c.name === 'Slack auth.test',
    )!;
    assert.equal(unreachable.ok, false);
    assert.match(
      unreachable.detail,
      /cannot reach the Slack API \(ECONNREFUSED\): a network problem, not the token/,
    );
    assert.match(unreachable.fix!, new RegExp(`reach http://127.0.0.1:${closed}/api/`));
    assert.doesNotMatch(unreachable.fix!, /bot_token/);

    const refused = (
      await runDoctorChecks(slackConfig(slack.apiUrl), { ...env, SLACK_BOT: 'xoxb-forged' })
    ).find((c) => c.name === 'Slack auth.test')!;
    assert.equal(refused.ok, false);
    assert.match(refused.detail, /Slack refused the token \(invalid_auth\)/);
    assert.match(refused.fix!, /chat\.slack\.bot_token/);
    for (const c of [unreachable, refused]) {
      for (const token of ['xoxb-doctor', 'xoxb-forged']) {
        assert.equal(`${c.detail} ${c.fix}`.includes(token), false, 'a token in the doctor output');
      }
    }
  });
});
