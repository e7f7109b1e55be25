/**
 * A minimal, test-only PostgreSQL client built on the pure protocol core: connects over TCP to
 * 127.0.0.1, sends a StartupMessage, answers SCRAM-SHA-256 with {@link ScramClientSession} and
 * reports how the server ended the login. Enough to prove the core against a real server.
 */
import { connect } from 'node:net';
import { SCRAM_SHA_256, ScramClientSession } from '../../proxy/pg/auth/scram.ts';
import {
  BackendParser,
  decodeAuthentication,
  decodeErrorResponse,
  decodeParameterStatus,
} from '../../proxy/pg/protocol/backend-parser.ts';
import { BackendCode } from '../../proxy/pg/protocol/message-codes.ts';
import {
  encodeMessages,
  writeSaslInitialResponse,
  writeSaslResponse,
  writeStartupMessage,
  writeTerminate,
} from '../../proxy/pg/protocol/serializer.ts';

export type LoginResult =
  | { ok: true; serverVerified: boolean; parameters: Map<string, string> }
  | { ok: false; sqlState: string; message: string };

/** Logs in with SCRAM-SHA-256 and returns once the server sends ReadyForQuery or an ErrorResponse. */
export function loginWithScram(options: {
  port: number;
  user: string;
  database: string;
  password: string;
}): Promise<LoginResult> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port: options.port });
    const parser = new BackendParser();
    const parameters = new Map<string, string>();
    let scram: ScramClientSession | undefined;
    let serverVerified = false;
    const finish = (result: LoginResult) => {
      socket.end(encodeMessages((w) => writeTerminate(w)));
      resolve(result);
    };
    socket.setTimeout(15_000, () => {
      socket.destroy();
      reject(new Error('login timed out'));
    });
    socket.on('error', reject);
    socket.on('connect', () => {
      socket.write(
        encodeMessages((w) => writeStartupMessage(w, { user: options.user, database: options.database })),
      );
    });
    socket.on('data', (chunk: Buffer) => {
      try {
        parser.feed(chunk, (code, raw) => {
          if (code === BackendCode.ErrorResponse) {
            const error = decodeErrorResponse(raw);
            finish({ ok: false, sqlState: error.code, message: error.message });
          } else if (code === BackendCode.ParameterStatus) {
            const { name, value } = decodeParameterStatus(raw);
            parameters.set(name, value);
          } else if (code === BackendCode.ReadyForQuery) {
            finish({ ok: true, serverVerified, parameters });
          } else if (code === BackendCode.Authentication) {
            const request = decodeAuthentication(raw);
            if (request.type === 'sasl') {
              if (!request.mechanisms.includes(SCRAM_SHA_256)) throw new Error('server does not offer SCRAM');
              scram = new ScramClientSession(options.password);
              const first = scram.createClientFirst();
              socket.write(encodeMessages((w) => writeSaslInitialResponse(w, SCRAM_SHA_256, first)));
            } else if (request.type === 'saslContinue') {
              const final = scram!.handleServerFirst(request.data);
              socket.write(encodeMessages((w) => writeSaslResponse(w, final)));
            } else if (request.type === 'saslFinal') {
              scram!.verifyServerFinal(request.data);
              serverVerified = true;
            } else if (request.type !== 'ok') {
              throw new Error(`unexpected authentication request ${request.type}`);
            }
          }
        });
      } catch (error) {
        socket.destroy();
        reject(error);
      }
    });
  });
}
