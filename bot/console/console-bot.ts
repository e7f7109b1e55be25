/**
 * The console front end: the same commands as Slack on a line-based stream, for local use, demos
 * and tests. `as <person>` switches who is typing, so one terminal can play requester and approver.
 * Channel messages print for everyone; a DM prints only while its recipient is the one typing
 * (others' DMs wait in their inbox until `as <them>`).
 */
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import type { Logger } from '../../broker/log.ts';
import { BotCore, type ChatSurface, type MessageRef } from '../core/bot.ts';
import type { RequestView, ReviewView } from '../core/render.ts';
import type { Reply } from '../core/replies.ts';
import type { BrokerPort, ReviewPort } from '../port.ts';

export interface ConsoleBotOptions {
  broker: BrokerPort;
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
  reviews?: ReviewPort;
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
  readonly #broker: BrokerPort;
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
      mention: (id) => `@${id}`,
      defaultChannel: options.defaultChannel ?? '#access-requests',
      ...(options.clock ? { clock: options.clock } : {}),
      ...(options.reviews ? { reviews: options.reviews } : {}),
      via: 'chat:console',
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
      this.#write(`Unknown command "${word.slice(0, 40)}". Type help.`);
    }
    await this.core.idle();
    return true;
  }

  #switch(who: string | undefined): void {
    const person = who ? this.#broker.directory.get(who.replace(/^@/, '').toLowerCase()) : undefined;
    if (!person) {
      this.#write(`No person "${(who ?? '').slice(0, 40)}" in the directory. Usage: as <person id>`);
      return;
    }
    this.#identity = person.id;
    this.#write(`You are now @${person.id}.`);
    const waiting = this.#inbox.get(person.id) ?? [];
    this.#inbox.delete(person.id);
    for (const text of waiting) this.#write(formatDm(person.id, text));
  }

  async #threadReply(id: string | undefined, text: string): Promise<void> {
    const ref = id ? this.core.findMessage(id.toLowerCase()) : undefined;
    if (!ref) {
      this.#write(`No thread for "${(id ?? '').slice(0, 40)}". Usage: reply <request id> <text>`);
      return;
    }
    this.#write(`  ↳ ${ref.ts} @${this.#identity}: ${text}`);
    const reply = await this.core.handleThreadReply(this.#identity, ref, text);
    if (reply) this.#reply(reply);
  }

  #reply(reply: Reply): void {
    const text = reply.ok ? reply.text : `${reply.text} [${reply.code}]`;
    this.#write(text.replace(/`/g, '').replace(/^/gm, '  '));
  }

  #surface(): ChatSurface {
    return {
      postRequest: async (channel: string, view: RequestView): Promise<MessageRef> => {
        // The request id names the thread on the console: `reply <id> …`.
        const ts = view.requestId;
        this.#write(renderConsoleView(channel, view, 'new'));
        return { channel, ts };
      },
      updateRequest: async (ref: MessageRef, view: RequestView) => {
        this.#write(renderConsoleView(ref.channel, view, 'updated'));
      },
      postInThread: async (ref: MessageRef, text: string) => {
        this.#write(`  ↳ ${ref.ts}: ${text.replace(/`/g, '')}`);
      },
      postReview: async (where, view: ReviewView) => {
        const channel = where.thread?.channel ?? where.channel;
        this.#write(renderConsoleReview(channel, view, where.thread?.ts));
        return { channel, ts: view.reviewId };
      },
      updateReview: async (ref: MessageRef, view: ReviewView) => {
        this.#write(renderConsoleReview(ref.channel, view, undefined, true));
      },
      sendDirect: async (personId: string, text: string) => {
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

/** A request's root message as console text. */
export function renderConsoleView(channel: string, view: RequestView, how: 'new' | 'updated'): string {
  const lines = [
    `${channel} ${how === 'new' ? '' : '(updated) '}[${view.requestId}] ${view.title}`,
    `  ${view.status}`,
    `  ${view.fields.map((f) => `${f.label}: ${f.value}`).join(' | ')}`,
  ];
  if (view.actions.length > 0) {
    lines.push(
      `  → approve ${view.requestId}  |  deny ${view.requestId} <reason>   (${view.approvers.map((a) => `@${a}`).join(', ')})`,
    );
  }
  return lines.join('\n');
}

/** A statement held for review as console text, with the verbs that decide it. */
export function renderConsoleReview(
  channel: string,
  view: ReviewView,
  thread?: string,
  updated = false,
): string {
  const where = thread ? `  ↳ ${thread}:` : `${channel}${updated ? ' (updated)' : ''}`;
  const lines = [
    `${where} [${view.reviewId}] ${view.title}`,
    ...view.statement.split('\n').map((line) => `    | ${line}`),
    `  ${view.status}`,
    `  ${view.fields.map((f) => `${f.label}: ${f.value}`).join(' | ')}`,
  ];
  if (view.actions.length > 0) {
    lines.push(`  → review approve ${view.reviewId}  |  review deny ${view.reviewId} [reason]`);
  }
  return lines.join('\n');
}
