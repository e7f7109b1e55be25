import { MalformedMessageError } from './errors.ts';

/**
 * A cursor over one message body that never reads past its end: every overrun, missing
 * terminator or negative length becomes a {@link MalformedMessageError}, never a RangeError.
 * Byte values are returned as zero-copy views of the body.
 */
export class BodyReader {
  private offset: number;
  private readonly end: number;

  /**
   * @param buffer - the bytes holding the message.
   * @param start - first body byte (after tag and length).
   * @param end - one past the last body byte.
   * @param what - message name used in error messages (`Bind`).
   */
  constructor(
    private readonly buffer: Buffer,
    start: number,
    end: number,
    private readonly what: string,
  ) {
    this.offset = start;
    this.end = end;
  }

  /** Bytes left to read. */
  get remaining(): number {
    return this.end - this.offset;
  }

  /** Reads an unsigned byte. */
  readByte(): number {
    this.need(1);
    return this.buffer[this.offset++]!;
  }

  /** Reads a signed 16-bit big-endian integer. */
  readInt16(): number {
    this.need(2);
    const value = this.buffer.readInt16BE(this.offset);
    this.offset += 2;
    return value;
  }

  /** Reads an unsigned 16-bit count; PostgreSQL treats counts as unsigned 16-bit on the wire. */
  readUInt16(): number {
    this.need(2);
    const value = this.buffer.readUInt16BE(this.offset);
    this.offset += 2;
    return value;
  }

  /** Reads a signed 32-bit big-endian integer. */
  readInt32(): number {
    this.need(4);
    const value = this.buffer.readInt32BE(this.offset);
    this.offset += 4;
    return value;
  }

  /** Reads an unsigned 32-bit big-endian integer (OIDs). */
  readUInt32(): number {
    this.need(4);
    const value = this.buffer.readUInt32BE(this.offset);
    this.offset += 4;
    return value;
  }

  /** Reads a NUL-terminated UTF-8 string; the terminator must lie inside the body. */
  readCString(): string {
    const zero = this.buffer.indexOf(0, this.offset);
    if (zero < 0 || zero >= this.end) {
      throw new MalformedMessageError(`${this.what}: string is not terminated inside the message`, {
        offset: this.offset,
      });
    }
    const text = this.buffer.toString('utf8', this.offset, zero);
    this.offset = zero + 1;
    return text;
  }

  /** Reads a NUL-terminated string that must be the last field of the body. */
  readFinalCString(): string {
    const text = this.readCString();
    this.expectEnd();
    return text;
  }

  /** Returns a view of the next `length` bytes. */
  readBytes(length: number): Buffer {
    this.need(length);
    const view = this.buffer.subarray(this.offset, this.offset + length);
    this.offset += length;
    return view;
  }

  /** Reads an Int32 length then that many bytes; -1 is NULL, any other negative length is malformed. */
  readNullableBytes(): Buffer | null {
    const length = this.readInt32();
    if (length === -1) return null;
    if (length < 0) {
      throw new MalformedMessageError(`${this.what}: negative value length ${length}`, { length });
    }
    return this.readBytes(length);
  }

  /** Returns a view of every byte left. */
  readRest(): Buffer {
    const view = this.buffer.subarray(this.offset, this.end);
    this.offset = this.end;
    return view;
  }

  /** Checks that a count of fixed-size items fits in what is left, before allocating for them. */
  expectItems(count: number, minItemSize: number): void {
    if (count * minItemSize > this.remaining) {
      throw new MalformedMessageError(`${this.what}: count ${count} overruns the message`, { count });
    }
  }

  /** Requires the body to be fully consumed (PostgreSQL's pq_getmsgend). */
  expectEnd(): void {
    if (this.offset !== this.end) {
      throw new MalformedMessageError(`${this.what}: ${this.end - this.offset} unexpected trailing bytes`, {
        trailing: this.end - this.offset,
      });
    }
  }

  private need(length: number): void {
    if (length > this.end - this.offset) {
      throw new MalformedMessageError(`${this.what}: message ends before its fields do`, {
        offset: this.offset,
      });
    }
  }
}
