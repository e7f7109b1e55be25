/**
 * Chat message references on SQL: which chat message shows a request, a held statement or a
 * person's direct conversation. The reference itself is the adapter's, opaque here.
 */
import type { ChatMessageRecord, ChatMessageStore, ChatMessageSubject } from '../store.ts';
import { type ChatMessageRow, type Db, num } from './tables.ts';

/** Longest reference kept (a Slack `channel/ts` is ~30 characters, a Teams conversation reference < 1 KiB). */
export const MAX_CHAT_REF = 2048;

function fromRow(row: ChatMessageRow): ChatMessageRecord {
  return {
    chat: row.chat,
    subject: row.subject as ChatMessageSubject,
    subjectId: row.subject_id,
    ref: row.ref,
    createdAt: num(row.created_at),
  };
}

export function createChatMessageQueries(db: Db): ChatMessageStore {
  const get = async (chat: string, subject: ChatMessageSubject, subjectId: string) => {
    const row = await db
      .selectFrom('warden_chat_messages')
      .selectAll()
      .where('chat', '=', chat)
      .where('subject', '=', subject)
      .where('subject_id', '=', subjectId)
      .executeTakeFirst();
    return row ? fromRow(row) : undefined;
  };
  return {
    async saveChatMessage(record, options = {}): Promise<ChatMessageRecord> {
      if (record.ref.length === 0 || record.ref.length > MAX_CHAT_REF) {
        throw new RangeError(`a chat message reference is 1 to ${MAX_CHAT_REF} characters`);
      }
      const row: ChatMessageRow = {
        chat: record.chat,
        subject: record.subject,
        subject_id: record.subjectId,
        ref: record.ref,
        created_at: record.createdAt,
      };
      // Two processes may post for the same subject at once: the first reference stored wins, and
      // both go on with it (a conversation reference may be replaced: it only says how to reach someone).
      await db
        .insertInto('warden_chat_messages')
        .values(row)
        .onConflict((oc) => {
          const target = oc.columns(['chat', 'subject', 'subject_id']);
          return options.replace
            ? target.doUpdateSet({ ref: row.ref, created_at: row.created_at })
            : target.doNothing();
        })
        .execute();
      return (await get(record.chat, record.subject, record.subjectId)) ?? record;
    },

    getChatMessage: get,

    async findChatMessage(chat: string, ref: string): Promise<ChatMessageRecord | undefined> {
      if (ref.length > MAX_CHAT_REF) return undefined;
      const row = await db
        .selectFrom('warden_chat_messages')
        .selectAll()
        .where('chat', '=', chat)
        .where('ref', '=', ref)
        .executeTakeFirst();
      return row ? fromRow(row) : undefined;
    },
  };
}
