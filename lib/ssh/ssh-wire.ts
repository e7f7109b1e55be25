/**
 * The SSH wire encoding (RFC 4251 section 5) used by keys, certificates and KRLs: big-endian
 * integers and length-prefixed strings. The reader checks every length against what is left, so
 * a hostile length can never make it read past its buffer or allocate.
 */

/** Builds an SSH-encoded byte string piece by piece. */
export class SshWriter {
  readonly #parts: Buffer[] = [];

  byte(value: number): this {
    this.#parts.push(Buffer.from([value & 0xff]));
    return this;
  }

  uint32(value: number): this {
    const buf = Buffer.alloc(4);
    buf.writeUInt32BE(value >>> 0);
    this.#parts.push(buf);
    return this;
  }

  uint64(value: bigint): this {
    const buf = Buffer.alloc(8);
    buf.writeBigUInt64BE(value);
    this.#parts.push(buf);
    return this;
  }

  /** A `string`: uint32 length, then the bytes (text is UTF-8). */
  string(value: Uint8Array | string): this {
    const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : Buffer.from(value);
    this.uint32(bytes.length);
    this.#parts.push(bytes);
    return this;
  }

  /** Bytes as they are, without a length prefix. */
  raw(value: Uint8Array): this {
    this.#parts.push(Buffer.from(value));
    return this;
  }

  toBuffer(): Buffer {
    return Buffer.concat(this.#parts);
  }
}

/** Reads an SSH-encoded byte string; `fail` builds the error thrown on truncated input. */
export class SshReader {
  readonly #buf: Buffer;
  readonly #fail: (what: string) => Error;
  #offset = 0;

  constructor(buf: Uint8Array, fail: (what: string) => Error) {
    this.#buf = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
    this.#fail = fail;
  }

  get offset(): number {
    return this.#offset;
  }

  get remaining(): number {
    return this.#buf.length - this.#offset;
  }

  #take(length: number, what: string): Buffer {
    if (length > this.remaining) throw this.#fail(`truncated ${what}`);
    const out = this.#buf.subarray(this.#offset, this.#offset + length);
    this.#offset += length;
    return out;
  }

  byte(what = 'byte'): number {
    return this.#take(1, what)[0]!;
  }

  uint32(what = 'uint32'): number {
    return this.#take(4, what).readUInt32BE(0);
  }

  uint64(what = 'uint64'): bigint {
    return this.#take(8, what).readBigUInt64BE(0);
  }

  string(what = 'string'): Buffer {
    const length = this.uint32(`${what} length`);
    return this.#take(length, what);
  }

  /** A string that must be printable UTF-8 text. */
  text(what = 'text'): string {
    const bytes = this.string(what);
    const value = bytes.toString('utf8');
    if (!Buffer.from(value, 'utf8').equals(bytes)) throw this.#fail(`${what} is not UTF-8`);
    return value;
  }

  /** Everything up to `end` (an absolute offset), for re-reading a signed region. */
  slice(start: number, end: number): Buffer {
    return this.#buf.subarray(start, end);
  }

  /** Throws unless every byte was read. */
  end(what: string): void {
    if (this.remaining !== 0) throw this.#fail(`trailing bytes after ${what}`);
  }
}

/** Splits a packed list of strings (principals, KRL key ids). */
export function readStringList(data: Uint8Array, fail: (what: string) => Error, what: string): string[] {
  const reader = new SshReader(data, fail);
  const out: string[] = [];
  while (reader.remaining > 0) out.push(reader.text(what));
  return out;
}

/** Reads a packed list of (name, data) pairs: certificate critical options and extensions. */
export function readNameDataList(
  data: Uint8Array,
  fail: (what: string) => Error,
  what: string,
): { name: string; data: Buffer }[] {
  const reader = new SshReader(data, fail);
  const out: { name: string; data: Buffer }[] = [];
  while (reader.remaining > 0) {
    out.push({ name: reader.text(`${what} name`), data: reader.string(`${what} data`) });
  }
  return out;
}
