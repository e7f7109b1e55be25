/** Ways of cutting a byte stream into TCP-like chunks, for split-point tests. */

/** Yields [label, chunks]: whole, byte by byte, and two chunks cut at every offset. */
export function* chunkings(bytes: Buffer): Generator<[string, Buffer[]]> {
  yield ['whole', [bytes]];
  yield ['byte by byte', [...bytes].map((byte) => Buffer.from([byte]))];
  for (let cut = 1; cut < bytes.length; cut++) {
    yield [`split at ${cut}`, [bytes.subarray(0, cut), bytes.subarray(cut)]];
  }
}

/** Copies chunks so that a parser keeping views of them cannot be fooled by shared memory. */
export function copyChunks(chunks: Buffer[]): Buffer[] {
  return chunks.map((chunk) => Buffer.from(chunk));
}

/** A small seeded PRNG (mulberry32) so fuzz failures reproduce. */
export function createRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
