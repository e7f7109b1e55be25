import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { HmacSha256, MAX_INLINE_BYTES } from '../../../proxy/masking/hmac-sha256.ts';
import { MaskingKey } from '../../../proxy/masking/styles.ts';

describe('HmacSha256', () => {
  // Every padding case: around one and two blocks, the inline limit, and beyond it.
  const lengths = [
    0,
    1,
    31,
    32,
    55,
    56,
    63,
    64,
    65,
    119,
    120,
    127,
    128,
    129,
    1000,
    MAX_INLINE_BYTES,
    MAX_INLINE_BYTES + 1,
    5000,
  ];
  for (const keyLength of [1, 16, 32, 64, 65, 200]) {
    it(`matches createHmac with a ${keyLength}-byte key`, () => {
      const key = randomBytes(keyLength);
      const hmac = new HmacSha256(key);
      for (const length of lengths) {
        const message = randomBytes(length);
        const expected = createHmac('sha256', key).update(message).digest('hex').slice(0, 16);
        assert.equal(hmac.hexPrefix(message, length, 16), expected, `length ${length}`);
      }
    });
  }

  it('matches the RFC 4231 test case 2', () => {
    const hmac = new HmacSha256(Buffer.from('Jefe'));
    const data = Buffer.from('what do ya want for nothing?');
    assert.equal(hmac.hexPrefix(data, data.length, 16), '5bdcc146bf60754e');
  });

  it('hashes only the given length of a larger buffer', () => {
    const hmac = new HmacSha256(Buffer.alloc(32, 1));
    const buffer = Buffer.from('alice@example.com and more');
    assert.equal(hmac.hexPrefix(buffer, 17, 16), hmac.hexPrefix(Buffer.from('alice@example.com'), 17, 16));
  });
});

describe('MaskingKey.tokenize', () => {
  const key = Buffer.alloc(32, 9);
  const masking = new MaskingKey(key);
  for (const value of ['', 'a@b.co', 'José', '日本'.repeat(200), 'x'.repeat(400), 'é'.repeat(2000)]) {
    it(`equals tok_ + createHmac for a ${value.length}-character string`, () => {
      const expected = 'tok_' + createHmac('sha256', key).update(value, 'utf8').digest('hex').slice(0, 16);
      assert.equal(masking.tokenize(value), expected);
      assert.equal(masking.tokenize(Buffer.from(value)), expected);
      assert.equal(masking.tokenize(Buffer.from(value).toString('latin1'), 'latin1'), expected);
    });
  }
});
