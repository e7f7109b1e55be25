/**
 * Chat message references in both stores (migration 9): the first reference saved for a subject
 * wins (two processes posting at once follow one message), a direct conversation's may be
 * replaced, references are found again by the adapter's own string, and a reference longer than
 * the store keeps is refused.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MAX_CHAT_REF } from '../../../broker/store/sql/chat-messages.ts';
import type { ChatMessageRecord } from '../../../broker/store/store.ts';
import { openTestStore, type StoreKind } from '../../helpers/broker-fixture.ts';
import { type PgCluster, startPgCluster } from '../../helpers/pg-cluster.ts';

describe('chat message references in the store', () => {
  let cluster: PgCluster;
  before(async () => {
    cluster = await startPgCluster();
  });
  after(async () => {
    await cluster?.stop();
  });

  const root: ChatMessageRecord = {
    chat: 'slack',
    subject: 'request',
    subjectId: 'r0123456789',
    ref: 'CREQUESTS:1700000001.000100',
    createdAt: 1,
  };

  for (const kind of ['embedded', 'postgres'] as StoreKind[]) {
    it(`${kind}: keeps the first reference, finds it both ways, replaces only when asked`, async () => {
      const { store, cleanup } = await openTestStore(kind, cluster);
      try {
        assert.deepEqual(await store.saveChatMessage(root), root);
        const second = { ...root, ref: 'CREQUESTS:1700000002.000100', createdAt: 2 };
        assert.deepEqual(await store.saveChatMessage(second), root, 'the first one stays');
        assert.deepEqual(await store.getChatMessage('slack', 'request', root.subjectId), root);
        assert.deepEqual(await store.findChatMessage('slack', root.ref), root);
        assert.equal(await store.findChatMessage('slack', second.ref), undefined);
        assert.equal(await store.findChatMessage('teams', root.ref), undefined, 'per chat');
        assert.equal(await store.getChatMessage('slack', 'review', root.subjectId), undefined, 'per subject');

        const teams = { ...root, chat: 'teams', ref: '19:abc@thread.tacv2;messageid=1700' };
        assert.deepEqual(await store.saveChatMessage(teams), teams, 'another chat, the same request');

        const dm = {
          chat: 'slack',
          subject: 'direct' as const,
          subjectId: 'UALICE',
          ref: 'D1',
          createdAt: 3,
        };
        await store.saveChatMessage(dm);
        const moved = { ...dm, ref: 'D2', createdAt: 4 };
        assert.deepEqual(await store.saveChatMessage(moved, { replace: true }), moved);
        assert.equal(await store.findChatMessage('slack', 'D1'), undefined);

        await assert.rejects(
          store.saveChatMessage({ ...root, subjectId: 'r1', ref: 'x'.repeat(MAX_CHAT_REF + 1) }),
          RangeError,
        );
        await assert.rejects(store.saveChatMessage({ ...root, subjectId: 'r1', ref: '' }), RangeError);
        assert.equal(await store.findChatMessage('slack', 'x'.repeat(MAX_CHAT_REF + 1)), undefined);
      } finally {
        await store.close();
        cleanup();
      }
    });
  }
});
