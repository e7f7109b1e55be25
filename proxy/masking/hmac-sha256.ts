/**
 * HMAC-SHA-256 (RFC 2104, FIPS 180-4) for the short values the `hash` style tokenizes.
 *
 * Why not `crypto.createHmac`: a masked column calls it once per row, and for a short value the
 * cost is the native object's creation and key set-up, several times the hashing itself. Here
 * the key's inner and outer pad blocks are compressed once, so a value of up to 55 bytes costs
 * two compressions and no allocation. Results are identical to `createHmac` (tested); values
 * longer than {@link MAX_INLINE_BYTES} go to `createHmac`, where the native speed wins.
 */
import { createHash, createHmac } from 'node:crypto';

/** Longest value hashed here; longer ones use `createHmac`. */
export const MAX_INLINE_BYTES = 1024;

const K = Int32Array.of(
  0x428a2f98,
  0x71374491,
  0xb5c0fbcf,
  0xe9b5dba5,
  0x3956c25b,
  0x59f111f1,
  0x923f82a4,
  0xab1c5ed5,
  0xd807aa98,
  0x12835b01,
  0x243185be,
  0x550c7dc3,
  0x72be5d74,
  0x80deb1fe,
  0x9bdc06a7,
  0xc19bf174,
  0xe49b69c1,
  0xefbe4786,
  0x0fc19dc6,
  0x240ca1cc,
  0x2de92c6f,
  0x4a7484aa,
  0x5cb0a9dc,
  0x76f988da,
  0x983e5152,
  0xa831c66d,
  0xb00327c8,
  0xbf597fc7,
  0xc6e00bf3,
  0xd5a79147,
  0x06ca6351,
  0x14292967,
  0x27b70a85,
  0x2e1b2138,
  0x4d2c6dfc,
  0x53380d13,
  0x650a7354,
  0x766a0abb,
  0x81c2c92e,
  0x92722c85,
  0xa2bfe8a1,
  0xa81a664b,
  0xc24b8b70,
  0xc76c51a3,
  0xd192e819,
  0xd6990624,
  0xf40e3585,
  0x106aa070,
  0x19a4c116,
  0x1e376c08,
  0x2748774c,
  0x34b0bcb5,
  0x391c0cb3,
  0x4ed8aa4a,
  0x5b9cca4f,
  0x682e6ff3,
  0x748f82ee,
  0x78a5636f,
  0x84c87814,
  0x8cc70208,
  0x90befffa,
  0xa4506ceb,
  0xbef9a3f7,
  0xc67178f2,
);
const IV = Int32Array.of(
  0x6a09e667,
  0xbb67ae85,
  0x3c6ef372,
  0xa54ff53a,
  0x510e527f,
  0x9b05688c,
  0x1f83d9ab,
  0x5be0cd19,
);
const BLOCK = 64;

const schedule = new Int32Array(64);
const tail = new Uint8Array(2 * BLOCK);
const tailView = new DataView(tail.buffer);
const inner = new Int32Array(8);
const outer = new Int32Array(8);

/** One SHA-256 compression of `bytes[offset, offset + 64)` into `h`. */
function compress(h: Int32Array, bytes: Uint8Array, offset: number): void {
  const w = schedule;
  for (let t = 0; t < 16; t++) {
    const j = offset + t * 4;
    w[t] = (bytes[j]! << 24) | (bytes[j + 1]! << 16) | (bytes[j + 2]! << 8) | bytes[j + 3]!;
  }
  for (let t = 16; t < 64; t++) {
    const a = w[t - 15]!;
    const b = w[t - 2]!;
    const s0 = ((a >>> 7) | (a << 25)) ^ ((a >>> 18) | (a << 14)) ^ (a >>> 3);
    const s1 = ((b >>> 17) | (b << 15)) ^ ((b >>> 19) | (b << 13)) ^ (b >>> 10);
    w[t] = (w[t - 16]! + s0 + w[t - 7]! + s1) | 0;
  }
  let a = h[0]!;
  let b = h[1]!;
  let c = h[2]!;
  let d = h[3]!;
  let e = h[4]!;
  let f = h[5]!;
  let g = h[6]!;
  let k = h[7]!;
  for (let t = 0; t < 64; t++) {
    const s1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    const t1 = (k + s1 + ((e & f) ^ (~e & g)) + K[t]! + w[t]!) | 0;
    const s0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    const t2 = (s0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
    k = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = b;
    b = a;
    a = (t1 + t2) | 0;
  }
  h[0] = (h[0]! + a) | 0;
  h[1] = (h[1]! + b) | 0;
  h[2] = (h[2]! + c) | 0;
  h[3] = (h[3]! + d) | 0;
  h[4] = (h[4]! + e) | 0;
  h[5] = (h[5]! + f) | 0;
  h[6] = (h[6]! + g) | 0;
  h[7] = (h[7]! + k) | 0;
}

/** Hashes the rest of a message: `bytes[0, length)` after `prefixBytes` already compressed into `h`. */
function finish(h: Int32Array, bytes: Uint8Array, length: number, prefixBytes: number): void {
  let offset = 0;
  for (; offset + BLOCK <= length; offset += BLOCK) compress(h, bytes, offset);
  const rest = length - offset;
  const padded = rest + 9 <= BLOCK ? BLOCK : 2 * BLOCK;
  tail.fill(0, 0, padded);
  tail.set(bytes.subarray(offset, length));
  tail[rest] = 0x80;
  const bits = (prefixBytes + length) * 8;
  const high = Math.floor(bits / 0x1_0000_0000);
  tailView.setUint32(padded - 8, high);
  tailView.setUint32(padded - 4, bits >>> 0);
  compress(h, tail, 0);
  if (padded > BLOCK) compress(h, tail, BLOCK);
}

function hex8(word: number): string {
  return (word >>> 0).toString(16).padStart(8, '0');
}

/** An HMAC-SHA-256 key with its pad blocks precompressed. */
export class HmacSha256 {
  readonly #key: Buffer;
  readonly #innerStart = new Int32Array(8);
  readonly #outerStart = new Int32Array(8);
  readonly #digest = new Uint8Array(32);

  constructor(key: Uint8Array) {
    this.#key = Buffer.from(key.length > BLOCK ? createHash('sha256').update(key).digest() : key);
    const pad = new Uint8Array(BLOCK);
    for (const [start, xor] of [
      [this.#innerStart, 0x36],
      [this.#outerStart, 0x5c],
    ] as const) {
      pad.fill(xor);
      for (let i = 0; i < this.#key.length; i++) pad[i] = this.#key[i]! ^ xor;
      start.set(IV);
      compress(start, pad, 0);
    }
  }

  /** The first `hexChars` (at most 16) hex digits of HMAC-SHA-256(key, `bytes[0, length)`). */
  hexPrefix(bytes: Uint8Array, length: number, hexChars: number): string {
    if (length > MAX_INLINE_BYTES) {
      return createHmac('sha256', this.#key)
        .update(bytes.subarray(0, length))
        .digest('hex')
        .slice(0, hexChars);
    }
    inner.set(this.#innerStart);
    finish(inner, bytes, length, BLOCK);
    const digest = this.#digest;
    for (let i = 0; i < 8; i++) {
      const word = inner[i]!;
      digest[i * 4] = word >>> 24;
      digest[i * 4 + 1] = (word >>> 16) & 0xff;
      digest[i * 4 + 2] = (word >>> 8) & 0xff;
      digest[i * 4 + 3] = word & 0xff;
    }
    outer.set(this.#outerStart);
    finish(outer, digest, 32, BLOCK);
    return (hex8(outer[0]!) + hex8(outer[1]!)).slice(0, hexChars);
  }
}
