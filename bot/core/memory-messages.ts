/**
 * Message references kept in memory, for a chat front end running without the broker's store (the
 * console, tests). Bounded: the oldest are forgotten first, after which a request's root message
 * is posted again instead of updated.
 */
import type { ChatMessageRecord, ChatMessageStore, ChatMessageSubject } from '../../broker/ports/chat.ts';

export class MemoryChatMessages implements ChatMessageStore {
  readonly #bySubject = new Map<string, ChatMessageRecord>();
  readonly #byRef = new Map<string, ChatMessageRecord>();
  readonly #max: number;

  /** `max`: references kept. Default 10,000. */
  constructor(max = 10_000) {
    this.#max = max;
  }

  async saveChatMessage(
    record: ChatMessageRecord,
    options: { replace?: boolean } = {},
  ): Promise<ChatMessageRecord> {
    const key = subjectKey(record.chat, record.subject, record.subjectId);
    const known = this.#bySubject.get(key);
    if (known && !options.replace) return known;
    if (known) this.#byRef.delete(refKey(known.chat, known.ref));
    this.#bySubject.delete(key);
    this.#bySubject.set(key, record);
    this.#byRef.set(refKey(record.chat, record.ref), record);
    while (this.#bySubject.size > this.#max) {
      const [oldest, old] = this.#bySubject.entries().next().value as [string, ChatMessageRecord];
      this.#bySubject.delete(oldest);
      this.#byRef.delete(refKey(old.chat, old.ref));
    }
    return record;
  }

  async getChatMessage(
    chat: string,
    subject: ChatMessageSubject,
    subjectId: string,
  ): Promise<ChatMessageRecord | undefined> {
    return this.#bySubject.get(subjectKey(chat, subject, subjectId));
  }

  async findChatMessage(chat: string, ref: string): Promise<ChatMessageRecord | undefined> {
    return this.#byRef.get(refKey(chat, ref));
  }
}

function subjectKey(chat: string, subject: string, id: string): string {
  return `${chat}\u0000${subject}\u0000${id}`;
}

function refKey(chat: string, ref: string): string {
  return `${chat}\u0000${ref}`;
}
