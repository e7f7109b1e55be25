import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileColumnRule } from '../../../proxy/masking/columns.ts';
import { compileMasking } from '../../../proxy/masking/config.ts';
import { MaskingError } from '../../../proxy/masking/errors.ts';
import { createMasker } from '../../../proxy/masking/masker.ts';
import { AWS_KEY_ID, buildJwt, GITHUB_TOKEN, PRIVATE_KEY, STRIPE_KEY } from './samples.ts';

const KEY = 'masking-test-key-0123456789abcdef';
const masker = createMasker(
  compileMasking(
    {
      detectors: { email: 'hash' },
      patterns: [{ name: 'employee_id', regex: 'EMP-[0-9]{6}' }],
    },
    KEY,
  ),
);
const plain = createMasker(compileMasking({}));

describe('maskValue', () => {
  const cases: [string, string, Record<string, number>][] = [
    ['hello world', 'hello world', {}],
    ['card 4242 4242 4242 4242', 'card **** **** **** 4242', { card: 1 }],
    [
      'ssn 123-45-6789, phone (415) 555-2671',
      'ssn [REDACTED:ssn], phone [REDACTED:phone]',
      { ssn: 1, phone: 1 },
    ],
    ['iban DE89370400440532013000', 'iban ******************3000', { iban: 1 }],
    [`Bearer ${buildJwt()}`, 'Bearer [REDACTED:jwt]', { jwt: 1 }],
    [
      `${AWS_KEY_ID} ${GITHUB_TOKEN} ${STRIPE_KEY}`,
      '[REDACTED:api_key] [REDACTED:api_key] [REDACTED:api_key]',
      { api_key: 3 },
    ],
    [`key:\n${PRIVATE_KEY}\ndone`, 'key:\n[REDACTED:api_key]\ndone', { api_key: 1 }],
    [
      'staff EMP-123456 and EMP-12',
      'staff [REDACTED:pattern:employee_id] and EMP-12',
      { 'pattern:employee_id': 1 },
    ],
    ['2024-01-15 192.168.10.254 order 1234567890', '2024-01-15 192.168.10.254 order 1234567890', {}],
  ];
  for (const [input, expected, counts] of cases) {
    it(`masks ${JSON.stringify(input.slice(0, 60))}`, () => {
      const result = masker.maskValue(input);
      assert.equal(result.text, expected);
      assert.equal(result.changed, input !== expected);
      assert.deepEqual(result.counts, counts);
    });
  }

  it('hashes emails in an ErrorResponse DETAIL to a stable token', () => {
    const detail = 'Key (email)=(a@b.com) already exists.';
    const first = masker.maskValue(detail).text;
    assert.match(first, /^Key \(email\)=\(\[email:tok_[0-9a-f]{16}\]\) already exists\.$/);
    assert.equal(masker.maskValue('a@b.com is taken').text.split(' ')[0], first.slice(13, 13 + 28));
    assert.ok(!first.includes('a@b.com'));
  });

  it('gives another token under another key', () => {
    const other = createMasker(
      compileMasking({ detectors: { email: 'hash' } }, 'another-key-0123456789abcdef'),
    );
    assert.notEqual(other.maskValue('a@b.com').text, masker.maskValue('a@b.com').text);
  });

  it('prefers the longer secret when detectors overlap', () => {
    const result = plain.maskValue(`x ${GITHUB_TOKEN} y`);
    assert.deepEqual(result.counts, { api_key: 1 });
  });

  it('refuses a value that is not a string with ERR_MASKING_INPUT', () => {
    assert.throws(
      () => masker.maskValue(42 as unknown as string),
      (e: unknown) => e instanceof MaskingError && e.code === 'ERR_MASKING_INPUT',
    );
  });
});

describe('column rules', () => {
  const hash = compileColumnRule('customers.email', 'hash', 'c');
  const card = compileColumnRule('*.card_number', 'last4', 'c');
  const redact = compileColumnRule('*.notes', 'redact', 'c');
  const exempt = compileColumnRule('audit.*', 'none', 'c');

  it('masks the whole value in the rule style and counts the rule', () => {
    const result = masker.maskValue('alice@example.com', hash);
    assert.match(result.text, /^tok_[0-9a-f]{16}$/);
    assert.deepEqual(result.counts, { 'column:customers.email': 1 });
    assert.equal(masker.maskValue('4242424242424242', card).text, '************4242');
    assert.equal(masker.maskValue('anything', redact).text, '[REDACTED]');
  });

  it('gives the same token for the same value in any column, so joins still work', () => {
    const other = compileColumnRule('orders.buyer', 'hash', 'c');
    assert.equal(
      masker.maskValue('alice@example.com', hash).text,
      masker.maskValue('alice@example.com', other).text,
    );
  });

  it('agrees between maskValue and maskBuffer', () => {
    for (const rule of [hash, card, redact]) {
      for (const value of ['alice@example.com', 'José 4242424242424242', '']) {
        assert.equal(
          masker.maskBuffer(Buffer.from(value), rule).buffer.toString(),
          masker.maskValue(value, rule).text,
        );
      }
    }
  });

  it('exempts a column with style none from the detectors', () => {
    const buffer = Buffer.from('alice@example.com');
    assert.equal(masker.maskValue('alice@example.com', exempt).changed, false);
    assert.equal(masker.maskBuffer(buffer, exempt).buffer, buffer);
  });
});

describe('maskBuffer', () => {
  it('returns the very same Buffer when nothing can match', () => {
    for (const text of ['', 'hello', 'order 1234567', 'é日本', 'x_y', '2024-01-15']) {
      const buffer = Buffer.from(text);
      const result = plain.maskBuffer(buffer);
      assert.equal(result.buffer, buffer);
      assert.equal(result.changed, false);
      assert.deepEqual(result.counts, {});
    }
  });

  it('returns the same Buffer when a trigger finds nothing real', () => {
    const buffer = Buffer.from('user@localhost 12345678');
    assert.equal(plain.maskBuffer(buffer).buffer, buffer);
  });

  it('masks like maskValue', () => {
    for (const text of [
      'mail alice@example.com',
      'card 4242424242424242 ssn 123-45-6789',
      'Ünïcødé a@b.com 日本 EMP-000001',
    ]) {
      const result = masker.maskBuffer(Buffer.from(text));
      assert.equal(result.buffer.toString(), masker.maskValue(text).text);
      assert.deepEqual(result.counts, masker.maskValue(text).counts);
    }
  });

  it('keeps bytes that are not UTF-8 outside the masked span', () => {
    const prefix = Buffer.from([0xff, 0xfe, 0x80, 0x20]);
    const suffix = Buffer.from([0x20, 0xc3, 0x28, 0xe2, 0x82]);
    for (const m of [plain, masker]) {
      const result = m.maskBuffer(Buffer.concat([prefix, Buffer.from('4242424242424242'), suffix]));
      assert.deepEqual(result.buffer, Buffer.concat([prefix, Buffer.from('************4242'), suffix]));
    }
  });

  it('refuses a value that is not a Buffer with ERR_MASKING_INPUT', () => {
    assert.throws(
      () => masker.maskBuffer('text' as unknown as Buffer),
      (e: unknown) => e instanceof MaskingError && e.code === 'ERR_MASKING_INPUT',
    );
  });
});

describe('huge values', () => {
  it('masks every email in a 4 MB value', () => {
    const line = 'lorem ipsum alice@example.com dolor 4242 4242 4242 4242 sit amet\n';
    const repeats = Math.ceil((4 * 1024 * 1024) / line.length);
    const result = masker.maskValue(line.repeat(repeats));
    assert.deepEqual(result.counts, { email: repeats, card: repeats });
    assert.ok(!result.text.includes('alice@example.com'));
  });

  it('scans custom patterns across window boundaries', () => {
    // Place matches so that some straddle the 4096-character windows.
    const filler = 'x'.repeat(4091);
    const value = `${filler}EMP-123456${filler}EMP-654321`.repeat(20);
    const result = masker.maskValue(value);
    assert.equal(result.counts['pattern:employee_id'], 40);
    assert.ok(!/EMP-\d/.test(result.text));
  });

  it('stays bounded on a pathological digit run and a long run of @', () => {
    for (const value of [
      '9'.repeat(2_000_000),
      '@'.repeat(500_000),
      'a@'.repeat(300_000),
      '-'.repeat(1_000_000),
    ]) {
      const result = plain.maskValue(value);
      assert.equal(typeof result.text, 'string');
    }
  });
});
