import type { FieldDescription } from '../../../../proxy/pg/protocol/backend-parser.ts';

/**
 * Byte builders for every protocol message, written independently of the serializer under test:
 * plain arrays of bytes concatenated at the end, so a serializer bug cannot hide a parser bug.
 */

/** Accumulates big-endian fields, then frames them as a tagged message or startup packet. */
export class Bytes {
  private readonly parts: Buffer[] = [];

  int8(value: number): this {
    this.parts.push(Buffer.from([value & 0xff]));
    return this;
  }

  int16(value: number): this {
    const b = Buffer.alloc(2);
    b.writeInt16BE(value);
    this.parts.push(b);
    return this;
  }

  int32(value: number): this {
    const b = Buffer.alloc(4);
    if (value > 0x7fffffff) b.writeUInt32BE(value);
    else b.writeInt32BE(value);
    this.parts.push(b);
    return this;
  }

  cstring(text: string): this {
    this.parts.push(Buffer.from(text, 'utf8'), Buffer.from([0]));
    return this;
  }

  raw(data: Buffer | string): this {
    this.parts.push(typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
    return this;
  }

  /** Int32 length then the bytes, or -1 for null. */
  value(data: Buffer | string | null): this {
    if (data === null) return this.int32(-1);
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    return this.int32(bytes.length).raw(bytes);
  }

  body(): Buffer {
    return Buffer.concat(this.parts);
  }

  /** Frames the fields as a tagged message: tag, Int32 length (body + 4), body. */
  message(tag: string): Buffer {
    const body = this.body();
    const header = Buffer.alloc(5);
    header.write(tag, 0, 'latin1');
    header.writeInt32BE(body.length + 4, 1);
    return Buffer.concat([header, body]);
  }

  /** Frames the fields as an untagged startup packet: Int32 length (body + 4), body. */
  packet(): Buffer {
    const body = this.body();
    const header = Buffer.alloc(4);
    header.writeInt32BE(body.length + 4);
    return Buffer.concat([header, body]);
  }
}

const b = () => new Bytes();

/** Client → server messages. */
export const frontend = {
  startup: (params: Record<string, string>, version = 196608) => {
    const out = b().int32(version);
    for (const [k, v] of Object.entries(params)) out.cstring(k).cstring(v);
    return out.int8(0).packet();
  },
  sslRequest: () => b().int32(80877103).packet(),
  gssEncRequest: () => b().int32(80877104).packet(),
  cancelRequest: (pid: number, key: number) => b().int32(80877102).int32(pid).int32(key).packet(),
  query: (sql: string) => b().cstring(sql).message('Q'),
  parse: (name: string, sql: string, types: number[] = []) => {
    const out = b().cstring(name).cstring(sql).int16(types.length);
    for (const t of types) out.int32(t);
    return out.message('P');
  },
  bind: (
    portal: string,
    statement: string,
    formats: number[],
    values: (string | Buffer | null)[],
    results: number[],
  ) => {
    const out = b().cstring(portal).cstring(statement).int16(formats.length);
    for (const f of formats) out.int16(f);
    out.int16(values.length);
    for (const v of values) out.value(v);
    out.int16(results.length);
    for (const f of results) out.int16(f);
    return out.message('B');
  },
  describe: (kind: 'S' | 'P', name: string) => b().raw(kind).cstring(name).message('D'),
  close: (kind: 'S' | 'P', name: string) => b().raw(kind).cstring(name).message('C'),
  execute: (portal: string, rows: number) => b().cstring(portal).int32(rows).message('E'),
  sync: () => b().message('S'),
  flush: () => b().message('H'),
  terminate: () => b().message('X'),
  copyData: (data: string | Buffer) => b().raw(data).message('d'),
  copyDone: () => b().message('c'),
  copyFail: (reason: string) => b().cstring(reason).message('f'),
  password: (password: string) => b().cstring(password).message('p'),
  saslInitialResponse: (mechanism: string, data: string | null) =>
    b().cstring(mechanism).value(data).message('p'),
  saslResponse: (data: string) => b().raw(data).message('p'),
  functionCall: (oid: number, formats: number[], args: (string | null)[], resultFormat: number) => {
    const out = b().int32(oid).int16(formats.length);
    for (const f of formats) out.int16(f);
    out.int16(args.length);
    for (const a of args) out.value(a);
    return out.int16(resultFormat).message('F');
  },
};

/** A RowDescription field as the builders take it. */
export type TestField = FieldDescription;

/** Server → client messages. */
export const backend = {
  authenticationOk: () => b().int32(0).message('R'),
  authenticationCleartext: () => b().int32(3).message('R'),
  authenticationMd5: (salt: Buffer) => b().int32(5).raw(salt).message('R'),
  authenticationSasl: (mechanisms: string[]) => {
    const out = b().int32(10);
    for (const m of mechanisms) out.cstring(m);
    return out.int8(0).message('R');
  },
  authenticationSaslContinue: (data: string) => b().int32(11).raw(data).message('R'),
  authenticationSaslFinal: (data: string) => b().int32(12).raw(data).message('R'),
  authenticationGss: () => b().int32(7).message('R'),
  parameterStatus: (name: string, value: string) => b().cstring(name).cstring(value).message('S'),
  backendKeyData: (pid: number, key: number) => b().int32(pid).int32(key).message('K'),
  readyForQuery: (status: 'I' | 'T' | 'E') => b().raw(status).message('Z'),
  rowDescription: (fields: TestField[]) => {
    const out = b().int16(fields.length);
    for (const f of fields) {
      out.cstring(f.name).int32(f.tableOid).int16(f.columnAttribute).int32(f.typeOid);
      out.int16(f.typeSize).int32(f.typeModifier).int16(f.format);
    }
    return out.message('T');
  },
  dataRow: (values: (string | Buffer | null)[]) => {
    const out = b().int16(values.length);
    for (const v of values) out.value(v);
    return out.message('D');
  },
  commandComplete: (tag: string) => b().cstring(tag).message('C'),
  fieldList: (tag: 'E' | 'N', fields: [string, string][]) => {
    const out = b();
    for (const [k, v] of fields) out.raw(k).cstring(v);
    return out.int8(0).message(tag);
  },
  copyResponse: (tag: 'G' | 'H' | 'W', format: number, columns: number[]) => {
    const out = b().int8(format).int16(columns.length);
    for (const c of columns) out.int16(c);
    return out.message(tag);
  },
  copyData: (data: string | Buffer) => b().raw(data).message('d'),
  copyDone: () => b().message('c'),
  notification: (pid: number, channel: string, payload: string) =>
    b().int32(pid).cstring(channel).cstring(payload).message('A'),
  parameterDescription: (types: number[]) => {
    const out = b().int16(types.length);
    for (const t of types) out.int32(t);
    return out.message('t');
  },
  functionCallResponse: (value: string | null) => b().value(value).message('V'),
  negotiateProtocolVersion: (minor: number, options: string[]) => {
    const out = b().int32(minor).int32(options.length);
    for (const o of options) out.cstring(o);
    return out.message('v');
  },
  empty: (tag: '1' | '2' | '3' | 'n' | 's' | 'I') => b().message(tag),
};
