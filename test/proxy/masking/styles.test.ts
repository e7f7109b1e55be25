import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  keepLast4,
  keepLast4Bytes,
  MaskingKey,
  renderColumnValue,
  renderSpan,
  writeLast4Ascii,
} from '../../../proxy/masking/styles.ts';

describe('keepLast4', () => {
  const cases: [string, string][] = [
    ['4242 4242 4242 4242', '**** **** **** 4242'],
    ['4242-4242-4242-4242', '****-****-****-4242'],
    ['4242424242424242', '************4242'],
    ['123-45-6789', '***-**-6789'],
    ['DE89 3704 0044 0532 0130 00', '**** **** **** **** **30 00'],
    ['alice@example.com', '*****@******e.com'],
    ['1234567', '*******'],
    ['a@b.co', '*@*.**'],
    ['José García 12345678', '**** ****** ****5678'],
    ['', ''],
  ];
  for (const [input, expected] of cases) {
    it(`${JSON.stringify(input)} → ${JSON.stringify(expected)}`, () =>
      assert.equal(keepLast4(input), expected));
    it(`bytes: ${JSON.stringify(input)} → ${JSON.stringify(expected)}`, () => {
      const bytes = Buffer.from(input);
      assert.equal(keepLast4Bytes(bytes).toString('utf8'), expected);
      assert.equal(bytes.toString('utf8'), input, 'the input bytes are left as they were');
    });
    it(`in place: ${JSON.stringify(input)} → ${JSON.stringify(expected)} or refused when not ASCII`, () => {
      const bytes = Buffer.from(`[${input}]`);
      const out = Buffer.alloc(bytes.length + 1, '#');
      const written = writeLast4Ascii(bytes, 1, bytes.length - 1, out, 2);
      assert.equal(written, /^[\x00-\x7f]*$/.test(input));
      if (written) assert.equal(out.toString('latin1'), `##${expected}#`);
      else {
        const untouched = out.toString('latin1');
        assert.equal(untouched.slice(0, 2) + untouched.slice(-1), '###', 'nothing written outside the value');
      }
    });
  }
  it('bytes that are not UTF-8 are starred as their decoded text is', () => {
    const bytes = Buffer.from([0xff, 0x34, 0x32, 0x34, 0x32, 0x34, 0x32, 0x34, 0x32, 0x31]);
    assert.equal(keepLast4Bytes(bytes).toString('utf8'), keepLast4(bytes.toString('utf8')));
  });
});

describe('hash style', () => {
  const key = new MaskingKey(Buffer.alloc(32, 1));
  const otherKey = new MaskingKey(Buffer.alloc(32, 2));

  it('renders tok_ and 16 hex digits', () => {
    assert.match(key.tokenize('alice@example.com'), /^tok_[0-9a-f]{16}$/);
  });
  it('is stable for the same input and key', () => {
    assert.equal(key.tokenize('alice@example.com'), key.tokenize('alice@example.com'));
    assert.equal(
      key.tokenize('alice@example.com'),
      new MaskingKey(Buffer.alloc(32, 1)).tokenize('alice@example.com'),
    );
  });
  it('separates inputs and keys', () => {
    assert.notEqual(key.tokenize('alice@example.com'), key.tokenize('alice@example.org'));
    assert.notEqual(key.tokenize('alice@example.com'), otherKey.tokenize('alice@example.com'));
  });
  it('hashes the UTF-8 bytes, so a string and its bytes agree', () => {
    assert.equal(key.tokenize('José'), key.tokenize(Buffer.from('José')));
    assert.equal(key.tokenize(Buffer.from('José').toString('latin1'), 'latin1'), key.tokenize('José'));
  });
});

describe('renderSpan and renderColumnValue', () => {
  const key = new MaskingKey(Buffer.alloc(32, 1));
  it('labels detector hits', () => {
    assert.equal(renderSpan('redact', 'a@b.co', 'email', key, 'utf8'), '[REDACTED:email]');
    assert.match(renderSpan('hash', 'a@b.co', 'email', key, 'utf8'), /^\[email:tok_[0-9a-f]{16}\]$/);
    assert.equal(renderSpan('last4', '123-45-6789', 'ssn', key, 'utf8'), '***-**-6789');
  });
  it('renders whole column values bare', () => {
    assert.equal(renderColumnValue('redact', 'x', key), '[REDACTED]');
    assert.equal(renderColumnValue('hash', 'x', key), key.tokenize('x'));
    assert.equal(renderColumnValue('last4', Buffer.from('4242424242424242'), key), '************4242');
  });
  it('falls back to redaction when hash has no key', () => {
    assert.equal(renderSpan('hash', 'a@b.co', 'email', undefined, 'utf8'), '[REDACTED:email]');
    assert.equal(renderColumnValue('hash', 'x', undefined), '[REDACTED]');
  });
});
