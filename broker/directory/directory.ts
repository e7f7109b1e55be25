import type { PersonConfig } from '../config/schema.ts';

/** A person Warden knows: who they are in each chat, who manages them, which groups they are in. */
export interface Person {
  id: string;
  name?: string | undefined;
  email: string;
  slack?: string | undefined;
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
  findBySlackId(slackId: string): Person | undefined;
  findByTeamsId(teamsId: string): Person | undefined;
  membersOf(group: string): readonly Person[];
  all(): readonly Person[];
}

/** The directory from the `people:` section of the configuration. */
export class FileDirectory implements Directory {
  readonly #byId = new Map<string, Person>();
  readonly #byEmail = new Map<string, Person>();
  readonly #bySlack = new Map<string, Person>();
  readonly #byTeams = new Map<string, Person>();
  readonly #groups = new Map<string, Person[]>();

  constructor(people: readonly PersonConfig[]) {
    for (const p of people) {
      const person: Person = { ...p, groups: [...p.groups] };
      this.#byId.set(p.id, person);
      this.#byEmail.set(p.email.toLowerCase(), person);
      if (p.slack) this.#bySlack.set(p.slack, person);
      if (p.teams) this.#byTeams.set(p.teams, person);
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
  findBySlackId(slackId: string): Person | undefined {
    return this.#bySlack.get(slackId);
  }
  findByTeamsId(teamsId: string): Person | undefined {
    return this.#byTeams.get(teamsId);
  }
  membersOf(group: string): readonly Person[] {
    return this.#groups.get(group) ?? [];
  }
  all(): readonly Person[] {
    return [...this.#byId.values()];
  }
}
