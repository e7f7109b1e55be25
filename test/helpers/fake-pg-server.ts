/**
 * A test-only PostgreSQL server built on the pure protocol core: it authenticates clients with
 * SCRAM-SHA-256 ({@link ScramServerSession}), answers every query with one text column holding the
 * query text (simple protocol) or the first parameter (extended protocol), and records the messages
 * it parsed. Enough to prove the frontend parser, the serializer and the SCRAM server against real
 * clients (psql/libpq, pg, postgres). Listens on 127.0.0.1 only.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { SCRAM_SHA_256, ScramServerSession } from '../../proxy/pg/auth/scram.ts';
import {
  decodeSaslInitialResponse,
  decodeSaslResponse,
  type FrontendMessage,
  FrontendParser,
} from '../../proxy/pg/protocol/frontend-parser.ts';
import {
  encodeMessages,
  type MessageWriter,
  writeAuthenticationOk,
  writeAuthenticationSasl,
  writeAuthenticationSaslContinue,
  writeAuthenticationSaslFinal,
  writeBackendKeyData,
  writeBindComplete,
  writeCommandComplete,
  writeDataRow,
  writeEmptyQueryResponse,
  writeEncryptionResponse,
  writeErrorResponse,
  writeParameterDescription,
  writeParameterStatus,
  writeParseComplete,
  writeReadyForQuery,
  writeRowDescription,
} from '../../proxy/pg/protocol/serializer.ts';

export interface FakePgServer {
  port: number;
  /** Every message parsed, per connection, in order. */
  received: FrontendMessage[][];
  close(): Promise<void>;
}

const COLUMN = { tableOid: 0, columnAttribute: 0, typeOid: 25, typeSize: -1, typeModifier: -1, format: 0 };

function writeResult(w: MessageWriter, value: string | null, describe: boolean): void {
  if (describe) writeRowDescription(w, [{ name: 'value', ...COLUMN }]);
  writeDataRow(w, [value]);
  writeCommandComplete(w, 'SELECT 1');
}

/** Starts the fake server; clients must log in with `password` (any user name). */
export function startFakePgServer(password: string): Promise<FakePgServer> {
  const received: FrontendMessage[][] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    const log: FrontendMessage[] = [];
    received.push(log);
    const parser = new FrontendParser();
    const scram = new ScramServerSession({ password });
    let saslStep = 0;
    let lastBind: string | null = null;
    let parameterCount = 0;
    const send = (write: (w: MessageWriter) => void) => socket.write(encodeMessages(write));
    const fail = (code: string, message: string) => {
      send((w) => writeErrorResponse(w, { severity: 'FATAL', code, message }));
      socket.end();
    };
    socket.on('error', () => socket.destroy());
    socket.on('data', (chunk: Buffer) => {
      try {
        parser.feed(chunk, (message) => {
          log.push(message);
          switch (message.type) {
            case 'sslRequest':
            case 'gssEncRequest':
              return send((w) => writeEncryptionResponse(w, false));
            case 'startup':
              return send((w) => writeAuthenticationSasl(w, [SCRAM_SHA_256]));
            case 'authResponse':
              if (saslStep++ === 0) {
                const initial = decodeSaslInitialResponse(message.body);
                return send((w) =>
                  writeAuthenticationSaslContinue(w, scram.handleClientFirst(initial.data ?? '')),
                );
              }
              return send((w) => {
                writeAuthenticationSaslFinal(w, scram.handleClientFinal(decodeSaslResponse(message.body)));
                writeAuthenticationOk(w);
                writeParameterStatus(w, 'server_version', '15.0');
                writeParameterStatus(w, 'client_encoding', 'UTF8');
                writeParameterStatus(w, 'standard_conforming_strings', 'on');
                writeParameterStatus(w, 'integer_datetimes', 'on');
                writeParameterStatus(w, 'DateStyle', 'ISO, MDY');
                writeBackendKeyData(w, 1, 2);
                writeReadyForQuery(w);
              });
            case 'query':
              return send((w) => {
                if (message.sql.trim() === '') writeEmptyQueryResponse(w);
                else writeResult(w, message.sql, true);
                writeReadyForQuery(w);
              });
            case 'parse':
              parameterCount = new Set(message.sql.match(/\$\d+/g) ?? []).size;
              return send((w) => writeParseComplete(w));
            case 'bind':
              lastBind = message.parameters[0]?.toString('utf8') ?? null;
              return send((w) => writeBindComplete(w));
            case 'describe':
              return send((w) => {
                if (message.kind === 'statement')
                  writeParameterDescription(w, new Array(parameterCount).fill(25));
                writeRowDescription(w, [{ name: 'value', ...COLUMN }]);
              });
            case 'execute':
              return send((w) => writeResult(w, lastBind, false));
            case 'sync':
              return send((w) => writeReadyForQuery(w));
            case 'terminate':
              socket.end();
              return;
            default:
              return;
          }
        });
      } catch (error) {
        const code = (error as { code?: string }).code ?? '';
        fail(code === 'ERR_PG_AUTH_FAILED' ? '28P01' : '08P01', code);
      }
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      resolve({
        port,
        received,
        close: () =>
          new Promise<void>((done) => {
            for (const socket of sockets) socket.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}
