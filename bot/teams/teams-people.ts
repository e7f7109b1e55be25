/**
 * Teams users to Warden people, and back. A user is matched by Entra object id
 * (`people[].teams`); with `user_mapping: upn` a user with no configured id is matched by UPN
 * against `people[].email` (the UPN comes from the Bot Connector's member lookup, never from the
 * activity, which anyone could write). Anyone else is refused with a message naming whom to ask.
 */
import type { ChatDirectory } from '../../broker/ports/chat.ts';
import { UnknownTeamsUserError } from '../errors.ts';

/** Entra object ids are GUIDs. */
const OBJECT_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface TeamsPeopleOptions {
  directory: ChatDirectory;
  mapping: 'id' | 'upn';
  contact: string;
  /** Learnt mappings kept (oldest dropped). Default 5,000. */
  max?: number;
}

export class TeamsPeople {
  readonly #directory: ChatDirectory;
  readonly #mapping: 'id' | 'upn';
  readonly #contact: string;
  readonly #max: number;
  /** Entra object id → person, learnt by UPN. */
  readonly #personOf = new Map<string, string>();
  /** Person → Entra object id, learnt by UPN. */
  readonly #userOf = new Map<string, string>();

  constructor(options: TeamsPeopleOptions) {
    this.#directory = options.directory;
    this.#mapping = options.mapping;
    this.#contact = options.contact;
    this.#max = options.max ?? 5000;
  }

  /**
   * The Warden person behind an Entra object id. `lookUpUpn` asks the Bot Connector for the
   * user's UPN (only with `user_mapping: upn`). Throws {@link UnknownTeamsUserError}.
   */
  async toPerson(aadObjectId: unknown, lookUpUpn: () => Promise<string | undefined>): Promise<string> {
    if (typeof aadObjectId !== 'string' || !OBJECT_ID.test(aadObjectId)) {
      throw new UnknownTeamsUserError(this.#contact, String(aadObjectId ?? ''));
    }
    const id = aadObjectId.toLowerCase();
    const person = this.#directory.findByChatId('teams', id)?.id ?? this.#personOf.get(id);
    if (person) return person;
    if (this.#mapping === 'upn') {
      const upn = await lookUpUpn().catch(() => undefined);
      const found = upn ? this.#directory.findByEmail(upn) : undefined;
      // A person configured with another Teams id is not taken over by a matching UPN.
      if (found && !this.#directory.chatIdOf(found.id, 'teams')) {
        this.#learn(id, found.id);
        return found.id;
      }
    }
    throw new UnknownTeamsUserError(this.#contact, id);
  }

  /** The person's Entra object id if configured or learnt. */
  known(personId: string): string | undefined {
    return this.#directory.chatIdOf(personId, 'teams')?.toLowerCase() ?? this.#userOf.get(personId);
  }

  /** Whether Teams can reach a person (a configured or learnt id, or by UPN an e-mail). */
  reaches(personId: string): boolean {
    if (this.known(personId)) return true;
    return this.#mapping === 'upn' && Boolean(this.#directory.get(personId)?.email);
  }

  #learn(aadObjectId: string, personId: string): void {
    this.#personOf.set(aadObjectId, personId);
    this.#userOf.set(personId, aadObjectId);
    for (const map of [this.#personOf, this.#userOf]) {
      while (map.size > this.#max) map.delete(map.keys().next().value as string);
    }
  }
}
