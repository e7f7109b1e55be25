import assert from 'node:assert/strict';
import { isUtf8 } from 'node:buffer';
import { describe, it } from 'node:test';
import { compileMasking } from '../../../proxy/masking/config.ts';
import { MaskingError } from '../../../proxy/masking/errors.ts';
import { createMasker, type Masker } from '../../../proxy/masking/masker.ts';
import type { StreamMaskerOptions } from '../../../proxy/masking/stream-masker.ts';
import { AWS_KEY_ID, buildJwt, GITHUB_TOKEN, PRIVATE_KEY } from './samples.ts';

const masker = createMasker(
  compileMasking({ detectors: { email: 'hash' } }, 'stream-test-key-0123456789abcdef'),
);

/** Feeds `chunks` to a fresh stream masker and returns each output piece, the flush last. */
function run(chunks: Buffer[], options?: StreamMaskerOptions, m: Masker = masker): Buffer[] {
  const stream = m.createStreamMasker(options);
  const pieces = chunks.map((chunk) => stream.push(chunk));
  pieces.push(stream.flush());
  assert.equal(stream.pendingBytes, 0);
  return pieces;
}

function splitAt(data: Buffer, ...points: number[]): Buffer[] {
  const bounds = [0, ...points, data.length];
  return bounds.slice(1).map((end, i) => data.subarray(bounds[i], end));
}

/** An escape sequence left open at the end of a piece. */
const OPEN_ESCAPE = /\u001b(?:\[[\u0020-\u003f]*)?$/;

const SECRETS = ['alice@example.com', '4242 4242 4242 4242', '123-45-6789', AWS_KEY_ID, GITHUB_TOKEN];
const jwt = buildJwt();
const transcript = Buffer.from(
  [
    '\u001b[1;32mroot@db-1\u001b[0m:~# psql -c "select * from customers"\r\n',
    ` id | email             | card\r\n  1 | alice@example.com | 4242 4242 4242 4242\r\n`,
    `SSN 123-45-6789 — token ${jwt} café 日本 ✓\r\n`,
    `export AWS_ACCESS_KEY_ID=${AWS_KEY_ID} GH=${GITHUB_TOKEN}\r\n`,
    '\u001b]0;title\u0007\u001b[31mred 4242-4242-4242-4242\u001b[0m done',
  ].join(''),
);

describe('createStreamMasker', () => {
  const whole = Buffer.concat(run([transcript]));

  it('masks a whole transcript like maskBuffer and keeps escapes and UTF-8', () => {
    const text = whole.toString();
    for (const secret of [...SECRETS, jwt, '4242-4242-4242-4242']) assert.ok(!text.includes(secret), secret);
    assert.ok(text.includes('\u001b[1;32mroot@db-1\u001b[0m'));
    assert.ok(text.includes('\u001b]0;title\u0007\u001b[31mred ****-****-****-4242\u001b[0m done'));
    assert.ok(text.includes('café 日本 ✓'));
    assert.ok(text.includes('[REDACTED:jwt]'));
  });

  it('gives the same output at every split point, never a secret, never a broken sequence', () => {
    for (let i = 0; i <= transcript.length; i++) {
      const pieces = run(splitAt(transcript, i));
      assert.deepEqual(Buffer.concat(pieces), whole, `split at ${i}`);
      for (const piece of pieces) {
        assert.ok(isUtf8(piece), `split at ${i}: a piece is not UTF-8`);
        assert.ok(
          !OPEN_ESCAPE.test(piece.toString('latin1')),
          `split at ${i}: a piece ends inside an escape`,
        );
      }
    }
  });

  it('gives the same output for every pair of split points around the card', () => {
    const start = transcript.indexOf('4242 4242');
    for (let i = start - 2; i <= start + 20; i++) {
      for (let j = i; j <= start + 22; j++) {
        assert.deepEqual(Buffer.concat(run(splitAt(transcript, i, j))), whole, `split at ${i}, ${j}`);
      }
    }
  });

  it('gives the same output byte by byte', () => {
    const bytes = Array.from(transcript, (_, i) => transcript.subarray(i, i + 1));
    assert.deepEqual(Buffer.concat(run(bytes)), whole);
  });

  it('counts what it masked', () => {
    const stream = masker.createStreamMasker();
    stream.push(transcript);
    stream.flush();
    assert.deepEqual(stream.counts(), { email: 1, card: 2, ssn: 1, jwt: 1, api_key: 2 });
  });

  it('passes a clean line straight through', () => {
    const stream = masker.createStreamMasker();
    assert.equal(stream.push(Buffer.from('total 0\r\n')).toString(), 'total 0\r\n');
    assert.equal(stream.pendingBytes, 0);
  });

  it('holds an unfinished word until the next chunk or a flush', () => {
    const stream = masker.createStreamMasker();
    assert.equal(stream.push(Buffer.from('ls\r\nroot@host:~# al')).toString(), 'ls\r\nroot@host:~#');
    assert.equal(stream.pendingBytes, 3);
    assert.equal(stream.flush().toString(), ' al');
  });

  it('keeps bytes that are not UTF-8', () => {
    const data = Buffer.concat([
      Buffer.from([0xff, 0x0a, 0xc3]),
      Buffer.from(' 4242424242424242\n'),
      Buffer.from([0xfe]),
    ]);
    const expected = Buffer.concat([
      Buffer.from([0xff, 0x0a, 0xc3]),
      Buffer.from(' ************4242\n'),
      Buffer.from([0xfe]),
    ]);
    for (let i = 0; i <= data.length; i++)
      assert.deepEqual(Buffer.concat(run(splitAt(data, i))), expected, `split at ${i}`);
  });

  it('refuses a chunk that is not a Buffer with ERR_MASKING_INPUT', () => {
    assert.throws(
      () => masker.createStreamMasker().push('x' as unknown as Buffer),
      (e: unknown) => e instanceof MaskingError && e.code === 'ERR_MASKING_INPUT',
    );
  });
});

describe('secrets longer than the hold limit', () => {
  const longJwt = buildJwt(900);
  const payload = longJwt.split('.')[1]!;
  const data = Buffer.from(`Authorization: Bearer ${longJwt}\r\nnext line\r\n`);

  it('never shows a piece of a long JWT, whatever the split', () => {
    for (let i = 0; i <= data.length; i += 7) {
      for (const options of [{}, { maxHoldBytes: 64 }]) {
        const text = Buffer.concat(run(splitAt(data, i), options)).toString();
        for (let k = 0; k + 24 <= payload.length; k += 24) {
          assert.ok(!text.includes(payload.slice(k, k + 24)), `split at ${i}: payload leaked`);
        }
        assert.ok(text.startsWith('Authorization: Bearer [REDACTED:jwt]'), text.slice(0, 60));
        assert.ok(text.endsWith('\r\nnext line\r\n'), `split at ${i}: lost the next line`);
      }
    }
  });

  it('keeps dropping a long token after an idle flush', () => {
    const stream = masker.createStreamMasker({ maxHoldBytes: 64 });
    const cut = data.indexOf(payload) + 300;
    const shown = [
      stream.push(data.subarray(0, cut)),
      stream.flush(),
      stream.push(data.subarray(cut)),
      stream.flush(),
    ];
    assert.equal(Buffer.concat(shown).toString(), 'Authorization: Bearer [REDACTED:jwt]\r\nnext line\r\n');
  });

  it('drops the lines of a private key block, whatever the chunk size', () => {
    const keyLines = PRIVATE_KEY.split('\n').slice(1, -1);
    const output = Buffer.from(`$ cat id_rsa\r\n${PRIVATE_KEY.replaceAll('\n', '\r\n')}\r\n$ `);
    for (const size of [1, 3, 7, 16, 50, 64, 100, 1000]) {
      const chunks: Buffer[] = [];
      for (let i = 0; i < output.length; i += size) chunks.push(output.subarray(i, i + size));
      const text = Buffer.concat(run(chunks, { maxHoldBytes: 64 })).toString();
      for (const line of keyLines)
        assert.ok(!text.includes(line.slice(0, 16)), `chunk ${size}: key material leaked`);
      assert.ok(
        text.startsWith('$ cat id_rsa\r\n[REDACTED:api_key]'),
        `chunk ${size}: ${JSON.stringify(text)}`,
      );
      assert.ok(text.endsWith('$ '), `chunk ${size}: lost the prompt`);
    }
  });

  it('resumes after a private key block cut short', () => {
    const output = `${PRIVATE_KEY.split('\n').slice(0, 3).join('\n')}\nroot@host:~# ls\n`;
    const text = Buffer.concat(run([Buffer.from(output)])).toString();
    assert.equal(text, '[REDACTED:api_key]\nroot@host:~# ls\n');
  });

  it('holds a bounded tail however long the run', () => {
    const stream = masker.createStreamMasker({ maxHoldBytes: 256 });
    let written = 0;
    for (let i = 0; i < 200; i++) {
      written += stream.push(Buffer.from('word '.repeat(1000))).length;
      assert.ok(stream.pendingBytes <= 512, `held ${stream.pendingBytes}`);
    }
    written += stream.flush().length;
    assert.equal(written, 200 * 5000);
  });

  it('holds a bounded tail inside one endless token', () => {
    const stream = masker.createStreamMasker({ maxHoldBytes: 128 });
    for (let i = 0; i < 50; i++) {
      stream.push(Buffer.from('A'.repeat(10_000)));
      assert.ok(stream.pendingBytes <= 256, `held ${stream.pendingBytes}`);
    }
  });
});
