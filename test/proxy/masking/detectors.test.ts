import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isIbanValid, isLuhnValid, isSsnValid } from '../../../proxy/masking/checksums.ts';
import { compileMasking } from '../../../proxy/masking/config.ts';
import {
  type DetectorName,
  findApiKeys,
  findCards,
  findEmails,
  findIbans,
  findJwts,
  findPhones,
  findSsns,
  type Span,
} from '../../../proxy/masking/detectors.ts';
import { createMasker } from '../../../proxy/masking/masker.ts';
import {
  AWS_KEY_ID,
  buildJwt,
  encodeSegment,
  GITHUB_PAT,
  GITHUB_TOKEN,
  GOOGLE_KEY,
  PRIVATE_KEY,
  SLACK_TOKEN,
  STRIPE_KEY,
  withLuhnDigit,
} from './samples.ts';

type Finder = (text: string) => Span[];

function texts(text: string, spans: Span[]): string[] {
  return spans.map((s) => text.slice(s.start, s.end));
}

const masker = createMasker(compileMasking({}));

/**
 * Each case: input, and the exact substrings the detector must report (empty: none). Positive
 * cases also go through the masker, whose byte pre-check must let them reach the detector.
 */
function table(name: string, detector: DetectorName, find: Finder, cases: [string, string[]][]): void {
  describe(name, () => {
    for (const [input, expected] of cases) {
      const what = expected.length ? `finds ${JSON.stringify(expected)}` : 'finds nothing';
      it(`${what} in ${JSON.stringify(input.slice(0, 80))}`, () => {
        assert.deepEqual(texts(input, find(input)), expected);
        if (expected.length > 0) {
          assert.equal(masker.maskValue(input).counts[detector], expected.length);
          assert.equal(masker.maskBuffer(Buffer.from(input)).counts[detector], expected.length);
        }
      });
    }
  });
}

/** Luhn-valid, so a UUID ending in these digits looks like a card to a naive detector. */
const UUID_TAIL = withLuhnDigit('471644665544000');

table('findCards', 'card', findCards, [
  ['4242424242424242', ['4242424242424242']],
  ['card 4242 4242 4242 4242 exp 12/29', ['4242 4242 4242 4242']],
  ['4111-1111-1111-1111', ['4111-1111-1111-1111']],
  ['amex 378282246310005.', ['378282246310005']],
  ['5555555555554444,6011111111111117', ['5555555555554444', '6011111111111117']],
  ['jcb 3530111333300000 then 2025', ['3530111333300000']],
  ['4111111111111111 2025', ['4111111111111111']],
  ['19 digits ' + withLuhnDigit('424242424242424242'), [withLuhnDigit('424242424242424242')]],
  // Near misses.
  ['4242424242424241', []],
  ['4242 4242 4242 4241', []],
  ['424242424242', []],
  ['0000 0000 0000 0000', []],
  ['4242--4242-4242-4242', []],
  ['order 12345678901234567890123', []],
  ['2024-01-15 12:34:56', []],
  [`uuid 123e4567-e89b-12d3-${UUID_TAIL.slice(0, 4)}-${UUID_TAIL.slice(4)}`, []],
  ['card4242424242424242', []],
]);

describe('findCards with requireKnownIin', () => {
  const unknownPrefix = withLuhnDigit('999999999999999');
  it('still finds a Visa number', () => {
    assert.equal(findCards('4242424242424242', { requireKnownIin: true }).length, 1);
  });
  it('skips a Luhn-valid number outside the card networks', () => {
    assert.equal(findCards(unknownPrefix).length, 1);
    assert.equal(findCards(unknownPrefix, { requireKnownIin: true }).length, 0);
  });
});

table('findEmails', 'email', findEmails, [
  ['a@b.co', ['a@b.co']],
  ['mail first.last+tag@sub.example.org now', ['first.last+tag@sub.example.org']],
  ['Key (email)=(a@b.com) already exists.', ['a@b.com']],
  ['<x_y%z@mail-relay.example.io>', ['x_y%z@mail-relay.example.io']],
  ['end of sentence: bob@example.com.', ['bob@example.com']],
  ['two: a@example.com,b@example.net', ['a@example.com', 'b@example.net']],
  ['.dots@example.com', ['dots@example.com']],
  // Near misses.
  ['user@localhost', []],
  ['ssh root@10.0.0.1', []],
  ['@example.com', []],
  ['a@b.c', []],
  ['x@-bad.com', []],
  ['x@bad..com', []],
  ['price 3 @ 4.50', []],
]);

table('findSsns', 'ssn', findSsns, [
  ['123-45-6789', ['123-45-6789']],
  ['ssn: 078-05-1120.', ['078-05-1120']],
  ['665-01-0001 and 899-99-9999', ['665-01-0001', '899-99-9999']],
  // Never-issued ranges and look-alikes.
  ['000-12-3456', []],
  ['666-12-3456', []],
  ['900-12-3456', []],
  ['999-99-9999', []],
  ['123-00-4567', []],
  ['123-45-0000', []],
  ['123-45-67890', []],
  ['1123-45-6789', []],
  ['123456789', []],
  ['2024-01-15', []],
]);

table('findIbans', 'iban', findIbans, [
  ['DE89370400440532013000', ['DE89370400440532013000']],
  ['iban DE89 3704 0044 0532 0130 00 BIC COBADEFFXXX', ['DE89 3704 0044 0532 0130 00']],
  ['GB82 WEST 1234 5698 7654 32', ['GB82 WEST 1234 5698 7654 32']],
  ['NL91ABNA0417164300.', ['NL91ABNA0417164300']],
  ['FR1420041010050500013M02606', ['FR1420041010050500013M02606']],
  ['NO9386011117947', ['NO9386011117947']],
  // Wrong checksums and look-alikes.
  ['DE89370400440532013001', []],
  ['DE00370400440532013000', []],
  ['GB82 WEST 1234 5698 7654 33', []],
  ['AB12', []],
  ['de89370400440532013000', []],
]);

table('findPhones', 'phone', findPhones, [
  ['+14155552671', ['+14155552671']],
  ['call +44 20 7946 0958 today', ['+44 20 7946 0958']],
  ['+1 (415) 555-2671', ['+1 (415) 555-2671']],
  ['+33 1 42 68 53 00', ['+33 1 42 68 53 00']],
  ['(415) 555-2671', ['(415) 555-2671']],
  ['tel: 415-555-2671.', ['415-555-2671']],
  ['415.555.2671', ['415.555.2671']],
  ['1-800-555-0199', ['1-800-555-0199']],
  ['020 7946 0958', ['020 7946 0958']],
  // Plain numbers, dates, IPs, order numbers and short numbers.
  ['order 1234567890', []],
  ['4155552671', []],
  ['ORD-415-555-2671', []],
  ['2024-01-15', []],
  ['15/01/2024 12:34:56', []],
  ['192.168.10.254', []],
  ['10.100.200.3000', []],
  ['version 1.2.3', []],
  ['pi 3.14159265', []],
  ['555-2671', []],
  ['+12345', []],
  ['415-555.2671', []],
  ['1+23456789', []],
  ['invoice 4411', []],
]);

const jwt = buildJwt();
const noneJwt = `${encodeSegment({ alg: 'none' })}.${encodeSegment({ sub: 'x' })}.`;
table('findJwts', 'jwt', findJwts, [
  [jwt, [jwt]],
  [`Authorization: Bearer ${jwt}\n`, [jwt]],
  [`token=${jwt}&x=1`, [jwt]],
  [noneJwt, [noneJwt]],
  // A header without alg, a header that is not JSON, too few segments.
  [`${encodeSegment({ foo: 'bar' })}.${encodeSegment({ sub: 'x' })}.sig`, []],
  ['eyJub3QganNvbg.eyJ4IjoxfQ.sig', []],
  [`${encodeSegment({ alg: 'HS256' })}.onlytwo`, []],
  ['eyJ', []],
]);

table('findApiKeys', 'api_key', findApiKeys, [
  [AWS_KEY_ID, [AWS_KEY_ID]],
  [`aws_access_key_id = ${AWS_KEY_ID}`, [AWS_KEY_ID]],
  ['ASIA' + 'Y34FZKBOKMUTVV7A', ['ASIA' + 'Y34FZKBOKMUTVV7A']],
  [`git remote https://${GITHUB_TOKEN}@github.com/x`, [GITHUB_TOKEN]],
  [GITHUB_PAT, [GITHUB_PAT]],
  [`SLACK=${SLACK_TOKEN}`, [SLACK_TOKEN]],
  [`"${STRIPE_KEY}"`, [STRIPE_KEY]],
  [`key=${GOOGLE_KEY}`, [GOOGLE_KEY]],
  [`x\n${PRIVATE_KEY}\ny`, [PRIVATE_KEY]],
  ['-----BEGIN PRIVATE KEY-----\nMIIEv', ['-----BEGIN PRIVATE KEY-----\nMIIEv']],
  ['-----BEGIN PRIVATE KEY-----\nMIIEv\nQQ==\nroot@host:~# ls', ['-----BEGIN PRIVATE KEY-----\nMIIEv\nQQ==']],
  [
    '-----BEGIN ENCRYPTED PRIVATE KEY-----\r\nProc-Type: 4,ENCRYPTED\r\n\r\nMIIE\r\n-----END ENCRYPTED PRIVATE KEY-----\r\nok',
    [
      '-----BEGIN ENCRYPTED PRIVATE KEY-----\r\nProc-Type: 4,ENCRYPTED\r\n\r\nMIIE\r\n-----END ENCRYPTED PRIVATE KEY-----',
    ],
  ],
  // Look-alikes: wrong length, lower case, test keys, public keys.
  ['AKIA1234', []],
  ['akiaiosfodnn7example', []],
  ['XAKIAIOSFODNN7EXAMPLE', []],
  ['ghp_short', []],
  ['sk_test_4eC39HqLyjWDarjtT1zdp7dc', []],
  ['-----BEGIN PUBLIC KEY-----', []],
  ['xoxb-', []],
]);

describe('checksums', () => {
  const luhn: [string, boolean][] = [
    ['4242424242424242', true],
    ['79927398713', true],
    ['79927398710', false],
    ['', false],
    ['42a2', false],
  ];
  for (const [digits, valid] of luhn) {
    it(`Luhn ${JSON.stringify(digits)} → ${valid}`, () => assert.equal(isLuhnValid(digits), valid));
  }
  const iban: [string, boolean][] = [
    ['DE89370400440532013000', true],
    ['DE89370400440532013001', false],
    ['DE8937040044', false],
    ['DE89 3704 0044 0532 0130 00', false],
    ['X'.repeat(35), false],
  ];
  for (const [text, valid] of iban) {
    it(`IBAN ${JSON.stringify(text)} → ${valid}`, () => assert.equal(isIbanValid(text), valid));
  }
  it('SSN ranges', () => {
    assert.equal(isSsnValid('123', '45', '6789'), true);
    assert.equal(isSsnValid('666', '45', '6789'), false);
  });
});
