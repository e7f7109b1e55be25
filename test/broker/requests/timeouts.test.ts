/** Time-driven transitions with an injected clock: reminders, pending timeouts, approvals too late. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseConfig } from '../../../broker/config/load.ts';
import { FileDirectory } from '../../../broker/directory/directory.ts';
import { type BrokerEvent, EventBus } from '../../../broker/events/events.ts';
import { createSilentLogger } from '../../../broker/log.ts';
import { Broker } from '../../../broker/requests/broker.ts';
import { openEmbeddedStore, type SqlStore } from '../../../broker/store/sql-store.ts';

describe('pending requests over time', () => {
  let dir: string;
  let store: SqlStore;
  let broker: Broker;
  let now = Date.parse('2026-11-30T09:00:00Z');
  const events: BrokerEvent[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-timeouts-'));
    store = openEmbeddedStore(join(dir, 'w.db'));
    await store.migrate();
    const config = parseConfig({
      broker: { expiring_soon: '5m' },
      targets: {
        db: {
          kind: 'postgres',
          admin: { host: 'h', database: 'd', user: 'u', password: { env: 'X' } },
          levels: { read: { grants: ['select'] } },
        },
      },
      people: [
        { id: 'alice', email: 'a@x.io', manager: 'maria' },
        { id: 'maria', email: 'm@x.io' },
      ],
      rules: [
        {
          name: 'r',
          targets: ['db'],
          duration: { default: '30m', max: '1h' },
          approvers: ['manager'],
          pending_timeout: '10m',
        },
      ],
    });
    const bus = new EventBus(() => {});
    bus.subscribe((e) => {
      events.push(e);
    });
    broker = new Broker({
      config,
      directory: new FileDirectory(config.people),
      store,
      providers: new Map(),
      events: bus,
      logger: createSilentLogger(),
      clock: () => now,
    });
  });
  after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reminds the approvers once half-way, then times out, and refuses a late approval', async () => {
    const request = await broker.request({ requester: 'alice', target: 'db', reason: 'x', source: 'cli' });
    now += 4 * 60_000;
    await broker.sweep();
    assert.equal(events.filter((e) => e.type === 'request.reminder').length, 0);
    now += 2 * 60_000;
    await broker.sweep();
    await broker.sweep();
    assert.equal(
      events.filter((e) => e.type === 'request.reminder').length,
      1,
      'one reminder, not one per sweep',
    );
    now += 5 * 60_000;
    await broker.sweep();
    const shown = await broker.show(request.id);
    assert.equal(shown.request.state, 'timed_out');
    assert.ok(events.some((e) => e.type === 'request.timed_out' && e.request.id === request.id));
    await assert.rejects(broker.approve(request.id, { id: 'maria', admin: false }), {
      code: 'ERR_STATE_CONFLICT',
      message: `cannot approve: request ${request.id} timed out waiting for approval`,
    });
  });

  it('a grant whose credential cannot be minted fails visibly', async () => {
    const request = await broker.request({ requester: 'alice', target: 'db', reason: 'x', source: 'cli' });
    const failed = await broker.approve(request.id, { id: 'maria', admin: false });
    assert.equal(failed.state, 'failed');
    assert.match(failed.error!, /no credential provider for target db/);
    assert.ok(events.some((e) => e.type === 'grant.failed' && e.request.id === request.id));
  });
});
