/**
 * The Postgres proxy listener of one target: accepts connections, keeps the sessions and the
 * CancelRequest key map, follows grant changes from the broker's grant port and ends the sessions
 * of an ended grant at once.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import type { ProxyPorts } from '../../broker/ports/proxy.ts';
import { createSilentLogger, type Logger } from '../../lib/log.ts';
import { CatalogCache } from './catalog.ts';
import type { PgProxyTarget } from './config.ts';
import { SchemaSnapshotCache } from './guard-catalog.ts';
import { encodeMessages, writeErrorResponse } from './protocol/serializer.ts';
import { PgProxySession } from './session.ts';
import { cancelUpstream } from './upstream.ts';

/** Options of {@link PgProxyServer}. Durations in ms. */
export interface PgProxyServerOptions {
  target: PgProxyTarget;
  /**
   * The broker: grant lookup and changes, where sessions are recorded, the audit log, and the
   * reviewer of statements held by `review` rules (without one they are refused).
   */
  ports: ProxyPorts;
  /** Time from TCP accept to a ready session. Default 10,000. */
  handshakeTimeoutMs?: number;
  /** Most concurrent client connections. Default 10,000. */
  maxConnections?: number;
  /** Secret behind fake SCRAM verifiers of unknown users (default: random per process). */
  mockSecret?: Buffer;
  /** Default: silent. */
  logger?: Logger;
  clock?: () => number;
}

/** What sessions see of their server. */
export type PgProxyServerContext = Pick<
  PgProxyServer,
  | 'target'
  | 'ports'
  | 'handshakeTimeoutMs'
  | 'mockSecret'
  | 'catalogs'
  | 'schemaSnapshots'
  | 'clock'
  | 'logger'
  | 'cancel'
  | 'cancelUpstream'
  | 'forget'
>;

/** Listens for Postgres clients of one target (see the module comment). */
export class PgProxyServer {
  readonly target: PgProxyTarget;
  readonly ports: ProxyPorts;
  readonly handshakeTimeoutMs: number;
  readonly mockSecret: Buffer;
  readonly catalogs: CatalogCache;
  /** The guardrails' catalog (relations, NOT NULL columns, function names) by target and database. */
  readonly schemaSnapshots: SchemaSnapshotCache;
  readonly clock: () => number;
  readonly logger: Logger;
  private readonly maxConnections: number;
  private readonly server: Server;
  private readonly sessions = new Map<number, PgProxySession>();
  private readonly stopWatching: () => void;
  private connections = 0;

  constructor(options: PgProxyServerOptions) {
    this.target = options.target;
    this.ports = options.ports;
    this.handshakeTimeoutMs = options.handshakeTimeoutMs ?? 10_000;
    this.maxConnections = options.maxConnections ?? 10_000;
    this.mockSecret = options.mockSecret ?? randomBytes(32);
    this.clock = options.clock ?? Date.now;
    this.catalogs = new CatalogCache(this.clock);
    this.schemaSnapshots = new SchemaSnapshotCache(this.clock);
    this.logger = options.logger ?? createSilentLogger();
    this.server = createServer({ noDelay: true, pauseOnConnect: true }, (socket) => this.accept(socket));
    this.stopWatching = this.ports.grants.watch((change) => {
      for (const session of this.sessions.values()) session.onGrantChange(change);
    });
  }

  /** Live sessions (including those still logging in). */
  get sessionCount(): number {
    return this.sessions.size;
  }

  /** Bytes queued for sockets across all sessions. */
  get bufferedBytes(): number {
    let total = 0;
    for (const session of this.sessions.values()) total += session.bufferedBytes;
    return total;
  }

  /** Starts listening; resolves with the bound address. */
  listen(port: number, host = '127.0.0.1'): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ port, host, backlog: 1024 }, () => {
        this.server.removeListener('error', reject);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  /** Stops listening and ends every session with a FATAL message; resolves once all are recorded. */
  async close(): Promise<void> {
    this.stopWatching();
    const closing = new Promise<void>((resolve) => this.server.close(() => resolve()));
    const sessions = [...this.sessions.values()];
    for (const session of sessions)
      session.terminate('terminating connection: the Warden proxy is shutting down', 'proxy shutdown');
    await Promise.all(sessions.map((s) => s.closed));
    await closing;
  }

  cancel(processId: number, secretKey: number): void {
    const session = this.sessions.get(processId);
    if (!session) return;
    const given = Buffer.alloc(4);
    given.writeInt32BE(secretKey);
    const expected = Buffer.alloc(4);
    expected.writeInt32BE(session.secretKey);
    if (!timingSafeEqual(given, expected)) return;
    session.cancel().catch(() => {});
  }

  cancelUpstream(...args: Parameters<typeof cancelUpstream>): Promise<void> {
    return cancelUpstream(...args);
  }

  forget(session: PgProxySession): void {
    if (this.sessions.get(session.processId) === session) {
      this.sessions.delete(session.processId);
      this.connections--;
    }
  }

  private accept(socket: Socket): void {
    if (this.connections >= this.maxConnections) {
      socket.on('error', () => {});
      socket.resume();
      socket.end(
        encodeMessages((w) =>
          writeErrorResponse(w, {
            severity: 'FATAL',
            code: '53300',
            message: 'too many connections to this Warden proxy',
          }),
        ),
      );
      return;
    }
    let processId: number;
    do processId = randomBytes(4).readUInt32BE(0) & 0x7fffffff;
    while (processId === 0 || this.sessions.has(processId));
    this.connections++;
    const session = new PgProxySession(socket, this, processId);
    this.sessions.set(processId, session);
  }
}
