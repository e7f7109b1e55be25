/**
 * The HTTP listeners Warden runs for others to call (the broker's API, Slack's and Teams' inbound
 * webhooks) share one way to listen, bound bodies and stop, so that none can be taken down by a
 * client: slow headers and bodies time out, a reset mid-request only ends that socket, a handler
 * that throws answers 500 (or ends the response it started), and a listener error after start-up
 * is logged instead of thrown as an unhandled `'error'` event.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from './log.ts';

export interface HttpListenerOptions {
  /** Names the listener in logs (`slack`, `teams`, `api`). */
  name: string;
  logger: Logger;
  /** Longest a whole request may take, in ms (default 15 s). */
  requestTimeoutMs?: number;
}

/** A handler's request and response. */
export type HttpHandler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

/** An HTTP listener around `handler`: started with {@link listen}, stopped with {@link closeServer}. */
export function createHttpListener(handler: HttpHandler, options: HttpListenerOptions): Server {
  const server = createServer((req, res) => {
    handler(req, res).catch((error) => {
      options.logger.error({ message: (error as Error).message }, `${options.name} request failed`);
      if (!res.headersSent) res.writeHead(500).end();
      else res.destroy();
    });
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = options.requestTimeoutMs ?? 15_000;
  // A client resetting its connection or sending garbage must not take the process down.
  server.on('clientError', (_error, socket) => socket.destroy());
  server.on('error', (error) => {
    if (server.listening) options.logger.error({ err: error }, `${options.name} listener failed`);
  });
  return server;
}

/** Listens; resolves with the bound address (the port is chosen when `port` is 0), rejects when it cannot bind. */
export async function listen(server: Server, port: number, host: string): Promise<AddressInfo> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server.address() as AddressInfo;
}

/** Stops listening and ends every open connection, idle or not. */
export async function closeServer(server: Server): Promise<void> {
  if (!server.listening) return;
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** Reads a request body of at most `max` bytes; undefined (and the rest drained) when it is longer. */
export function readBounded(req: IncomingMessage, max: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) {
        req.removeAllListeners('data');
        req.resume();
        resolve(undefined);
        return;
      }
      chunks.push(chunk);
    });
    req.once('end', () => resolve(Buffer.concat(chunks)));
    req.once('error', reject);
  });
}

/** The first value of a request header. */
export function firstHeader(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}
