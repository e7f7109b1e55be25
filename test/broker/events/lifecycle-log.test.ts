/**
 * The lifecycle log (issue 14, "Logs and reload"): every request, decision, grant, extension,
 * revocation and proxied session start and end at info level, with ids, target, level, actor, via
 * and durations, and never a secret. Before, the broker logged none of them.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { runAsCaller } from '../../../broker/audit/caller.ts';
import { describeLifecycleEvent } from '../../../broker/events/lifecycle-log.ts';
import type { AccessRequest } from '../../../broker/model.ts';
import type { HasPassword } from '../../../broker/providers/credential.ts';
import { SshCredential } from '../../../broker/providers/ssh-ca/credential.ts';
import { Secret } from '../../../lib/secret.ts';
import { waitFor } from '../../helpers/broker-fixture.ts';
import { type PgCluster, startPgCluster } from '../../helpers/pg-cluster.ts';
import { type ProxyFixture, startProxyFixture } from '../../helpers/pg-proxy-fixture.ts';
import { runPsql } from '../../helpers/psql.ts';

interface Line {
  level: string;
  msg: string;
  [key: string]: unknown;
}

const STATEMENT_SECRET = 'sk_live_statement_51HxYz';
const REASON_SECRET = 'INC-77 the vault code is 8812-4471';

describe('the lifecycle log', () => {
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

  const lines = (): Line[] => fx.broker.logs.lines.map((l) => JSON.parse(l) as Line);
  const find = (msg: string, request?: string) =>
    lines().filter((l) => l.msg === msg && (request === undefined || l.request === request));

  it('the broker logged no lifecycle step: each is an info line with ids, actor, via and duration, and no secret', async () => {
    const broker = fx.broker.app.broker;
    // An auto-approved grant, and a psql session through the proxy.
    const login = await fx.grant('read', '30m');
    const psql = await runPsql(login, `SELECT '${STATEMENT_SECRET}' AS x`);
    assert.equal(psql.ok, true, psql.stderr);
    await waitFor(() => find('session ended').length > 0, 10_000, 'the session end line');

    // A request that needs approval, approved through an API token, extended and revoked.
    const asked = await runAsCaller('chat:slack', () =>
      broker.request({
        requester: 'alice',
        target: 'app-db',
        level: 'write',
        duration: '20m',
        reason: REASON_SECRET,
        source: 'chat',
      }),
    );
    await runAsCaller('token:ops', () => broker.approve(asked.id, { id: 'maria', admin: false }));
    // The fixture's rule applies extensions without approval.
    await broker.extend(asked.id, { id: 'alice', admin: false }, '10m');
    await runAsCaller('token:ops', () => broker.revoke(asked.id, { id: 'root', admin: true }, REASON_SECRET));
    await waitFor(() => find('grant credentials removed', asked.id).length > 0, 10_000, 'the end line');
    // A denied one.
    const denied = await broker.request({
      requester: 'alice',
      target: 'app-db',
      level: 'read',
      duration: '5m',
      reason: 'looking around',
      source: 'cli',
    });
    await broker.deny(denied.id, { id: 'maria', admin: false }, REASON_SECRET);

    const requested = find('access requested', asked.id)[0]!;
    assert.equal(requested.level, 'info');
    assert.equal(requested.requester, 'alice');
    assert.equal(requested.actor, 'alice');
    assert.equal(requested.via, 'chat:slack');
    assert.equal(requested.target, 'app-db');
    assert.equal(requested.access_level, 'write');
    assert.equal(requested.duration_ms, 20 * 60_000);
    assert.equal(requested.state, 'pending');
    const approval = find('approval counted', asked.id)[0]!;
    assert.deepEqual(
      [approval.actor, approval.via, approval.given, approval.needed],
      ['maria', 'token:ops', 1, 1],
    );
    const active = find('grant active', asked.id)[0]!;
    assert.equal(active.level, 'info');
    assert.equal(active.credential_kind, 'postgres');
    assert.match(String(active.login), /^warden_/);
    const extended = find('grant extended', asked.id)[0]!;
    assert.equal(extended.actor, 'alice');
    assert.equal(extended.added_ms, 10 * 60_000);
    const revoked = find('grant revoked', asked.id)[0]!;
    assert.deepEqual([revoked.actor, revoked.via], ['root', 'token:ops']);
    assert.equal(typeof revoked.lived_ms, 'number');
    assert.equal(find('grant credentials removed', asked.id)[0]!.state, 'revoked');
    const deniedLine = find('request denied', denied.id)[0]!;
    assert.deepEqual([deniedLine.actor, deniedLine.level], ['maria', 'info']);

    const started = find('session started')[0]!;
    assert.equal(started.level, 'info');
    assert.equal(started.grant, login.grantId);
    assert.equal(started.protocol, 'postgres');
    assert.equal(started.access_level, 'read');
    assert.equal(started.requester, 'carol');
    assert.equal(started.login, login.user);
    assert.equal(started.via, 'proxy:postgres');
    const ended = find('session ended')[0]!;
    assert.equal(ended.session, started.session);
    assert.equal(ended.grant, login.grantId);
    assert.equal(typeof ended.duration_ms, 'number');
    assert.equal(typeof ended.end_reason, 'string');
    assert.equal(ended.statements, 1);

    // No secret: not the grant's proxy password, not the minted role's password, not the
    // statement's text, not what people typed.
    const all = fx.broker.logs.lines.join('\n');
    const minted = fx.broker.events.flatMap((e) =>
      e.type === 'grant.active' && e.credential?.kind === 'postgres'
        ? [(e.credential as unknown as HasPassword).password.reveal()]
        : [],
    );
    assert.ok(minted.length >= 2);
    for (const secret of [login.password, ...minted, STATEMENT_SECRET, REASON_SECRET, cluster.password]) {
      assert.equal(all.includes(secret), false, `a secret in the log: ${secret.slice(0, 4)}…`);
    }
  });

  it('an SSH credential is logged by its principal only: no certificate, private key or token', () => {
    const request = {
      id: 'r1',
      kind: 'access',
      parentId: null,
      requester: 'alice',
      target: 'web-1',
      level: 'login',
      durationMs: 60_000,
      reason: 'secret reason',
      state: 'active',
      rule: 'web',
      breakGlass: false,
      source: 'cli',
      activatedAt: 1,
      expiresAt: 60_001,
      endedAt: null,
    } as unknown as AccessRequest;
    const credential = new SshCredential({
      host: '127.0.0.1',
      port: 22,
      principals: ['alice'],
      certificate: 'ssh-ed25519-cert-v01@openssh.com AAAACERTIFICATE keyid',
      privateKey: new Secret('-----BEGIN OPENSSH PRIVATE KEY-----'),
      password: new Secret('r1.mac-token'),
      keyId: 'warden:r1',
      serial: '7',
      expiresAt: 60_001,
    });
    const line = describeLifecycleEvent({ type: 'grant.active', request, credential })!;
    assert.equal(line.fields.login, 'alice');
    const text = JSON.stringify(line);
    for (const secret of ['AAAACERTIFICATE', 'PRIVATE KEY', 'r1.mac-token', 'secret reason']) {
      assert.equal(text.includes(secret), false, secret);
    }
    // A failure text loses a connection string's password.
    const failed = describeLifecycleEvent({
      type: 'grant.failed',
      request,
      error: 'connect postgres://warden:hunter2@db/app failed',
    })!;
    assert.equal(JSON.stringify(failed).includes('hunter2'), false);
  });
});
