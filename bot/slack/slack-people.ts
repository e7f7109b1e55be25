/**
 * Maps Slack users to Warden people and back: by the `slack:` id in the people list, or by e-mail
 * (users.info on the way in, users.lookupByEmail on the way out), as configured. Lookups are
 * cached, bounded.
 */

import type { ChatDirectory } from '../../broker/ports/chat.ts';
import { UnknownUserError } from '../errors.ts';

/** The two Web API lookups the mapping needs (wrapped by the adapter, with retries). */
export interface SlackUsersApi {
  /** users.info → the profile's e-mail, if Slack shares it. */
  emailOf(slackId: string): Promise<string | undefined>;
  /** users.lookupByEmail → the Slack user id. */
  idOfEmail(email: string): Promise<string | undefined>;
}

export interface SlackPeopleOptions {
  directory: ChatDirectory;
  mapping: 'id' | 'email';
  api: SlackUsersApi;
  /** Cached mappings kept (oldest dropped). Default 5,000. */
  maxCache?: number;
}

const SLACK_USER = /^[UW][A-Z0-9]{2,30}$/;

export class SlackPeople {
  readonly #directory: ChatDirectory;
  readonly #mapping: 'id' | 'email';
  readonly #api: SlackUsersApi;
  readonly #max: number;
  readonly #personOf = new Map<string, string>();
  readonly #slackOf = new Map<string, string>();

  constructor(options: SlackPeopleOptions) {
    this.#directory = options.directory;
    this.#mapping = options.mapping;
    this.#api = options.api;
    this.#max = options.maxCache ?? 5000;
  }

  /** The Warden person id of a Slack user; throws `ERR_BOT_USER_UNKNOWN`. */
  async toPerson(slackId: string): Promise<string> {
    if (!SLACK_USER.test(slackId)) throw new UnknownUserError(String(slackId).slice(0, 32));
    const cached = this.#personOf.get(slackId);
    if (cached) return cached;
    const byId = this.#directory.findByChatId('slack', slackId);
    let person = byId;
    if (!person && this.#mapping === 'email') {
      const email = await this.#api.emailOf(slackId);
      person = email ? this.#directory.findByEmail(email) : undefined;
    }
    if (!person) throw new UnknownUserError(slackId);
    this.#learn(slackId, person.id);
    return person.id;
  }

  /** The Slack user id to DM a person, if one is known or can be found. */
  async toSlack(personId: string): Promise<string | undefined> {
    const known = this.known(personId);
    if (known || this.#mapping !== 'email') return known;
    const person = this.#directory.get(personId);
    const slackId = person ? await this.#api.idOfEmail(person.email) : undefined;
    if (slackId) this.#learn(slackId, personId);
    return slackId;
  }

  /** Whether Slack can reach a person: a Slack id is configured or learnt, or (by e-mail) they have an e-mail. */
  reaches(personId: string): boolean {
    if (this.known(personId)) return true;
    return this.#mapping === 'email' && Boolean(this.#directory.get(personId)?.email);
  }

  /** The person's Slack id if it is configured or was learnt, without asking Slack (mentions). */
  known(personId: string): string | undefined {
    return this.#directory.chatIdOf(personId, 'slack') ?? this.#slackOf.get(personId);
  }

  #learn(slackId: string, personId: string): void {
    this.#personOf.set(slackId, personId);
    this.#slackOf.set(personId, slackId);
    for (const map of [this.#personOf, this.#slackOf]) {
      while (map.size > this.#max) map.delete(map.keys().next().value as string);
    }
  }
}
