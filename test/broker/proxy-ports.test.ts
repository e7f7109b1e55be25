/** The broker's side of the proxy contract: what it lends the proxies, and what it never looks up. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AccessRequest } from '../../broker/model.ts';
import type {
  GrantChange,
  ProxiedGrant,
  SessionRecord,
  StatementReviewer,
} from '../../broker/ports/proxy.ts';
import { createProxyPorts, type ProxyPortsParts } from '../../broker/proxy-ports.ts';

const request = {
  id: 'rabc123',
  requester: 'alice',
  target: 'web-1',
  level: 'shell',
  state: 'revoked',
  endState: 'revoked',
  expiresAt: 5,
};

function parts() {
  const calls: unknown[][] = [];
  const listeners: ((change: GrantChange) => void)[] = [];
  const built: ProxyPortsParts = {
    authority: {
      lookup: async (target, user) => {
        calls.push(['lookup', target, user]);
        return user === 'known' ? ({ grantId: 'g' } as ProxiedGrant) : undefined;
      },
      watch: (listener) => {
        listeners.push(listener);
        return () => listeners.splice(listeners.indexOf(listener), 1);
      },
    },
    store: {
      getRequest: async (id) => {
        calls.push(['getRequest', id]);
        return id === request.id
          ? ({ ...request, reason: 'secret plans', meta: { x: 1 } } as unknown as AccessRequest)
          : undefined;
      },
      insertSession: async (session) => void calls.push(['insertSession', session.id]),
      appendSessionEvents: async (events) => void calls.push(['appendSessionEvents', events.length]),
      appendSessionFrames: async (id, seq) => void calls.push(['appendSessionFrames', id, seq]),
      endSession: async (id, end) => void calls.push(['endSession', id, end.endReason]),
    },
    broker: {
      recordAudit: async (actor, action, subject, data) => {
        calls.push(['recordAudit', actor, action, subject, data]);
        return undefined;
      },
    },
  };
  return { built, calls, listeners };
}

describe('createProxyPorts', () => {
  it('looks a grant up by id as the proxy sees it: no reason, no meta', async () => {
    const { built } = parts();
    const ports = createProxyPorts(built);
    assert.deepEqual(await ports.grants.getGrant('rabc123'), {
      grantId: 'rabc123',
      requester: 'alice',
      target: 'web-1',
      level: 'shell',
      state: 'revoked',
      endState: 'revoked',
      expiresAt: 5,
    });
    assert.equal(await ports.grants.getGrant('rnope'), undefined);
  });

  it('never asks the store about an id that cannot be a grant (a hostile key id or token)', async () => {
    const { built, calls } = parts();
    const ports = createProxyPorts(built);
    for (const id of ['', 'R1', '../etc', 'a'.repeat(65), "r1' or '1'='1", 'r1\n']) {
      assert.equal(await ports.grants.getGrant(id), undefined, JSON.stringify(id));
    }
    assert.deepEqual(calls, []);
  });

  it('passes proxy logins and grant changes through the authority', async () => {
    const { built, calls, listeners } = parts();
    const ports = createProxyPorts(built);
    assert.deepEqual(await ports.grants.lookup('app-db', 'known'), { grantId: 'g' });
    assert.equal(await ports.grants.lookup('app-db', 'stranger'), undefined);
    const seen: GrantChange[] = [];
    const stop = ports.grants.watch((change) => seen.push(change));
    listeners[0]!({ type: 'extended', grantId: 'g', expiresAt: 9 });
    stop();
    assert.equal(listeners.length, 0);
    assert.deepEqual(seen, [{ type: 'extended', grantId: 'g', expiresAt: 9 }]);
    assert.deepEqual(calls, [
      ['lookup', 'app-db', 'known'],
      ['lookup', 'app-db', 'stranger'],
    ]);
  });

  it('records sessions in the store and audit entries in the broker log', async () => {
    const { built, calls } = parts();
    const ports = createProxyPorts(built);
    await ports.sessions.insertSession({ id: 's1' } as SessionRecord);
    await ports.sessions.appendSessionEvents([]);
    await ports.sessions.appendSessionFrames('s1', 3, Buffer.from('x'));
    await ports.sessions.endSession('s1', { endedAt: 1, endReason: 'ended', summary: {} });
    await ports.audit.record('alice', 'ssh.login', 'rabc123', { target: 'web-1' });
    assert.deepEqual(calls, [
      ['insertSession', 's1'],
      ['appendSessionEvents', 0],
      ['appendSessionFrames', 's1', 3],
      ['endSession', 's1', 'ended'],
      ['recordAudit', 'alice', 'ssh.login', 'rabc123', { target: 'web-1' }],
    ]);
  });

  it('lends the reviewer only when there is one (without it, review rules refuse)', () => {
    const reviewer: StatementReviewer = {
      review: async () => ({ decision: 'expired', reviewId: '', reason: '' }),
    };
    assert.equal(createProxyPorts(parts().built).reviews, undefined);
    assert.equal(createProxyPorts({ ...parts().built, reviews: reviewer }).reviews, reviewer);
  });
});
