/**
 * A local stand-in for the Slack Web API (Bolt's `slackApiUrl`), and for `response_url`. It checks
 * the bot token and each method's required fields, answers like Slack (ts values, channel ids,
 * `not_in_channel`, 429 with Retry-After when told to), and records everything users would see.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface StandinCall {
  method: string;
  args: Record<string, unknown>;
  ok: boolean;
  error?: string;
}

export interface StandinMessage {
  channel: string;
  ts: string;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: Block Kit JSON as posted.
  blocks: any[] | undefined;
  threadTs: string | undefined;
  updates: number;
}

export interface StandinEphemeral {
  channel: string;
  user: string;
  text: string;
  threadTs: string | undefined;
}

export interface StandinChannel {
  id: string;
  name: string;
  /** Whether the bot is a member (posting elsewhere fails with not_in_channel). */
  member: boolean;
}

/** A failure the next call of a method meets. */
export type StandinFailure =
  | { status: 429; retryAfter: number }
  | { status: 500 | 502 | 503 }
  | { error: string };

const REQUIRED: Record<string, (args: Record<string, unknown>) => string | undefined> = {
  'chat.postMessage': (a) =>
    !a.channel ? 'channel_not_found' : !a.text && !a.blocks ? 'no_text' : undefined,
  'chat.update': (a) => (!a.channel ? 'channel_not_found' : !a.ts ? 'message_not_found' : undefined),
  'chat.postEphemeral': (a) => (!a.channel ? 'channel_not_found' : !a.user ? 'user_not_found' : undefined),
  'views.open': (a) => (!a.trigger_id ? 'invalid_trigger_id' : !a.view ? 'invalid_arguments' : undefined),
  'conversations.open': (a) => (!a.users ? 'users_list_not_supplied' : undefined),
  'users.info': (a) => (!a.user ? 'user_not_found' : undefined),
  'users.lookupByEmail': (a) => (!a.email ? 'users_not_found' : undefined),
};

export class SlackStandin {
  readonly token: string;
  readonly calls: StandinCall[] = [];
  /** Every message posted, thread replies and DMs included, in order; updated in place by chat.update. */
  readonly messages: StandinMessage[] = [];
  readonly ephemerals: StandinEphemeral[] = [];
  // biome-ignore lint/suspicious/noExplicitAny: modal JSON as opened.
  readonly views: { triggerId: string; view: any }[] = [];
  /** Bodies posted to response_url, by key. */
  readonly responses: { key: string; body: Record<string, unknown> }[] = [];
  readonly channels = new Map<string, StandinChannel>();
  /** Slack user id → e-mail. */
  readonly users = new Map<string, string>();
  readonly #failures = new Map<string, StandinFailure[]>();
  readonly #server: Server;
  #ts = 1_700_000_000;
  #port = 0;

  private constructor(token: string) {
    this.token = token;
    this.#server = createServer((req, res) => {
      this.#handle(req)
        .then(({ status, headers, body }) => res.writeHead(status, headers).end(body))
        .catch(() => res.writeHead(500).end());
    });
  }

  /** Starts on 127.0.0.1 and a free port (or `port`: Slack coming back where Warden expects it). */
  static async start(options: {
    token: string;
    channels?: StandinChannel[];
    users?: Record<string, string>;
    port?: number;
  }): Promise<SlackStandin> {
    const standin = new SlackStandin(options.token);
    for (const c of options.channels ?? []) standin.channels.set(c.id, { ...c });
    for (const [id, email] of Object.entries(options.users ?? {})) standin.users.set(id, email);
    await new Promise<void>((resolve) => standin.#server.listen(options.port ?? 0, '127.0.0.1', resolve));
    standin.#port = (standin.#server.address() as AddressInfo).port;
    return standin;
  }

  /** The Web API base URL, for Bolt's `slackApiUrl`. */
  get apiUrl(): string {
    return `http://127.0.0.1:${this.#port}/api/`;
  }

  /** A `response_url` whose posts are recorded under `key`. */
  responseUrl(key: string): string {
    return `http://127.0.0.1:${this.#port}/respond/${encodeURIComponent(key)}`;
  }

  /** The next call of `method` fails this way (queued: call several times for several failures). */
  failNext(method: string, failure: StandinFailure): void {
    const queue = this.#failures.get(method) ?? [];
    queue.push(failure);
    this.#failures.set(method, queue);
  }

  /** Root messages (not thread replies) in a channel. */
  rootsIn(channel: string): StandinMessage[] {
    return this.messages.filter((m) => m.channel === channel && !m.threadTs);
  }

  /** Replies in the thread of a root message, as texts. */
  thread(root: Pick<StandinMessage, 'channel' | 'ts'>): string[] {
    return this.messages
      .filter((m) => m.channel === root.channel && m.threadTs === root.ts)
      .map((m) => m.text);
  }

  /** DMs sent to a Slack user (through conversations.open's channel), as texts. */
  dmsTo(user: string): string[] {
    return this.messages.filter((m) => m.channel === `D${user}`).map((m) => m.text);
  }

  /** Everything shown in channels (roots, their blocks, threads) and ephemerals: where secrets must never be. */
  publicText(): string {
    const shown = this.messages
      .filter((m) => !m.channel.startsWith('D'))
      .map((m) => `${m.text}\n${JSON.stringify(m.blocks ?? [])}`);
    return [
      ...shown,
      ...this.ephemerals.map((e) => e.text),
      ...this.responses.map((r) => JSON.stringify(r.body)),
    ].join('\n');
  }

  /** Texts posted to a response_url key. */
  responsesFor(key: string): string[] {
    return this.responses.filter((r) => r.key === key).map((r) => String(r.body.text ?? ''));
  }

  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  async #handle(
    req: IncomingMessage,
  ): Promise<{ status: number; headers: Record<string, string>; body: string }> {
    const raw = await readAll(req);
    const url = req.url ?? '';
    const json = (status: number, value: unknown, headers: Record<string, string> = {}) => ({
      status,
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(value),
    });
    if (url.startsWith('/respond/')) {
      this.responses.push({
        key: decodeURIComponent(url.slice('/respond/'.length)),
        body: JSON.parse(raw || '{}'),
      });
      return { status: 200, headers: {}, body: 'ok' };
    }
    if (!url.startsWith('/api/')) return json(404, { ok: false, error: 'not_found' });
    const method = url.slice('/api/'.length).split('?')[0]!;
    const args = parseArgs(raw, String(req.headers['content-type'] ?? ''));
    const failure = this.#failures.get(method)?.shift();
    if (failure && 'status' in failure) {
      this.calls.push({ method, args, ok: false, error: `http_${failure.status}` });
      if (failure.status === 429)
        return json(429, { ok: false, error: 'ratelimited' }, { 'retry-after': String(failure.retryAfter) });
      return { status: failure.status, headers: {}, body: 'upstream trouble' };
    }
    const result =
      req.headers.authorization !== `Bearer ${this.token}`
        ? { ok: false, error: 'invalid_auth' }
        : failure
          ? { ok: false, error: failure.error }
          : this.#apply(method, args);
    this.calls.push({
      method,
      args,
      ok: result.ok === true,
      ...(result.ok ? {} : { error: String(result.error) }),
    });
    return json(200, result);
  }

  #apply(method: string, args: Record<string, unknown>): Record<string, unknown> {
    const missing = REQUIRED[method]?.(args);
    if (missing) return { ok: false, error: missing };
    switch (method) {
      case 'auth.test':
        return {
          ok: true,
          url: 'https://warden-test.slack.com/',
          team: 'Test',
          user: 'warden',
          team_id: 'T0TEST',
          user_id: 'UWARDENBOT',
          bot_id: 'BWARDEN',
        };
      case 'chat.postMessage': {
        const channel = this.#channel(String(args.channel));
        if ('error' in channel) return { ok: false, error: channel.error };
        const message: StandinMessage = {
          channel: channel.id,
          ts: `${++this.#ts}.000100`,
          text: String(args.text ?? ''),
          blocks: args.blocks as StandinMessage['blocks'],
          threadTs: args.thread_ts ? String(args.thread_ts) : undefined,
          updates: 0,
        };
        this.messages.push(message);
        return {
          ok: true,
          channel: channel.id,
          ts: message.ts,
          message: { text: message.text, ts: message.ts },
        };
      }
      case 'chat.update': {
        const message = this.messages.find((m) => m.channel === args.channel && m.ts === args.ts);
        if (!message) return { ok: false, error: 'message_not_found' };
        message.text = String(args.text ?? message.text);
        message.blocks = (args.blocks as StandinMessage['blocks']) ?? message.blocks;
        message.updates += 1;
        return { ok: true, channel: message.channel, ts: message.ts };
      }
      case 'chat.postEphemeral': {
        const channel = this.#channel(String(args.channel));
        if ('error' in channel) return { ok: false, error: channel.error };
        this.ephemerals.push({
          channel: channel.id,
          user: String(args.user),
          text: String(args.text ?? ''),
          threadTs: args.thread_ts ? String(args.thread_ts) : undefined,
        });
        return { ok: true, message_ts: `${++this.#ts}.000200` };
      }
      case 'views.open':
        this.views.push({ triggerId: String(args.trigger_id), view: args.view });
        return { ok: true, view: { id: `V${this.views.length}` } };
      case 'conversations.open':
        return { ok: true, channel: { id: `D${String(args.users).split(',')[0]}` } };
      case 'users.info': {
        const email = this.users.get(String(args.user));
        if (!email) return { ok: false, error: 'user_not_found' };
        return { ok: true, user: { id: args.user, profile: { email } } };
      }
      case 'users.lookupByEmail': {
        const found = [...this.users].find(([, email]) => email === args.email);
        return found ? { ok: true, user: { id: found[0] } } : { ok: false, error: 'users_not_found' };
      }
      default:
        return { ok: false, error: 'unknown_method' };
    }
  }

  #channel(ref: string): { id: string } | { error: string } {
    if (/^D[A-Z0-9]+$/.test(ref)) return { id: ref };
    const name = ref.replace(/^#/, '');
    const channel = this.channels.get(ref) ?? [...this.channels.values()].find((c) => c.name === name);
    if (!channel) return { error: 'channel_not_found' };
    if (!channel.member) return { error: 'not_in_channel' };
    return { id: channel.id };
  }
}

function readAll(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.once('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.once('error', reject);
  });
}

/** The Web API takes form fields (objects JSON-encoded in a field) or a JSON body. */
function parseArgs(raw: string, contentType: string): Record<string, unknown> {
  if (contentType.includes('application/json')) return raw ? JSON.parse(raw) : {};
  const args: Record<string, unknown> = {};
  for (const [key, value] of new URLSearchParams(raw)) {
    args[key] = /^[[{]/.test(value) ? safeJson(value) : value;
  }
  return args;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
