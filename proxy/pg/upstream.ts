/**
 * The proxy's connection to the real server: TCP connect, TLS when the target's `tls` settings ask
 * for it (SSLRequest, then `tls.connect` over the same socket; never a plaintext fallback when
 * the mode requires TLS), StartupMessage with the minted role,
 * SCRAM-SHA-256 with its password (the client never sees either), then everything the server
 * sends up to the first ReadyForQuery. Optionally runs queries before handing over (the masking
 * catalog, the session's search_path, the guardrails' catalog), pipelined in one write.
 */
import { connect, type Socket } from 'node:net';
import { connect as connectTls } from 'node:tls';
import { buildTlsConnectOptions, type PgTlsSettings } from '../../lib/pg-tls.ts';
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
  writeSslRequest,
  writeStartupMessage,
} from './protocol/serializer.ts';

/** Where and as whom to connect. */
export interface UpstreamTarget {
  host: string;
  port: number;
  database: string;
  user: string;
  password: string;
  /** TLS towards the server (absent: plaintext, as mode `disable`). */
  tls?: PgTlsSettings | undefined;
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
  /** What each of `initialQueries` returned, in order. */
  results: InitialResult[];
}

/** The rows (text values; null for SQL NULL) of an initial query's last statement, or its error. */
export interface InitialResult {
  rows: (string | null)[][];
  error?: string;
}

/** Node's codes for a certificate chain that does not lead to a trusted CA (or is not valid now). */
const UNTRUSTED = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
]);

/** Translates a TLS handshake failure into a proxy error (certificate facts only, no secrets). */
export function describeUpstreamTlsError(error: NodeJS.ErrnoException): PgProxyError {
  const code = error.code ?? '';
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID')
    return new PgProxyError(
      'ERR_PGPROXY_UPSTREAM_TLS_HOSTNAME',
      `the database's TLS certificate is not valid for the expected host name (${error.message.slice(0, 200)})`,
      { cause: error },
    );
  if (UNTRUSTED.has(code))
    return new PgProxyError(
      'ERR_PGPROXY_UPSTREAM_TLS_UNTRUSTED',
      `the database's TLS certificate is not trusted (${code})`,
      { cause: error },
    );
  return new PgProxyError(
    'ERR_PGPROXY_UPSTREAM_TLS',
    `TLS with the database failed (${code || 'handshake'})`,
    {
      cause: error,
    },
  );
}

/** Startup parameters never passed through from the client. */
const RESERVED = new Set(['user', 'database', 'replication']);

/**
 * Connects and logs in. `parameters` are the client's startup parameters (application_name,
 * client_encoding, options, ...); `user`, `database` and `replication` are the proxy's to set.
 * @throws PgProxyError `ERR_PGPROXY_UPSTREAM` (unreachable, refused login, timeout, an answer to
 *   the SSLRequest other than a lone `S` or `N`), `ERR_PGPROXY_UPSTREAM_TLS_REFUSED` (the server
 *   has no TLS and the mode requires it), `ERR_PGPROXY_UPSTREAM_TLS_UNTRUSTED`,
 *   `ERR_PGPROXY_UPSTREAM_TLS_HOSTNAME` or `ERR_PGPROXY_UPSTREAM_TLS` (handshake failures).
 */
export function connectUpstream(
  target: UpstreamTarget,
  parameters: ReadonlyMap<string, string>,
  options: { timeoutMs?: number; initialQueries?: readonly string[] } = {},
): Promise<UpstreamConnection> {
  return new Promise((resolve, reject) => {
    const raw = connect({ host: target.host, port: target.port, noDelay: true });
    let socket: Socket = raw;
    const tlsOptions = target.tls ? buildTlsConnectOptions(target.tls, target.host) : undefined;
    const parser = new BackendParser();
    const result: UpstreamConnection = {
      socket,
      parser,
      parameterStatus: [],
      notices: [],
      processId: 0,
      secretKey: 0,
      status: 0x49 as TransactionStatus,
      results: [],
    };
    const queries = options.initialQueries ?? [];
    let scram: ScramClientSession | undefined;
    let phase: 'login' | 'query' = 'login';
    let current: InitialResult = { rows: [] };
    let settled = false;
    const failWith = (error: PgProxyError) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      raw.destroy();
      reject(error);
    };
    const fail = (message: string, cause?: unknown) =>
      failWith(new PgProxyError('ERR_PGPROXY_UPSTREAM', message, cause ? { cause } : undefined));
    const timer = setTimeout(() => fail('the database did not answer in time'), options.timeoutMs ?? 10_000);
    raw.on('error', (error) =>
      fail(`cannot reach the database (${(error as NodeJS.ErrnoException).code ?? 'error'})`, error),
    );
    raw.on('close', () => fail('the database closed the connection during login'));
    const sendStartup = () => {
      const startup: Record<string, string> = {};
      for (const [name, value] of parameters) if (!RESERVED.has(name)) startup[name] = value;
      startup.user = target.user;
      startup.database = target.database;
      socket.write(encodeMessages((w) => writeStartupMessage(w, startup)));
    };
    const onData = (chunk: Buffer) => {
      try {
        parser.feed(chunk, onFrame);
      } catch (error) {
        fail((error as Error).message.slice(0, 300), error);
      }
    };
    const onSslAnswer = (chunk: Buffer) => {
      raw.removeListener('data', onSslAnswer);
      if (chunk[0] === 0x4e /* N */) {
        failWith(
          new PgProxyError(
            'ERR_PGPROXY_UPSTREAM_TLS_REFUSED',
            `the database does not offer TLS, and tls.mode ${target.tls!.mode} requires it`,
          ),
        );
        return;
      }
      // Bytes after 'S' were not protected by TLS: a man in the middle may have injected them.
      if (chunk[0] !== 0x53 /* S */ || chunk.length !== 1) {
        fail('the database answered the TLS request with something other than S or N');
        return;
      }
      const secure = connectTls({ ...tlsOptions, socket: raw });
      socket = secure;
      result.socket = secure;
      secure.on('error', (error) => failWith(describeUpstreamTlsError(error as NodeJS.ErrnoException)));
      secure.on('close', () => fail('the database closed the connection during login'));
      secure.on('secureConnect', sendStartup);
      secure.on('data', onData);
    };
    raw.on('connect', () => {
      if (!tlsOptions) {
        raw.on('data', onData);
        sendStartup();
        return;
      }
      raw.on('data', onSslAnswer);
      raw.write(encodeMessages((w) => writeSslRequest(w)));
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
            current.error = `${error.code} ${error.message}`.slice(0, 300);
            return;
          }
          throw new Error(`the database refused the login: ${error.code} ${error.message}`);
        }
        case BackendCode.DataRow:
          if (phase === 'query') {
            current.rows.push(decodeDataRow(raw).map((v) => (v === null ? null : v.toString('utf8'))));
          }
          return;
        case BackendCode.RowDescription:
          // A new statement's rows: an initial query keeps its last statement's.
          if (phase === 'query') current.rows = [];
          return;
        case BackendCode.ReadyForQuery:
          result.status = decodeReadyForQuery(raw);
          if (phase === 'login' && queries.length > 0) {
            phase = 'query';
            socket.write(
              encodeMessages((w) => {
                for (const q of queries) writeQuery(w, q);
              }),
            );
            return;
          }
          if (phase === 'query') {
            result.results.push(current);
            current = { rows: [] };
            if (result.results.length < queries.length) return;
          }
          settled = true;
          clearTimeout(timer);
          for (const event of ['data', 'close', 'error', 'connect', 'secureConnect'])
            socket.removeAllListeners(event);
          // Under TLS the raw socket keeps its (now inert) error listener: errors there must not throw.
          resolve(result);
          return;
        default:
          // CommandComplete of the initial queries, NegotiateProtocolVersion: nothing to keep.
          return;
      }
    };
  });
}

/**
 * Sends a CancelRequest for an upstream backend; resolves when the server closed the connection.
 * With `tls` settings the request goes inside TLS, as the login did (SSLRequest first; nothing is
 * sent when the server does not offer TLS or the handshake fails): the backend key would otherwise
 * let anyone on the path cancel the session's statements.
 */
export function cancelUpstream(
  host: string,
  port: number,
  processId: number,
  secretKey: number,
  tls?: PgTlsSettings,
): Promise<void> {
  return new Promise((resolve) => {
    const raw = connect({ host, port });
    let socket: Socket = raw;
    const done = () => {
      socket.destroy();
      raw.destroy();
      resolve();
    };
    const sendCancel = () => socket.write(encodeMessages((w) => writeCancelRequest(w, processId, secretKey)));
    raw.setTimeout(5_000, done);
    raw.on('error', done);
    raw.on('close', done);
    const tlsOptions = tls ? buildTlsConnectOptions(tls, host) : undefined;
    raw.on('connect', () => {
      if (!tlsOptions) {
        sendCancel();
        return;
      }
      raw.once('data', (answer: Buffer) => {
        if (answer.length !== 1 || answer[0] !== 0x53 /* S */) {
          done();
          return;
        }
        socket = connectTls({ ...tlsOptions, socket: raw });
        socket.on('error', done);
        socket.on('close', done);
        socket.on('secureConnect', sendCancel);
        // The server answers nothing and closes; a read keeps the stream flowing to its end.
        socket.resume();
      });
      raw.write(encodeMessages((w) => writeSslRequest(w)));
    });
  });
}
