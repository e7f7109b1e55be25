/**
 * Chat conversation references on SQL: how to reach a chat user 1:1 (a Teams conversation id and
 * the Bot Connector serving it), by user and by Warden person.
 */
import type { ChatConversationRecord, ChatConversationStore } from '../store.ts';
import { type ChatConversationRow, type Db, num } from './tables.ts';

/** Longest id or URL kept; longer ones are refused (Teams conversation ids are ~100 characters). */
const MAX_FIELD = 1024;

function fromRow(row: ChatConversationRow): ChatConversationRecord {
  return {
    chat: row.chat,
    userId: row.user_id,
    personId: row.person_id,
    conversationId: row.conversation_id,
    serviceUrl: row.service_url,
    tenantId: row.tenant_id,
    updatedAt: num(row.updated_at),
  };
}

export function createChatConversationQueries(db: Db): ChatConversationStore {
  return {
    async saveChatConversation(record): Promise<void> {
      const fields = [
        record.userId,
        record.personId,
        record.conversationId,
        record.serviceUrl,
        record.tenantId,
      ];
      if (fields.some((f) => f.length === 0 || f.length > MAX_FIELD)) {
        throw new RangeError(`a conversation reference's fields are 1 to ${MAX_FIELD} characters`);
      }
      const row: ChatConversationRow = {
        chat: record.chat,
        user_id: record.userId,
        person_id: record.personId,
        conversation_id: record.conversationId,
        service_url: record.serviceUrl,
        tenant_id: record.tenantId,
        updated_at: record.updatedAt,
      };
      const { chat: _c, user_id: _u, ...rest } = row;
      await db
        .insertInto('warden_chat_conversations')
        .values(row)
        .onConflict((oc) => oc.columns(['chat', 'user_id']).doUpdateSet(rest))
        .execute();
    },

    async getChatConversation(chat, who): Promise<ChatConversationRecord | undefined> {
      let query = db.selectFrom('warden_chat_conversations').selectAll().where('chat', '=', chat);
      query =
        'userId' in who
          ? query.where('user_id', '=', who.userId)
          : query.where('person_id', '=', who.personId);
      const row = await query.orderBy('updated_at', 'desc').limit(1).executeTakeFirst();
      return row ? fromRow(row) : undefined;
    },
  };
}
