/**
 * A chat adapter for tests of the bot core: it implements `ChatSurface` and records what the core
 * asked it to draw (the neutral cards and messages, not any markup), and can be told to fail.
 */
import type { Card, Message } from '../../bot/core/message.ts';
import type { ChatSurface, Destination, MessageRef } from '../../bot/core/surface.ts';

export interface PostedCard {
  ref: MessageRef;
  where: Destination;
  /** The card as posted, then as last updated. */
  card: Card;
  updates: Card[];
}

export class FakeSurface implements ChatSurface {
  readonly name: string;
  readonly cards: PostedCard[] = [];
  readonly threads = new Map<MessageRef, Message[]>();
  readonly dms: { person: string; message: Message }[] = [];
  /** Every call, in order: `postCard`, `updateCard`, `postInThread`, `sendDirect`. */
  readonly calls: string[] = [];
  /** While set, every call fails with this error. */
  down: Error | undefined;
  #next = 0;

  constructor(
    name = 'fake',
    private readonly prefix = 'm',
  ) {
    this.name = name;
  }

  async postCard(where: Destination, card: Card): Promise<MessageRef> {
    this.#enter('postCard');
    const ref = `${this.prefix}${++this.#next}`;
    this.cards.push({ ref, where, card, updates: [] });
    return ref;
  }

  async updateCard(ref: MessageRef, card: Card): Promise<void> {
    this.#enter('updateCard');
    const posted = this.cards.find((c) => c.ref === ref);
    if (!posted) throw new Error(`no card ${ref}`);
    posted.updates.push(card);
  }

  async postInThread(root: MessageRef, message: Message): Promise<void> {
    this.#enter('postInThread');
    this.threads.set(root, [...(this.threads.get(root) ?? []), message]);
  }

  async sendDirect(person: string, message: Message): Promise<void> {
    this.#enter('sendDirect');
    this.dms.push({ person, message });
  }

  /** The card about a subject, as it looks now. */
  latest(id: string): Card | undefined {
    const posted = this.cards.find((c) => c.card.subject.id === id);
    return posted && (posted.updates.at(-1) ?? posted.card);
  }

  #enter(call: string): void {
    this.calls.push(call);
    if (this.down) throw this.down;
  }
}
