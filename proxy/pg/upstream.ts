/**
 * The proxy's connection to the real server: TCP connect, StartupMessage with the minted role,
 * SCRAM-SHA-256 with its password (the client never sees either), then everything the server
 * sends up to the first ReadyForQuery. Optionally runs one catalog query before handing over.
 */
import { connect, type Socket } from 'node:net';
import { SCRAM_SHA_256, ScramClientSession } from './auth/scram.ts';
import { PgProxyError } from './errors.ts';
import {
  BackendParser,
  decodeAuthentication,
  decodeBackendKeyData,
  decodeDataRow,
  decodeErrorResponse,
  decodeReadyForQuery,
} from './protocol/backend-parser.ts';
import { BackendCode, type TransactionStatus } from './protocol/message-codes.ts';
import {
  encodeMessages,
  writeCancelRequest,
  writeQuery,
  writeSaslInitialResponse,
  writeSaslResponse,
  writeStartupMessage,
} from './protocol/serializer.ts';

/** Where and as whom to connect. */
export interface UpstreamTarget {
  host: string;
  port: number;
  database: string;
  user: string;
  password: string;
}

/** An authenticated upstream connection, idle at ReadyForQuery. */
export interface UpstreamConnection {
  socket: Socket;
  /** The parser in use (it may hold nothing: the server waits for us). */
  parser: BackendParser;
  /** ParameterStatus messages as received, to forward to the client. */
  parameterStatus: Buffer[];
  /** Notices sent during startup, to forward. */
  notices: Buffer[];
  processId: number;
  secretKey: number;
  status: TransactionStatus;
  /** Rows of `initialQuery` (text values; null for SQL NULL). */
  rows: (string | null)[][];
}

/** Startup parameters never passed through from the client. */
const RESERVED = new Set(['user', 'database', 'replication']);

/**
 * Connects and logs in. `parameters` are the client's startup parameters (application_name,
 * client_encoding, options, ...); `user`, `database` and `replication` are the proxy's to set.
 * @throws PgProxyError `ERR_PGPROXY_UPSTREAM` (unreachable, refused login, timeout).
 */
export function connectUpstream(
  target: UpstreamTarget,
  parameters: ReadonlyMap<string, string>,
  options: { timeoutMs?: number; initialQuery?: string } = {},
): Promise<UpstreamConnection> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: target.host, port: target.port, noDelay: true });
    const parser = new BackendParser();
    const result: UpstreamConnection = {
      socket,
      parser,
      parameterStatus: [],
      notices: [],
      processId: 0,
      secretKey: 0,
      status: 0x49 as TransactionStatus,
      rows: [],
    };
    let scram: ScramClientSession | undefined;
    let phase: 'login' | 'query' = 'login';
    let queryError: string | undefined;
    let settled = false;
    const fail = (message: string, cause?: unknown) => {
      if (settled) return;
      settled = true;
      socket.destroy();
      reject(new PgProxyError('ERR_PGPROXY_UPSTREAM', message, cause ? { cause } : undefined));
    };
    const timer = setTimeout(() => fail('the database did not answer in time'), options.timeoutMs ?? 10_000);
    socket.on('error', (error) =>
      fail(`cannot reach the database (${(error as NodeJS.ErrnoException).code ?? 'error'})`, error),
    );
    socket.on('close', () => fail('the database closed the connection during login'));
    socket.on('connect', () => {
      const startup: Record<string, string> = {};
      for (const [name, value] of parameters) if (!RESERVED.has(name)) startup[name] = value;
      startup.user = target.user;
      startup.database = target.database;
      socket.write(encodeMessages((w) => writeStartupMessage(w, startup)));
    });
    const onFrame = (code: number, raw: Buffer) => {
      switch (code) {
        case BackendCode.Authentication: {
          const request = decodeAuthentication(raw);
          if (request.type === 'sasl') {
            if (!request.mechanisms.includes(SCRAM_SHA_256))
              throw new Error('the database does not offer SCRAM');
            scram = new ScramClientSession(target.password);
            const first = scram.createClientFirst();
            socket.write(encodeMessages((w) => writeSaslInitialResponse(w, SCRAM_SHA_256, first)));
          } else if (request.type === 'saslContinue' && scram) {
            socket.write(encodeMessages((w) => writeSaslResponse(w, scram!.handleServerFirst(request.data))));
          } else if (request.type === 'saslFinal' && scram) {
            scram.verifyServerFinal(request.data);
          } else if (request.type !== 'ok') {
            throw new Error(
              `the database asks for ${request.type} authentication; only SCRAM-SHA-256 is used`,
            );
          }
          return;
        }
        case BackendCode.ParameterStatus:
          result.parameterStatus.push(Buffer.from(raw));
          return;
        case BackendCode.NoticeResponse:
          result.notices.push(Buffer.from(raw));
          return;
        case BackendCode.BackendKeyData: {
          const key = decodeBackendKeyData(raw);
          result.processId = key.processId;
          result.secretKey = key.secretKey;
          return;
        }
        case BackendCode.ErrorResponse: {
          const error = decodeErrorResponse(raw);
          if (phase === 'query') {
            queryError = `${error.code} ${error.message}`;
            return;
          }
          throw new Error(`the database refused the login: ${error.code} ${error.message}`);
        }
        case BackendCode.DataRow:
          if (phase === 'query') {
            result.rows.push(decodeDataRow(raw).map((v) => (v === null ? null : v.toString('utf8'))));
          }
          return;
        case BackendCode.ReadyForQuery:
          result.status = decodeReadyForQuery(raw);
          if (phase === 'login' && options.initialQuery) {
            phase = 'query';
            socket.write(encodeMessages((w) => writeQuery(w, options.initialQuery!)));
            return;
          }
          if (queryError) throw new Error(`catalog query failed: ${queryError}`);
          settled = true;
          clearTimeout(timer);
          socket.removeAllListeners('data');
          socket.removeAllListeners('close');
          socket.removeAllListeners('error');
          socket.removeAllListeners('connect');
          resolve(result);
          return;
        default:
          // RowDescription, CommandComplete of the catalog query, NegotiateProtocolVersion: nothing to keep.
          return;
      }
    };
    socket.on('data', (chunk: Buffer) => {
      try {
        parser.feed(chunk, onFrame);
      } catch (error) {
        fail((error as Error).message.slice(0, 300), error);
      }
    });
  });
}

/** Sends a CancelRequest for an upstream backend; resolves when the server closed the connection. */
export function cancelUpstream(
  host: string,
  port: number,
  processId: number,
  secretKey: number,
): Promise<void> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = () => {
      socket.destroy();
      resolve();
    };
    socket.setTimeout(5_000, done);
    socket.on('error', done);
    socket.on('close', done);
    socket.on('connect', () =>
      socket.write(encodeMessages((w) => writeCancelRequest(w, processId, secretKey))),
    );
  });
}
