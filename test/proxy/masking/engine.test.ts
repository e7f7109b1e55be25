import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileMasking } from '../../../proxy/masking/config.ts';
import { MaskEngine, scanTriggers } from '../../../proxy/masking/engine.ts';

describe('scanTriggers', () => {
  // The fast path: values a database returns all the time must not reach any detector.
  const clean = [
    '',
    '42',
    '123456789012',
    'd41d8cd98f00b204e9800998ecf8427e',
    'Invoice paid by customer, thanks',
    '2024-01-15',
    '2024-01-15 12:34:56.789+00',
    '2024-01-15T12:34:56Z',
    '12:34:56',
    '550e8400-e29b-41d4-a716-446655440000',
    '12345.6789',
    '-98765.4321',
    'pending_review',
    'user_id_12345678',
    't',
    '{"a":1,"b":[1,2,3]}',
    'v1.2.3-rc.4',
    'order 12345678',
    'x@',
    '@',
    'José García, 日本',
    '+0530',
    'Abc',
  ];
  for (const value of clean) {
    it(`lets ${JSON.stringify(value)} through untouched`, () => {
      assert.equal(scanTriggers(value), 0);
      assert.equal(scanTriggers(Buffer.from(value)), 0);
    });
  }

  const candidates = [
    'a@b.co',
    '4242 4242 4242 4242',
    '123-45-6789',
    'DE89370400440532013000',
    '+14155552671',
    '(415) 555-2671',
    '020 7946 0958',
    '0201 2345678',
    'eyJhbGciOi',
    'AKIA',
    'ghp_',
    'github_pat_',
    'sk_live_',
    'xoxb-',
    'AIza',
    '-----BEGIN',
  ];
  for (const value of candidates) {
    it(`sends ${JSON.stringify(value)} to a detector`, () => {
      assert.notEqual(scanTriggers(value), 0);
      assert.equal(scanTriggers(Buffer.from(value)), scanTriggers(value));
    });
  }

  it('reads bytes as it reads text, on random values built from trigger characters', () => {
    // The byte path first runs a cheap pre-check; it must never hide a trigger the full scan sees.
    const alphabet = [
      '0',
      '1',
      '4',
      ' ',
      '-',
      '--',
      '.',
      '(',
      ')',
      '@',
      '+',
      'a',
      'x',
      'xo',
      'ox',
      'A',
      'AKIA',
      'ASIA',
      'AIza',
      'K',
      'ey',
      'J',
      'eyJ',
      '_',
      'gh',
      'p',
      'github_pat',
      'k_live',
      '----BEGIN',
      'DE',
      'Z',
    ];
    let seed = 7;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    let triggered = 0;
    for (let k = 0; k < 20_000; k++) {
      let value = '';
      const parts = 1 + random(12);
      for (let p = 0; p < parts; p++) value += alphabet[random(alphabet.length)];
      const expected = scanTriggers(value);
      if (expected !== 0) triggered++;
      assert.equal(scanTriggers(Buffer.from(value)), expected, JSON.stringify(value));
    }
    assert.ok(triggered > 1_000 && triggered < 19_000, `${triggered} of 20000 triggered`);
  });

  it('lets mayMatch say false only when no enabled detector has a trigger, at any offset in a view', () => {
    // The DataRow hot path reads values in place through one DataView per chunk: the four-byte
    // pre-check must agree with the full scan for every value, offset and set of detectors.
    const alphabet = [
      '0',
      '7',
      ' ',
      '-',
      '--',
      '@',
      '+',
      'a',
      'x',
      'xo',
      'A',
      'AKIA',
      'AS',
      'AI',
      'eyJ',
      'J',
      'y',
      '_',
      'é',
    ];
    const engines = [
      {},
      { detectors: { email: 'off', card: 'off', ssn: 'off', iban: 'off', phone: 'off' } },
      { detectors: { api_key: 'off', jwt: 'off', phone: 'off' } },
      { detectors: { email: 'off', api_key: 'off', jwt: 'off' } },
    ].map((config) => new MaskEngine(compileMasking(config)));
    let seed = 11;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    let clean = 0;
    for (let k = 0; k < 20_000; k++) {
      let value = '';
      const parts = random(10);
      for (let p = 0; p < parts; p++) value += alphabet[random(alphabet.length)];
      const bytes = Buffer.from(value);
      const pad = random(5);
      const chunk = Buffer.concat([Buffer.from('1@_x'.slice(0, pad)), bytes, Buffer.from('9@')]);
      const view = new DataView(chunk.buffer, chunk.byteOffset, chunk.length);
      const triggers = scanTriggers(bytes);
      for (const engine of engines) {
        const may = engine.mayMatch(view, pad, pad + bytes.length);
        if (!may) clean++;
        assert.ok(may || engine.isClean(triggers), `${JSON.stringify(value)}: pre-check hid a trigger`);
      }
    }
    assert.ok(clean > 10_000, `${clean} clean verdicts`);
  });

  it('always says a value may match when custom patterns are configured', () => {
    const engine = new MaskEngine(compileMasking({ patterns: [{ name: 'emp', regex: 'E[0-9]{5}' }] }));
    const bytes = Buffer.from('plain text');
    assert.equal(
      engine.mayMatch(new DataView(bytes.buffer, bytes.byteOffset, bytes.length), 0, bytes.length),
      true,
    );
  });
});
