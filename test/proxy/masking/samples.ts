/**
 * Sample values for the masking tests. Tokens are built at run time so no literal in the source
 * looks like a live credential.
 */

/** Base64url of a JSON value. */
export function encodeSegment(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

/** A JWT with an HS256 header and a payload of about `payloadBytes` bytes. */
export function buildJwt(payloadBytes = 40): string {
  const payload = { sub: 'user-1234', pad: 'p'.repeat(Math.max(0, payloadBytes - 24)) };
  return `${encodeSegment({ alg: 'HS256', typ: 'JWT' })}.${encodeSegment(payload)}.${'s'.repeat(43)}`;
}

/** Appends the Luhn check digit to `body` (ASCII digits). */
export function withLuhnDigit(body: string): string {
  for (let d = 0; d <= 9; d++) {
    const digits = body + d;
    let sum = 0;
    for (let i = 0; i < digits.length; i++) {
      let n = Number(digits[digits.length - 1 - i]);
      if (i % 2 === 1) n = n * 2 > 9 ? n * 2 - 9 : n * 2;
      sum += n;
    }
    if (sum % 10 === 0) return digits;
  }
  throw new Error('unreachable');
}

export const GITHUB_TOKEN = 'ghp_' + 'A1b2C3d4E5'.repeat(3) + 'f6G7h8';
export const GITHUB_PAT = 'github_pat_' + '11ABCDEFG0'.repeat(2) + '_' + 'x9'.repeat(30);
export const AWS_KEY_ID = 'AKIA' + 'IOSFODNN7EXAMPLE';
export const SLACK_TOKEN = 'xoxb-' + '123456789012-1234567890123-' + 'AbCdEfGhIjKlMnOpQrStUvWx';
export const STRIPE_KEY = 'sk_live_' + '4eC39HqLyjWDarjtT1zdp7dc';
export const GOOGLE_KEY = 'AIza' + 'SyDdI0hCZtE6vySjMm-WEfRq3CPzqKqqsHI';
export const PRIVATE_KEY = [
  '-----BEGIN RSA PRIVATE KEY-----',
  'MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun',
  'VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK',
  'LxoS2tFczGkPLPgizskuemMghRniWaoLcyehkd3qqGElvW/VDL5AaWTg0nLVkjRo',
  '-----END RSA PRIVATE KEY-----',
].join('\n');
