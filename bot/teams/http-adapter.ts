/**
 * The Teams SDK's HTTP server adapter (`IHttpServerAdapter`), on `node:http`, transport only: it
 * bounds the body, authenticates every activity as the Bot Connector requires
 * ({@link ConnectorAuth}), refuses a replayed activity (the same id in the same conversation,
 * remembered in the store so that every replica refuses it), and hands what passes to the route
 * the SDK registered (its `HttpServer`, which checks the token again with the SDK's own validator
 * and runs the app). Nothing here decides what an activity does.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { HttpMethod, HttpRouteHandler, IHttpServerAdapter } from '@microsoft/teams.apps';
import * as http from '../../lib/http-listener.ts';
import type { Logger } from '../../lib/log.ts';
import type { ConnectorAuth } from './connector-auth.ts';

/** Largest activity accepted (a card action with a reason is a few KiB; Teams caps messages at 100 KiB). */
export const MAX_ACTIVITY_BYTES = 256 * 1024;

/** Where the Bot Connector posts activities. */
export const MESSAGES_PATH = '/api/messages';

/** Remembers an activity key until `expiresAt`; false when it was already seen (the store's `rememberOnce`). */
export type RememberOnce = (key: string, expiresAt: number, now: number) => Promise<boolean>;

/** How long an activity id is remembered: the lifetime of a Connector token, plus the skew it is allowed. */
const REPLAY_WINDOW_MS = 65 * 60 * 1000;
const MAX_MEMORY_KEYS = 50_000;

/** An in-memory {@link RememberOnce}, bounded (a single process without a store). */
export function rememberOnceInMemory(): RememberOnce {
  const seen = new Map<string, number>();
  return async (key, expiresAt, now) => {
    for (const [k, until] of seen) {
      if (until >= now && seen.size < MAX_MEMORY_KEYS) break;
      seen.delete(k);
    }
    if ((seen.get(key) ?? 0) >= now) return false;
    seen.set(key, expiresAt);
    return true;
  };
}

export interface TeamsHttpAdapterOptions {
  host: string;
  /** 0 for any free port (tests). */
  port: number;
  /** Undefined only when `chat.teams.insecure_skip_auth` is set. */
  auth: ConnectorAuth | undefined;
  rememberOnce: RememberOnce;
  logger: Logger;
  clock?: () => number;
}

export class TeamsHttpAdapter implements IHttpServerAdapter {
  readonly #options: TeamsHttpAdapterOptions;
  readonly #clock: () => number;
  readonly #routes = new Map<string, HttpRouteHandler>();
  #server: Server | undefined;
  /** Activities refused, by reason (tests, health). */
  readonly refused = { auth: 0, replay: 0, malformed: 0 };

  constructor(options: TeamsHttpAdapterOptions) {
    this.#options = options;
    this.#clock = options.clock ?? Date.now;
  }

  registerRoute(method: HttpMethod, path: string, handler: HttpRouteHandler): void {
    if (method !== 'POST') throw new Error(`unsupported method ${method}`);
    this.#routes.set(path, handler);
  }

  /** The bound address, once started. */
  get address(): AddressInfo | undefined {
    return this.#server?.address() as AddressInfo | undefined;
  }

  /** Listens on the configured host and port (the SDK's port argument is ignored: ours is configured). */
  async start(): Promise<void> {
    if (this.#server) return;
    const server = http.createHttpListener((req, res) => this.#handle(req, res), {
      name: 'teams',
      logger: this.#options.logger,
    });
    await http.listen(server, this.#options.port, this.#options.host);
    this.#server = server;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (server) await http.closeServer(server);
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '').split('?')[0] ?? '';
    const route = this.#routes.get(path);
    if (req.method !== 'POST' || !route) {
      res.writeHead(404).end();
      return;
    }
    if (Number(req.headers['content-length'] ?? 0) > MAX_ACTIVITY_BYTES) {
      res.writeHead(413, { connection: 'close' }).end();
      req.destroy();
      return;
    }
    const raw = await http.readBounded(req, MAX_ACTIVITY_BYTES);
    if (!raw) {
      res.writeHead(413, { connection: 'close' }).end();
      return;
    }
    const activity = parseActivity(raw);
    if (!activity) {
      this.refused.malformed++;
      send(res, 400, { error: 'not an activity' });
      return;
    }
    if (this.#options.auth) {
      try {
        await this.#options.auth.verify(http.firstHeader(req, 'authorization'), activity);
      } catch (error) {
        this.refused.auth++;
        this.#options.logger.warn(
          { code: (error as { code?: string }).code, reason: (error as { reason?: string }).reason },
          'teams activity refused',
        );
        send(res, 401, { error: 'request refused' });
        return;
      }
    }
    if (typeof activity.id === 'string' && activity.id) {
      const conversation = (activity.conversation as { id?: unknown } | undefined)?.id;
      const key = `teams:activity:${String(conversation ?? '')}:${activity.id}`.slice(0, 1024);
      const now = this.#clock();
      if (!(await this.#options.rememberOnce(key, now + REPLAY_WINDOW_MS, now))) {
        this.refused.replay++;
        this.#options.logger.warn(
          { code: 'ERR_BOT_REPLAY', type: activity.type },
          'teams activity replayed; refused',
        );
        send(res, 409, { error: 'request refused' });
        return;
      }
    }
    const headers: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(req.headers)) if (value !== undefined) headers[name] = value;
    const response = await route({ body: activity, headers });
    send(res, response.status, response.body);
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  if (body === undefined || body === null || body === '') {
    res.writeHead(status).end();
    return;
  }
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' }).end(text);
}

/** A JSON object with a string `type`; anything else is not an activity. */
function parseActivity(raw: Buffer): Record<string, unknown> | undefined {
  try {
    const value = JSON.parse(raw.toString('utf8')) as unknown;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
    const activity = value as Record<string, unknown>;
    return typeof activity.type === 'string' ? activity : undefined;
  } catch {
    return undefined;
  }
}
