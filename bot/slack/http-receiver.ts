/**
 * A Bolt `Receiver` for Slack's HTTP delivery (`POST /slack/events`): transport only, as Bolt's
 * receiver contract asks. It bounds the body, checks the v0 signature and the five-minute window,
 * refuses replays (Bolt's own receiver does not), drops Events API redeliveries it already took,
 * answers Slack's `url_verification` and `ssl_check`, and hands every other request to
 * `app.processEvent` with an `ack` that writes the HTTP response (Bolt's `HTTPResponseAck`: a
 * handler that never acks gets a 404 after three seconds). What happens next is Bolt's and the
 * listeners' business.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type App,
  type Logger as BoltLogger,
  HTTPModuleFunctions,
  HTTPResponseAck,
  type Receiver,
  type ReceiverEvent,
} from '@slack/bolt';
import type { Revealable } from '../../broker/ports/chat.ts';
import {
  closeServer,
  createHttpListener,
  firstHeader,
  listen,
  readBounded,
} from '../../lib/http-listener.ts';
import type { Logger } from '../../lib/log.ts';
import { ReplayCache, verifySlackSignature } from './signature.ts';

/** Largest request body accepted (Slack's payloads are a few KiB). */
export const MAX_BODY_BYTES = 64 * 1024;

/** Where Slack posts commands, interactions and events. */
export const EVENTS_PATH = '/slack/events';

/** Events API deliveries remembered against redelivery (Slack retries what it thinks was lost). */
const MAX_SEEN_EVENTS = 10_000;

/** What a receiver hands requests to: Bolt's `App` (tests pass their own). */
export type EventProcessor = Pick<App, 'processEvent'>;

export interface SlackHttpReceiverOptions {
  host: string;
  /** 0 for any free port (tests). */
  port: number;
  signingSecret: Revealable;
  logger: Logger;
  /** What Bolt's ack logs through. */
  boltLogger: BoltLogger;
  clock?: () => number;
  /** Signed requests remembered against replay. */
  replayCache?: ReplayCache;
}

export class SlackHttpReceiver implements Receiver {
  readonly #options: SlackHttpReceiverOptions;
  readonly #clock: () => number;
  readonly #replays: ReplayCache;
  readonly #seenEvents = new Set<string>();
  #app: EventProcessor | undefined;
  #server: Server | undefined;

  constructor(options: SlackHttpReceiverOptions) {
    this.#options = options;
    this.#clock = options.clock ?? Date.now;
    this.#replays = options.replayCache ?? new ReplayCache();
  }

  /** Called by Bolt's `App` constructor. */
  init(app: EventProcessor): void {
    this.#app = app;
  }

  /** Listens; resolves with the address once bound (the port is chosen when `port` is 0). */
  async start(): Promise<AddressInfo> {
    if (this.#server) return this.#server.address() as AddressInfo;
    const server = createHttpListener((req, res) => this.requestListener(req, res), {
      name: 'slack',
      logger: this.#options.logger,
    });
    const address = await listen(server, this.#options.port, this.#options.host);
    this.#server = server;
    return address;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (server) await closeServer(server);
  }

  /** Handles one HTTP request (exposed so it can be mounted on another server). */
  async requestListener(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '').split('?')[0];
    if (req.method !== 'POST' || path !== EVENTS_PATH) {
      res.writeHead(404).end();
      return;
    }
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > MAX_BODY_BYTES) {
      res.writeHead(413, { connection: 'close' }).end();
      req.destroy();
      return;
    }
    const body = await readBounded(req, MAX_BODY_BYTES);
    if (!body) {
      res.writeHead(413, { connection: 'close' }).end();
      return;
    }
    const contentType = firstHeader(req, 'content-type') ?? '';
    // Slack's certificate check carries no signature and asks for nothing but a 200.
    if (contentType.startsWith('application/x-www-form-urlencoded') && isSslCheck(body)) {
      res.writeHead(200).end();
      return;
    }
    const signed = {
      timestamp: firstHeader(req, 'x-slack-request-timestamp'),
      signature: firstHeader(req, 'x-slack-signature'),
      body,
    };
    try {
      const now = this.#clock();
      verifySlackSignature(this.#options.signingSecret.reveal(), signed, now);
      this.#replays.remember(signed, now);
    } catch (error) {
      this.#options.logger.warn(
        { code: (error as { code?: string }).code, reason: (error as { reason?: string }).reason },
        'slack request refused',
      );
      res.writeHead(401).end();
      return;
    }
    let parsed: Record<string, unknown>;
    try {
      (req as IncomingMessage & { rawBody?: Buffer }).rawBody = body;
      parsed = HTTPModuleFunctions.parseHTTPRequestBody(
        req as Parameters<typeof HTTPModuleFunctions.parseHTTPRequestBody>[0],
      );
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
        throw new Error('not an object');
    } catch {
      res.writeHead(400).end();
      return;
    }
    if (parsed.type === 'url_verification') {
      HTTPModuleFunctions.buildUrlVerificationResponse(res, parsed);
      return;
    }
    if (this.#isRedelivery(parsed)) {
      res.writeHead(200).end();
      return;
    }
    await this.#dispatch(req, res, parsed);
  }

  async #dispatch(req: IncomingMessage, res: ServerResponse, body: Record<string, unknown>): Promise<void> {
    const app = this.#app;
    if (!app) {
      res.writeHead(503).end();
      return;
    }
    const ack = new HTTPResponseAck({
      logger: this.#options.boltLogger,
      processBeforeResponse: false,
      httpRequest: req,
      httpRequestBody: body,
      httpResponse: res,
    });
    const event: ReceiverEvent = {
      body,
      ack: ack.bind(),
      ...retryOf(req),
    };
    try {
      await app.processEvent(event);
    } catch (error) {
      this.#options.logger.error(
        { code: (error as { code?: string }).code, message: (error as Error).message },
        'bolt could not process a slack request',
      );
      if (!res.headersSent) {
        ack.ack();
        res.writeHead(500).end();
      }
    }
  }

  /** Whether an Events API delivery was taken already (Slack redelivers with a new signature). */
  #isRedelivery(body: Record<string, unknown>): boolean {
    if (body.type !== 'event_callback' || typeof body.event_id !== 'string') return false;
    const id = body.event_id.slice(0, 64);
    if (this.#seenEvents.has(id)) return true;
    this.#seenEvents.add(id);
    if (this.#seenEvents.size > MAX_SEEN_EVENTS) {
      this.#seenEvents.delete(this.#seenEvents.values().next().value as string);
    }
    return false;
  }
}

function retryOf(req: IncomingMessage): Pick<ReceiverEvent, 'retryNum' | 'retryReason'> {
  const retryNum = HTTPModuleFunctions.extractRetryNumFromHTTPRequest(req);
  const retryReason = HTTPModuleFunctions.extractRetryReasonFromHTTPRequest(req);
  return {
    ...(retryNum !== undefined && !Number.isNaN(retryNum) ? { retryNum } : {}),
    ...(retryReason !== undefined ? { retryReason } : {}),
  };
}

function isSslCheck(body: Buffer): boolean {
  return new URLSearchParams(body.toString('utf8')).get('ssl_check') === '1';
}
