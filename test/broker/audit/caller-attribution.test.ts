/**
 * Issue 14, "No caller attribution": an admin token calling with `{"actor": "bob"}` was audited
 * as bob's own click. Every entry now records what made the call (the token by its configured
 * name, the chat, Warden itself) beside the person acted for; token secrets appear nowhere.
 */
import assert from 'node:assert/strict';
import { PassThrough, Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { ConsoleBot } from '../../../bot/console/console-bot.ts';
import { plainMessage } from '../../../bot/core/message.ts';
import { ApiServer } from '../../../broker/api/server.ts';
import { Secret } from '../../../broker/config/secrets.ts';
import { createSilentLogger } from '../../../broker/log.ts';
import type { AuditEntry } from '../../../broker/model.ts';
import { type BrokerFixture, startBrokerFixture } from '../../helpers/broker-fixture.ts';
import { type PgCluster, startPgCluster } from '../../helpers/pg-cluster.ts';
import { callApi } from '../../helpers/serve-process.ts';

const ADMIN_SECRET = 'admin-secret-9f2c1d7e66b04a51';
const BOT_SECRET = 'bot-secret-4b7a20c3e1f5d698';

describe('no caller attribution (fixed): every audit entry names what made the call', () => {
  let cluster: PgCluster;
  let fx: BrokerFixture;
  let api: ApiServer;
  let url: string;

  before(async () => {
    cluster = await startPgCluster();
    fx = await startBrokerFixture('embedded', cluster);
    api = new ApiServer({
      broker: fx.app.broker,
      store: fx.store,
      logger: createSilentLogger(),
      tokens: [
        { name: 'ops-admin', role: 'admin', secret: new Secret(ADMIN_SECRET) },
        { name: 'slack-bot', role: 'service', secret: new Secret(BOT_SECRET) },
      ],
    });
    const address = await api.listen(0);
    url = `http://127.0.0.1:${address.port}`;
  });
  after(async () => {
    await api?.close();
    await fx?.close();
    await cluster?.stop();
  });

  const entriesOf = async (subject: string): Promise<AuditEntry[]> =>
    (await fx.store.readAudit({})).filter((e) => e.subject === subject);

  it('an admin token acting for bob is audited as bob via the admin token, not as bob alone', async () => {
    const created = await callApi(url, BOT_SECRET, 'POST', '/v1/requests', {
      actor: 'alice',
      target: 'app-db',
      level: 'read',
      duration: '30m',
      reason: 'checking invoice 4411',
    });
    assert.equal(created.status, 200, JSON.stringify(created.body));
    const id = created.body.request.id as string;
    const approved = await callApi(url, ADMIN_SECRET, 'POST', `/v1/requests/${id}/approve`, { actor: 'bob' });
    assert.equal(approved.status, 200, JSON.stringify(approved.body));
    const entries = await entriesOf(id);
    const by = (action: string) => entries.find((e) => e.action === action)!;
    assert.deepEqual([by('request.created').actor, by('request.created').via], ['alice', 'token:slack-bot']);
    assert.deepEqual([by('approval.counted').actor, by('approval.counted').via], ['bob', 'token:ops-admin']);
    assert.deepEqual([by('request.approved').actor, by('request.approved').via], ['bob', 'token:ops-admin']);
    // Warden's own act, caused by the call, is Warden's.
    assert.deepEqual([by('grant.active').actor, by('grant.active').via], ['warden', 'warden']);
    const revoked = await callApi(url, ADMIN_SECRET, 'POST', `/v1/requests/${id}/revoke`, { reason: 'done' });
    assert.equal(revoked.status, 200, JSON.stringify(revoked.body));
    const revocation = (await entriesOf(id)).find((e) => e.action === 'grant.revoked')!;
    assert.deepEqual([revocation.actor, revocation.via], ['admin:ops-admin', 'token:ops-admin']);
  });

  it('a refused call is attributed too, and the via is part of the hashed entry', async () => {
    const refused = await callApi(url, ADMIN_SECRET, 'POST', '/v1/requests', {
      actor: 'bob',
      requester: 'bob',
      target: 'no-such-db',
      duration: '30m',
      reason: 'x',
    });
    assert.equal(refused.status, 400);
    const entry = (await fx.store.readAudit({})).findLast((e) => e.action === 'request.refused')!;
    assert.equal(entry.via, 'token:ops-admin');
    const { hashAuditEntry } = await import('../../../broker/audit/chain.ts');
    assert.notEqual(hashAuditEntry({ ...entry, via: 'token:slack-bot' }), entry.hash);
  });

  it('the chat bot in the same process is audited as the chat', async () => {
    const screen = new (class extends Writable {
      override _write(_c: Buffer, _e: BufferEncoding, done: () => void) {
        done();
      }
    })();
    const input = new PassThrough();
    const bot = new ConsoleBot({
      broker: fx.app.broker,
      input,
      output: screen,
      logger: createSilentLogger(),
      identity: 'alice',
    });
    const reply = await bot.core.handleCommand('alice', 'app-db:read 30m console check');
    const said = plainMessage(reply.message);
    assert.equal(reply.ok, true, said);
    const id = /r[a-z0-9]+/.exec(said)![0];
    const created = (await entriesOf(id)).find((e) => e.action === 'request.created')!;
    assert.deepEqual([created.actor, created.via], ['alice', 'chat:console']);
    input.end();
  });

  it('never records a token secret', async () => {
    const all = JSON.stringify(await fx.store.readAudit({}));
    assert.ok(!all.includes(ADMIN_SECRET) && !all.includes(BOT_SECRET));
  });
});
