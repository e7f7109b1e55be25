import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { inspect } from 'node:util';
import { compileMasking, DEFAULT_DETECTORS, maskingConfigSchema } from '../../../proxy/masking/config.ts';
import { MaskingConfigError, type MaskingErrorCode } from '../../../proxy/masking/errors.ts';

const KEY = 'k'.repeat(32);

function assertConfigError(fn: () => unknown, code: MaskingErrorCode, path: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof MaskingConfigError, `not a MaskingConfigError: ${String(e)}`);
    assert.equal(e.code, code);
    assert.equal(e.path, path);
    assert.ok(e.message.startsWith(`${path}: `), e.message);
    return true;
  });
}

describe('compileMasking', () => {
  it('turns every detector on by default, with styles that need no key', () => {
    for (const config of [undefined, {}, { detectors: {} }]) {
      const compiled = compileMasking(config);
      assert.deepEqual(compiled.detectors, DEFAULT_DETECTORS);
      assert.equal(compiled.key, undefined);
      assert.deepEqual(compiled.columns, []);
      assert.deepEqual(compiled.patterns, []);
    }
  });

  it('applies styles, off and the card IIN option', () => {
    const compiled = compileMasking(
      { detectors: { card: { style: 'redact', require_iin: true }, email: 'hash', phone: 'off' } },
      KEY,
    );
    assert.equal(compiled.detectors.card, 'redact');
    assert.equal(compiled.cardRequireIin, true);
    assert.equal(compiled.detectors.email, 'hash');
    assert.equal(compiled.detectors.phone, null);
    assert.equal(compiled.detectors.ssn, 'redact');
  });

  it('accepts the YAML fragment of the design', () => {
    const compiled = compileMasking(
      {
        key: 'env:WARDEN_MASKING_KEY',
        columns: [{ match: 'customers.email', style: 'hash' }],
        detectors: {
          card: 'last4',
          email: 'hash',
          ssn: 'redact',
          iban: 'last4',
          phone: 'redact',
          jwt: 'redact',
          api_key: 'redact',
        },
        patterns: [{ name: 'employee_id', regex: 'EMP-[0-9]{6}', style: 'redact' }],
      },
      Buffer.alloc(32, 7),
    );
    assert.equal(compiled.columns[0]!.match, 'customers.email');
    assert.equal(compiled.patterns[0]!.label, 'pattern:employee_id');
  });

  it('never prints the key', () => {
    const compiled = compileMasking({ detectors: { email: 'hash' } }, 'super-secret-key-material');
    for (const text of [inspect(compiled, { depth: 5 }), JSON.stringify(compiled), String(compiled.key)]) {
      assert.ok(!text.includes('super-secret'), text);
    }
  });

  const refused: [string, unknown, string | Uint8Array | undefined, MaskingErrorCode, string][] = [
    ['an unknown key', { colour: 'red' }, undefined, 'ERR_MASKING_CONFIG', 'masking'],
    [
      'an unknown detector',
      { detectors: { passport: 'redact' } },
      undefined,
      'ERR_MASKING_CONFIG',
      'masking.detectors',
    ],
    [
      'an unknown style',
      { detectors: { ssn: 'blur' } },
      undefined,
      'ERR_MASKING_CONFIG',
      'masking.detectors.ssn',
    ],
    [
      'a column without style',
      { columns: [{ match: 'a.b' }] },
      undefined,
      'ERR_MASKING_CONFIG',
      'masking.columns[0].style',
    ],
    [
      'a column pattern with four parts',
      { columns: [{ match: 'a.b.c.d', style: 'redact' }] },
      undefined,
      'ERR_MASKING_CONFIG',
      'masking.columns[0].match',
    ],
    [
      'a column pattern with an empty part',
      {
        columns: [
          { match: 'x', style: 'redact' },
          { match: 'customers.', style: 'redact' },
        ],
      },
      undefined,
      'ERR_MASKING_CONFIG',
      'masking.columns[1].match',
    ],
    ['hash without a key', { detectors: { email: 'hash' } }, undefined, 'ERR_MASKING_KEY', 'masking.key'],
    [
      'a hash column without a key',
      { columns: [{ match: 'a', style: 'hash' }] },
      undefined,
      'ERR_MASKING_KEY',
      'masking.key',
    ],
    ['a short key', {}, 'short', 'ERR_MASKING_KEY', 'masking.key'],
    [
      'an invalid regex',
      { patterns: [{ name: 'p', regex: '(unclosed' }] },
      undefined,
      'ERR_MASKING_PATTERN',
      'masking.patterns[0].regex',
    ],
    [
      'a nested quantifier',
      { patterns: [{ name: 'p', regex: '(a+)+b' }] },
      undefined,
      'ERR_MASKING_PATTERN',
      'masking.patterns[0].regex',
    ],
    [
      'a repeated alternation',
      { patterns: [{ name: 'p', regex: '(a|aa)*b' }] },
      undefined,
      'ERR_MASKING_PATTERN',
      'masking.patterns[0].regex',
    ],
    [
      'a nested group quantifier',
      { patterns: [{ name: 'p', regex: '((ab)+c)*' }] },
      undefined,
      'ERR_MASKING_PATTERN',
      'masking.patterns[0].regex',
    ],
    [
      'a back-reference',
      { patterns: [{ name: 'p', regex: '(a)x\\1' }] },
      undefined,
      'ERR_MASKING_PATTERN',
      'masking.patterns[0].regex',
    ],
    [
      'an empty match',
      { patterns: [{ name: 'p', regex: 'x*' }] },
      undefined,
      'ERR_MASKING_PATTERN',
      'masking.patterns[0].regex',
    ],
    [
      'an empty pattern',
      { patterns: [{ name: 'p', regex: '' }] },
      undefined,
      'ERR_MASKING_PATTERN',
      'masking.patterns[0].regex',
    ],
    [
      'a huge pattern',
      { patterns: [{ name: 'p', regex: 'a'.repeat(600) }] },
      undefined,
      'ERR_MASKING_PATTERN',
      'masking.patterns[0].regex',
    ],
    [
      'the g flag',
      { patterns: [{ name: 'p', regex: 'a', flags: 'g' }] },
      undefined,
      'ERR_MASKING_CONFIG',
      'masking.patterns[0].flags',
    ],
    [
      'a bad pattern name',
      { patterns: [{ name: '1 bad', regex: 'a' }] },
      undefined,
      'ERR_MASKING_CONFIG',
      'masking.patterns[0].name',
    ],
    [
      'a duplicate pattern name',
      {
        patterns: [
          { name: 'p', regex: 'a' },
          { name: 'p', regex: 'b' },
        ],
      },
      undefined,
      'ERR_MASKING_CONFIG',
      'masking.patterns[1].name',
    ],
    [
      'a hash pattern without a key',
      { patterns: [{ name: 'p', regex: 'a', style: 'hash' }] },
      undefined,
      'ERR_MASKING_KEY',
      'masking.key',
    ],
    ['not an object', 'masking', undefined, 'ERR_MASKING_CONFIG', 'masking'],
  ];
  for (const [what, config, key, code, path] of refused) {
    it(`refuses ${what} with ${code} at ${path}`, () =>
      assertConfigError(() => compileMasking(config, key), code, path));
  }

  it('names the path under a caller prefix', () => {
    assertConfigError(
      () => compileMasking({ patterns: [{ name: 'p', regex: '[' }] }, undefined, 'targets.prod-db.masking'),
      'ERR_MASKING_PATTERN',
      'targets.prod-db.masking.patterns[0].regex',
    );
  });

  it('accepts safe repeated groups and flags', () => {
    const compiled = compileMasking({
      patterns: [
        { name: 'a', regex: '(?:ab)+c', flags: 'i' },
        { name: 'b', regex: '(?:foo|bar)-[0-9]{4}' },
        { name: 'c', regex: '[(a+)]+x' },
      ],
    });
    assert.equal(compiled.patterns.length, 3);
  });
});

describe('maskingConfigSchema', () => {
  it('fills defaults', () => {
    const parsed = maskingConfigSchema.parse({ patterns: [{ name: 'p', regex: 'x' }] });
    assert.deepEqual(parsed.columns, []);
    assert.deepEqual(parsed.detectors, {});
    assert.equal(parsed.patterns[0]!.style, 'redact');
    assert.equal(parsed.patterns[0]!.flags, '');
  });
});
