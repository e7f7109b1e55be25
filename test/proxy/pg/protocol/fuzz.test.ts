import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BackendParser, decodeBackendMessage } from '../../../../proxy/pg/protocol/backend-parser.ts';
import { ProtocolError } from '../../../../proxy/pg/protocol/errors.ts';
import {
  decodePasswordMessage,
  decodeSaslInitialResponse,
  FrontendParser,
} from '../../../../proxy/pg/protocol/frontend-parser.ts';
import { createRandom } from './split-feed.ts';
import { backend, frontend } from './test-buffers.ts';

const ITERATIONS = 3000;
const LIMIT = 4096;

const validFrontend = Buffer.concat([
  frontend.startup({ user: 'alice', database: 'app' }),
  frontend.query('select 1'),
  frontend.parse('s', 'select $1', [23]),
  frontend.bind('p', 's', [0, 1], ['1', null], [0]),
  frontend.describe('P', 'p'),
  frontend.execute('p', 0),
  frontend.close('S', 's'),
  frontend.copyData('row\n'),
  frontend.copyFail('x'),
  frontend.saslInitialResponse('SCRAM-SHA-256', 'n,,n=,r=abc'),
  frontend.functionCall(1, [0], ['a'], 0),
  frontend.sync(),
  frontend.flush(),
]);

const validBackend = Buffer.concat([
  backend.authenticationSasl(['SCRAM-SHA-256']),
  backend.parameterStatus('a', 'b'),
  backend.backendKeyData(1, 2),
  backend.rowDescription([
    { name: 'x', tableOid: 1, columnAttribute: 1, typeOid: 23, typeSize: 4, typeModifier: -1, format: 0 },
  ]),
  backend.dataRow(['1', null]),
  backend.commandComplete('SELECT 1'),
  backend.fieldList('E', [
    ['C', '42000'],
    ['M', 'm'],
  ]),
  backend.copyResponse('H', 0, [0]),
  backend.notification(1, 'c', 'p'),
  backend.parameterDescription([23]),
  backend.negotiateProtocolVersion(0, ['x']),
  backend.readyForQuery('I'),
]);

/** Random bytes, or a valid stream with a few bytes overwritten, inserted or removed. */
function makeInput(random: () => number, valid: Buffer): Buffer {
  const pick = (n: number) => Math.floor(random() * n);
  if (random() < 0.3) {
    const out = Buffer.alloc(pick(300));
    for (let i = 0; i < out.length; i++) out[i] = pick(256);
    return out;
  }
  let bytes = Buffer.from(valid);
  const mutations = 1 + pick(4);
  for (let m = 0; m < mutations; m++) {
    const at = pick(bytes.length);
    const kind = pick(4);
    if (kind === 0) bytes[at] = pick(256);
    else if (kind === 1) bytes[at] = [0, 0xff, 0x7f, 0x80][pick(4)]!;
    else if (kind === 2)
      bytes = Buffer.concat([bytes.subarray(0, at), Buffer.from([pick(256)]), bytes.subarray(at)]);
    else bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + 1 + pick(8))]);
  }
  return bytes;
}

function* chunksOf(random: () => number, bytes: Buffer): Generator<Buffer> {
  let at = 0;
  while (at < bytes.length) {
    const size = 1 + Math.floor(random() * 40);
    yield bytes.subarray(at, at + size);
    at += size;
  }
}

function expectOnlyProtocolErrors(run: () => void, seed: number, iteration: number): void {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof ProtocolError, `seed ${seed} iteration ${iteration}: ${String(error)}`);
  }
}

describe('fuzz: parsers only return messages or throw ProtocolError', () => {
  it(`frontend parser, ${ITERATIONS} seeded inputs`, () => {
    const seed = 20_241_129;
    const random = createRandom(seed);
    for (let i = 0; i < ITERATIONS; i++) {
      const input = makeInput(random, validFrontend);
      const parser = new FrontendParser({
        maxMessageLength: LIMIT,
        maxCopyDataLength: LIMIT,
        maxAuthMessageLength: LIMIT,
      });
      expectOnlyProtocolErrors(
        () => {
          for (const chunk of chunksOf(random, input)) {
            parser.feed(chunk, (m) => {
              if (m.type === 'authResponse') {
                expectOnlyProtocolErrors(() => decodeSaslInitialResponse(m.body), seed, i);
                expectOnlyProtocolErrors(() => decodePasswordMessage(m.body), seed, i);
              }
            });
            assert.ok(parser.bufferedBytes <= Math.max(LIMIT, 10_000) + 5, 'buffered bytes stay bounded');
          }
        },
        seed,
        i,
      );
    }
  });

  it(`backend parser and every decoder, ${ITERATIONS} seeded inputs`, () => {
    const seed = 7;
    const random = createRandom(seed);
    for (let i = 0; i < ITERATIONS; i++) {
      const input = makeInput(random, validBackend);
      const parser = new BackendParser({ maxMessageLength: LIMIT });
      expectOnlyProtocolErrors(
        () => {
          for (const chunk of chunksOf(random, input)) {
            parser.feed(chunk, (_code, raw) =>
              expectOnlyProtocolErrors(() => decodeBackendMessage(raw), seed, i),
            );
            assert.ok(parser.bufferedBytes <= LIMIT + 1, 'buffered bytes stay bounded');
          }
        },
        seed,
        i,
      );
    }
  });

  it('decoders fed random frames with a correct header only throw ProtocolError', () => {
    const random = createRandom(99);
    const tags = [...'123ACDEGHIKNRSTVWZcdnstv'].map((c) => c.charCodeAt(0));
    for (let i = 0; i < ITERATIONS; i++) {
      const body = Buffer.alloc(Math.floor(random() * 40));
      for (let j = 0; j < body.length; j++) body[j] = random() < 0.3 ? 0 : Math.floor(random() * 256);
      const raw = Buffer.alloc(5 + body.length);
      raw[0] = tags[Math.floor(random() * tags.length)]!;
      raw.writeInt32BE(body.length + 4, 1);
      body.copy(raw, 5);
      expectOnlyProtocolErrors(() => decodeBackendMessage(raw), 99, i);
    }
  });
});
