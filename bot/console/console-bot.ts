/**
 * The console front end: the same commands as Slack on a line-based stream, for local use, demos
 * and tests. `as <person>` switches who is typing, so one terminal can play requester and approver.
 * Channel messages print for everyone; a DM prints only while its recipient is the one typing
 * (others' DMs wait in their inbox until `as <them>`).
 */
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import type { ChatBrokerPort, ChatMessageStore, ChatReviewPort } from '../../broker/ports/chat.ts';
import type { Logger } from '../../lib/log.ts';
import { BotCore } from '../core/bot.ts';
import type { Card, Message } from '../core/message.ts';
import type { Reply } from '../core/replies.ts';
import type { ChatSurface, Destination, MessageRef } from '../core/surface.ts';
import { cleanLiteral, renderConsoleCard, renderConsoleMessage } from './console-text.ts';

export interface ConsoleBotOptions {
  broker: ChatBrokerPort;
  input: Readable;
  output: Writable;
  logger: Logger;
  /** Who types first (a person id). */
  identity: string;
  defaultChannel?: string;
  /** Print a `alice> ` prompt (interactive terminals). Default false. */
  prompt?: boolean;
  clock?: () => number;
  /** Decisions on statements the Postgres proxy holds for review. */
  reviews?: ChatReviewPort;
  /** Where message references are kept. Default: memory (the console's messages are its own output). */
  messages?: ChatMessageStore;
}
/** DMs kept per person while someone else is typing. */
const MAX_INBOX = 100;
const MAX_LINE = 4000;

const HELP = [
  'Console commands:',
  '  as <person>                 switch who is typing (requester, approver, …)',
  '  whoami                      who is typing now',
  '  /access …                   any /access command (try /access help)',
  '  approve <id>                approve a request',
  '  deny <id> <reason>          deny a request',
  '  reply <id> <text>           reply in a request’s thread (`approve`, `deny <reason>`)',
  '  review approve|deny <id> [reason]   decide a statement the proxy holds for review',
  '  list | status <id> | revoke <id> | extend <id> <duration> | cancel <id>',
  '  quit                        leave',
];

const BARE_VERBS = new Set([
  'list',
  'status',
  'show',
  'revoke',
  'extend',
  'cancel',
  'approve',
  'deny',
  'review',
]);

export class ConsoleBot {
  readonly core: BotCore;
  readonly #broker: ChatBrokerPort;
  readonly #input: Readable;
  readonly #output: Writable;
  readonly #prompt: boolean;
  readonly #inbox = new Map<string, string[]>();
  #identity: string;

  constructor(options: ConsoleBotOptions) {
    this.#broker = options.broker;
    this.#input = options.input;
    this.#output = options.output;
    this.#prompt = options.prompt ?? false;
    this.#identity = options.identity;
    this.core = new BotCore({
      broker: options.broker,
      surface: this.#surface(),
      logger: options.logger,
      defaultChannel: options.defaultChannel ?? '#access-requests',
      ...(options.clock ? { clock: options.clock } : {}),
      ...(options.reviews ? { reviews: options.reviews } : {}),
      via: 'chat:console',
      ...(options.messages ? { messages: options.messages } : {}),
    });
  }

  /** The person typing now. */
  get identity(): string {
    return this.#identity;
  }

  /** Follows broker events and reads lines until the input ends or `quit`. */
  async run(): Promise<void> {
    this.core.start();
    this.#write(`Warden console. You are @${this.#identity}. Type help for commands.`);
    this.#showPrompt();
    const lines = createInterface({
      input: this.#input,
      crlfDelay: Number.POSITIVE_INFINITY,
      terminal: false,
    });
    try {
      for await (const line of lines) {
        if (!(await this.handleLine(line))) break;
        this.#showPrompt();
      }
    } finally {
      lines.close();
      await this.core.idle();
      this.core.stop();
    }
  }

  /** Runs one line; false when the user asked to quit. */
  async handleLine(raw: string): Promise<boolean> {
    const line = raw.slice(0, MAX_LINE).trim();
    if (!line) return true;
    const [word = '', ...rest] = line.split(/\s+/);
    const verb = word.toLowerCase();
    if (verb === 'quit' || verb === 'exit') return false;
    if (verb === 'help' || verb === '?') {
      this.#write(HELP.join('\n'));
    } else if (verb === 'whoami') {
      this.#write(`You are @${this.#identity}.`);
    } else if (verb === 'as') {
      this.#switch(rest[0]);
    } else if (verb === '/access' || verb === 'access') {
      this.#reply(await this.core.handleCommand(this.#identity, rest.join(' ')));
    } else if (BARE_VERBS.has(verb)) {
      this.#reply(await this.core.handleCommand(this.#identity, line));
    } else if (verb === 'reply') {
      await this.#threadReply(rest[0], rest.slice(1).join(' '));
    } else {
      this.#write(`Unknown command "${cleanLiteral(word.slice(0, 40))}". Type help.`);
    }
    await this.core.idle();
    return true;
  }

  #switch(who: string | undefined): void {
    const person = who ? this.#broker.directory.get(who.replace(/^@/, '').toLowerCase()) : undefined;
    if (!person) {
      this.#write(
        `No person "${cleanLiteral((who ?? '').slice(0, 40))}" in the directory. Usage: as <person id>`,
      );
      return;
    }
    this.#identity = person.id;
    this.#write(`You are now @${person.id}.`);
    const waiting = this.#inbox.get(person.id) ?? [];
    this.#inbox.delete(person.id);
    for (const text of waiting) this.#write(formatDm(person.id, text));
  }

  async #threadReply(id: string | undefined, text: string): Promise<void> {
    const ref = id ? await this.core.findMessage(id.toLowerCase()) : undefined;
    if (!ref) {
      this.#write(
        `No thread for "${cleanLiteral((id ?? '').slice(0, 40))}". Usage: reply <request id> <text>`,
      );
      return;
    }
    this.#write(`  ↳ ${parseConsoleRef(ref).id} @${this.#identity}: ${cleanLiteral(text)}`);
    const reply = await this.core.handleThreadReply(this.#identity, ref, text);
    if (reply) this.#reply(reply);
  }

  #reply(reply: Reply): void {
    const text = renderConsoleMessage(reply.message);
    this.#write((reply.ok ? text : `${text} [${reply.code}]`).replace(/^/gm, '  '));
  }

  #surface(): ChatSurface {
    return {
      name: 'console',
      postCard: async (where: Destination, card: Card): Promise<MessageRef> => {
        const thread = where.thread ? parseConsoleRef(where.thread) : undefined;
        const channel = thread?.channel ?? where.channel;
        this.#write(renderConsoleCard(channel, card, thread ? { thread: thread.id } : { how: 'new' }));
        // The subject's id names the thread on the console: `reply <id> …`.
        return formatConsoleRef(channel, card.subject.id);
      },
      updateCard: async (ref: MessageRef, card: Card) => {
        this.#write(renderConsoleCard(parseConsoleRef(ref).channel, card, { how: 'updated' }));
      },
      postInThread: async (root: MessageRef, message: Message) => {
        this.#write(`  ↳ ${parseConsoleRef(root).id}: ${renderConsoleMessage(message)}`);
      },
      sendDirect: async (personId: string, message: Message) => {
        const text = renderConsoleMessage(message);
        if (personId === this.#identity) {
          this.#write(formatDm(personId, text));
          return;
        }
        const box = this.#inbox.get(personId) ?? [];
        if (box.length >= MAX_INBOX) box.shift();
        box.push(text);
        this.#inbox.set(personId, box);
        this.#write(`(a DM for @${personId} is waiting: type "as ${personId}" to read it)`);
      },
    };
  }

  #write(text: string): void {
    if (!this.#output.writableEnded) this.#output.write(`${text}\n`);
  }

  #showPrompt(): void {
    if (this.#prompt) this.#output.write(`${this.#identity}> `);
  }
}

function formatDm(personId: string, text: string): string {
  return text
    .split('\n')
    .map((line, i) => (i === 0 ? `[DM to ${personId}] ${line}` : `[DM to ${personId}]   ${line}`))
    .join('\n');
}

/** A console message reference: the channel and the id of what the message shows. */
function formatConsoleRef(channel: string, id: string): MessageRef {
  return `${channel}\u0000${id}`;
}

function parseConsoleRef(ref: MessageRef): { channel: string; id: string } {
  const at = ref.lastIndexOf('\u0000');
  return { channel: ref.slice(0, at), id: ref.slice(at + 1) };
}
