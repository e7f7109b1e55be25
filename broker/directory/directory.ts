import type { PersonConfig } from '../config/schema.ts';

/** A chat platform that identifies people by its own user ids. */
export type ChatKind = 'slack' | 'teams';

/** A person Warden knows: who they are in each chat, who manages them, which groups they are in. */
export interface Person {
  id: string;
  name?: string | undefined;
  email: string;
  /** Slack user id (`U…`/`W…`). */
  slack?: string | undefined;
  /** Microsoft Entra object id (a GUID) of the person's Teams account. */
  teams?: string | undefined;
  manager?: string | undefined;
  groups: readonly string[];
  /** Admins may revoke any grant and read the audit log. */
  admin: boolean;
}

/**
 * Looks people up. The file directory reads `people:` from warden.yaml; an identity-provider
 * directory (SCIM, Okta, Entra ID) can implement the same interface later.
 */
export interface Directory {
  get(id: string): Person | undefined;
  findByEmail(email: string): Person | undefined;
  /** The person a chat's user id belongs to: `('slack', 'U123')`, `('teams', <Entra object id>)`. */
  findByChatId(chat: ChatKind, chatId: string): Person | undefined;
  /** The person's user id in a chat, if the directory knows it. */
  chatIdOf(personId: string, chat: ChatKind): string | undefined;
  membersOf(group: string): readonly Person[];
  all(): readonly Person[];
}

/**
 * Chat ids as the directory compares them: Slack ids as written (they are upper case), Entra object
 * ids lower-cased (GUIDs are case-insensitive, and Teams sends them in either case).
 */
function normaliseChatId(chat: ChatKind, chatId: string): string {
  return chat === 'teams' ? chatId.toLowerCase() : chatId;
}

/** The directory from the `people:` section of the configuration. */
export class FileDirectory implements Directory {
  readonly #byId = new Map<string, Person>();
  readonly #byEmail = new Map<string, Person>();
  readonly #byChat: Record<ChatKind, Map<string, Person>> = { slack: new Map(), teams: new Map() };
  readonly #groups = new Map<string, Person[]>();

  constructor(people: readonly PersonConfig[]) {
    for (const p of people) {
      const person: Person = { ...p, groups: [...p.groups] };
      this.#byId.set(p.id, person);
      this.#byEmail.set(p.email.toLowerCase(), person);
      for (const chat of ['slack', 'teams'] as const) {
        const chatId = p[chat];
        if (chatId) this.#byChat[chat].set(normaliseChatId(chat, chatId), person);
      }
      for (const g of p.groups) {
        const list = this.#groups.get(g) ?? [];
        list.push(person);
        this.#groups.set(g, list);
      }
    }
  }

  get(id: string): Person | undefined {
    return this.#byId.get(id);
  }
  findByEmail(email: string): Person | undefined {
    return this.#byEmail.get(email.toLowerCase());
  }
  findByChatId(chat: ChatKind, chatId: string): Person | undefined {
    return this.#byChat[chat]?.get(normaliseChatId(chat, chatId));
  }
  chatIdOf(personId: string, chat: ChatKind): string | undefined {
    return this.#byId.get(personId)?.[chat];
  }
  membersOf(group: string): readonly Person[] {
    return this.#groups.get(group) ?? [];
  }
  all(): readonly Person[] {
    return [...this.#byId.values()];
  }
}
