/**
 * A test-only client that logs in through the proxy with SCRAM-SHA-256 and then lets a test send
 * arbitrary bytes (split messages, garbage, oversize lengths) and read the decoded replies.
 */
import { connect, type Socket } from 'node:net';
import { SCRAM_SHA_256, ScramClientSession } from '../../proxy/pg/auth/scram.ts';
import {
  type BackendMessage,
  BackendParser,
  decodeBackendMessage,
} from '../../proxy/pg/protocol/backend-parser.ts';
import {
  encodeMessages,
  writeSaslInitialResponse,
  writeSaslResponse,
  writeStartupMessage,
} from '../../proxy/pg/protocol/serializer.ts';

export interface RawClient {
  socket: Socket;
  /** Every message received so far, decoded. */
  messages: BackendMessage[];
  /** True once the server closed the connection. */
  closed: Promise<void>;
  send(bytes: Buffer): void;
  /** Waits for a message matching `test` (after those already consumed) and returns it. */
  waitFor(test: (m: BackendMessage) => boolean, what?: string): Promise<BackendMessage>;
  /** Collects messages up to and including the next ReadyForQuery. */
  untilReady(): Promise<BackendMessage[]>;
  end(): void;
}

/** Opens a TCP connection without logging in (for pre-login tests). */
export function openRaw(port: number): RawClient {
  return wrap(connect({ host: '127.0.0.1', port }));
}

function wrap(socket: Socket): RawClient {
  const parser = new BackendParser();
  const messages: BackendMessage[] = [];
  let consumed = 0;
  const waiters: (() => void)[] = [];
  const wake = () => {
    for (const w of waiters.splice(0)) w();
  };
  const closed = new Promise<void>((resolve) => {
    socket.on('close', () => {
      resolve();
      wake();
    });
  });
  let isClosed = false;
  void closed.then(() => {
    isClosed = true;
  });
  socket.on('error', () => {});
  socket.on('data', (chunk: Buffer) => {
    try {
      parser.feed(chunk, (_code, raw) => messages.push(decodeBackendMessage(Buffer.from(raw))));
    } catch {
      socket.destroy();
    }
    wake();
  });
  const waitFor = async (test: (m: BackendMessage) => boolean, what = 'message'): Promise<BackendMessage> => {
    for (;;) {
      while (consumed < messages.length) {
        const message = messages[consumed++]!;
        if (test(message)) return message;
      }
      if (isClosed) throw new Error(`connection closed before ${what}`);
      await new Promise<void>((resolve) => waiters.push(resolve));
    }
  };
  return {
    socket,
    messages,
    closed,
    send: (bytes) => socket.write(bytes),
    waitFor,
    async untilReady() {
      const start = consumed;
      await waitFor((m) => m.type === 'readyForQuery', 'ReadyForQuery');
      return messages.slice(start, consumed);
    },
    end: () => socket.destroy(),
  };
}

/** Logs in through the proxy and returns once it is ready for queries. */
export async function loginRaw(options: {
  port: number;
  user: string;
  database: string;
  password: string;
}): Promise<RawClient> {
  const socket = connect({ host: '127.0.0.1', port: options.port });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const client = wrap(socket);
  client.send(
    encodeMessages((w) => writeStartupMessage(w, { user: options.user, database: options.database })),
  );
  const scram = new ScramClientSession(options.password);
  for (;;) {
    const message = await client.waitFor(
      (m) => m.type === 'authentication' || m.type === 'errorResponse' || m.type === 'readyForQuery',
      'login',
    );
    if (message.type === 'readyForQuery') return client;
    if (message.type === 'errorResponse') throw new Error(`login failed: ${message.code} ${message.message}`);
    if (message.type !== 'authentication') continue;
    const request = message.request;
    if (request.type === 'sasl') {
      client.send(
        encodeMessages((w) => writeSaslInitialResponse(w, SCRAM_SHA_256, scram.createClientFirst())),
      );
    } else if (request.type === 'saslContinue') {
      client.send(encodeMessages((w) => writeSaslResponse(w, scram.handleServerFirst(request.data))));
    } else if (request.type === 'saslFinal') {
      scram.verifyServerFinal(request.data);
    }
  }
}
