/**
 * The server→client hot path: masks the DataRows of a result in one pass over the bytes received.
 * A run of whole DataRows lying back to back in a chunk is walked by offsets (no per-row views,
 * objects or arrays); values that stay are not touched; the first change starts one output
 * buffer for the run, into which the unchanged spans are copied and the replacements written
 * directly. A run with nothing to change costs no copy at all: the caller forwards it as it is.
 * An unchanged span runs on across row ends (a changed row's length is patched at once, from what
 * it became so far and what is left of it), so a row costs one short copy, not one per value. The
 * output buffer comes back through {@link RowRewriter.recycle} once the socket has taken it.
 *
 * What each column needs is decided once per result shape (a {@link RowPlan}): a `redact` rule
 * is a constant, `last4` rewrites ASCII bytes in place, `hash` tokens are cached per session, and
 * content-scanned columns first go through the masker's byte-pair pre-check, which lets most
 * values through without decoding them. Pure: no sockets.
 */
import {
  type ColumnRule,
  keepLast4Bytes,
  type MaskCounts,
  type Masker,
  writeLast4Ascii,
} from '../masking/index.ts';
import { MalformedMessageError } from './protocol/errors.ts';
import { BackendCode } from './protocol/message-codes.ts';

/** What a result column needs, per value. */
export enum ColumnOp {
  /** Forwarded as it is. */
  Skip = 0,
  /** Through the content detectors. */
  Scan = 1,
  /** Replaced by the plan's constant (a `redact` rule). */
  Constant = 2,
  /** Masked by a `last4` rule. */
  Last4 = 3,
  /** Masked by a `hash` rule (tokens cached). */
  Hash = 4,
  /** Masked by another rule through the masker. */
  Rule = 5,
  /** Sent as NULL: a masked column in binary format, which cannot be masked in place. */
  Nullify = 6,
}

/** What to do to each column of a result, decided once per result shape. */
export interface RowPlan {
  /** Per column, a {@link ColumnOp}; columns past the end are scanned, so empty scans every column. */
  ops: Uint8Array;
  /** Per column: the column rule that applies, or null. */
  rules: (ColumnRule | null)[];
  /** Per column: the replacement of a {@link ColumnOp.Constant} column. */
  constants: (Buffer | null)[];
  /** Per column: the count label of its rule, `column:<match>`. */
  labels: (string | null)[];
  /** Per column: values masked by its rule since the counts were last added up. */
  hits: Int32Array;
  /** Sum of `hits`. */
  hitCount: number;
}

/** What the rewriter reports besides the bytes. */
export interface RowHooks {
  /** Counts of a value the content detectors masked. */
  onScanned(counts: MaskCounts): void;
  /** When set, gets each row as sent (`bytes[start, end)`, a whole DataRow) until it returns false. */
  onRow: ((bytes: Buffer, start: number, end: number) => boolean) | null;
}

/** Most `hash` tokens cached per session; the cache starts over when full. */
export const MAX_CACHED_TOKENS = 1024;
/** Longest value whose `hash` token is cached, in bytes. */
export const MAX_CACHED_VALUE = 128;
/** Spans at least this long are copied natively; shorter ones four bytes at a time (cheaper per call). */
const LONG_COPY = 256;
/** Smallest output buffer kept for reuse: above Node's pool size, so it has its own memory. */
const MIN_SPARE = 16 * 1024;
/** Largest output buffer kept for reuse (a read is 64 KiB; its output a quarter more). */
const MAX_SPARE = 128 * 1024;
/** Most output buffers kept for reuse per session: one being filled while one is being sent. */
const MAX_SPARES = 2;

function viewOf(bytes: Buffer): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
}

/** Copies `source[start, end)` to `target` at `at`; returns the offset after it. */
function copySpan(
  source: Buffer,
  sourceView: DataView,
  start: number,
  end: number,
  target: Buffer,
  targetView: DataView,
  at: number,
): number {
  if (end - start >= LONG_COPY) return at + source.copy(target, at, start, end);
  let i = start;
  let o = at;
  for (; i + 4 <= end; i += 4, o += 4) targetView.setInt32(o, sourceView.getInt32(i, true), true);
  for (; i < end; i++) target[o++] = source[i]!;
  return o;
}

/** Masks runs of DataRows by a plan (see the module comment). One per session. */
export class RowRewriter {
  private readonly masker: Masker;
  private readonly tokens = new Map<string, Buffer>();
  /** Output buffers given back by {@link recycle}, for the next rewrites. */
  private readonly spares: Buffer[] = [];

  constructor(masker: Masker) {
    this.masker = masker;
  }

  /**
   * Masks the whole DataRows lying back to back in `data[start, end)`. Returns the bytes to send
   * instead, or null when nothing changed (send `data[start, end)` as it is). Counts rule hits in
   * `plan.hits`. Throws a MalformedMessageError on a row that is not a well-formed DataRow.
   */
  rewrite(data: Buffer, start: number, end: number, plan: RowPlan, hooks: RowHooks): Buffer | null {
    const ops = plan.ops;
    const opCount = ops.length;
    const masker = this.masker;
    let onRow = hooks.onRow;
    const view = viewOf(data);
    let out: Buffer | null = null;
    let outView = view;
    let o = 0;
    let copyFrom = start;
    let pos = start;
    while (pos < end) {
      if (end - pos < 7 || data[pos] !== BackendCode.DataRow) {
        throw new MalformedMessageError('DataRow: not a complete DataRow message');
      }
      const rowEnd = pos + 1 + view.getInt32(pos + 1);
      if (rowEnd > end || rowEnd < pos + 7)
        throw new MalformedMessageError('DataRow: not a complete DataRow message');
      const count = (data[pos + 5]! << 8) | data[pos + 6]!;
      if (count * 4 > rowEnd - pos - 7)
        throw new MalformedMessageError(`DataRow: count ${count} overruns the message`, { count });
      let rowOut = -1;
      let f = pos + 7;
      for (let i = 0; i < count; i++) {
        if (rowEnd - f < 4) throw new MalformedMessageError('DataRow: message ends before its fields do');
        const length = view.getInt32(f);
        const valueStart = f + 4;
        if (length < 0) {
          if (length !== -1)
            throw new MalformedMessageError(`DataRow: negative value length ${length}`, { length });
          f = valueStart;
          continue;
        }
        const valueEnd = valueStart + length;
        if (valueEnd > rowEnd) throw new MalformedMessageError('DataRow: message ends before its fields do');
        const op = i < opCount ? ops[i]! : ColumnOp.Scan;
        if (op === ColumnOp.Skip) {
          f = valueEnd;
          continue;
        }
        let replacement: Buffer | null = null;
        if (op === ColumnOp.Scan) {
          if (!masker.mayMask(view, valueStart, valueEnd)) {
            f = valueEnd;
            continue;
          }
          const result = masker.maskBuffer(data.subarray(valueStart, valueEnd), null);
          if (!result.changed) {
            f = valueEnd;
            continue;
          }
          hooks.onScanned(result.counts);
          replacement = result.buffer;
        } else {
          plan.hits[i]!++;
          plan.hitCount++;
          if (op === ColumnOp.Last4) {
            // Same length for ASCII: copy up to the value and star it on the way.
            const needed = o + (valueStart - copyFrom) + length;
            if (out === null || needed > out.length) {
              out = out === null ? this.allocate(initialSize(end - start, needed)) : grow(out, o, needed);
              outView = viewOf(out);
            }
            o = copySpan(data, view, copyFrom, valueStart, out, outView, o);
            if (rowOut < 0) rowOut = o - (valueStart - pos);
            if (writeLast4Ascii(data, valueStart, valueEnd, out, o)) {
              o += length;
              copyFrom = valueEnd;
              f = valueEnd;
              continue;
            }
            o -= 4;
            copyFrom = f;
            replacement = keepLast4Bytes(data.subarray(valueStart, valueEnd));
          } else if (op === ColumnOp.Constant) replacement = plan.constants[i]!;
          else if (op === ColumnOp.Hash)
            replacement = this.tokenOf(data, valueStart, valueEnd, plan.rules[i]!);
          else if (op === ColumnOp.Rule) {
            replacement = masker.maskBuffer(data.subarray(valueStart, valueEnd), plan.rules[i]).buffer;
          }
        }
        const needed = o + (f - copyFrom) + 4 + (replacement === null ? 0 : replacement.length);
        if (out === null || needed > out.length) {
          out = out === null ? this.allocate(initialSize(end - start, needed)) : grow(out, o, needed);
          outView = viewOf(out);
        }
        o = copySpan(data, view, copyFrom, f, out, outView, o);
        if (rowOut < 0) rowOut = o - (f - pos);
        if (replacement === null) {
          outView.setInt32(o, -1);
          o += 4;
        } else {
          const size = replacement.length;
          outView.setInt32(o, size);
          o += 4;
          if (size >= LONG_COPY) o += replacement.copy(out, o);
          else for (let k = 0; k < size; k++) out[o++] = replacement[k]!;
        }
        copyFrom = valueEnd;
        f = valueEnd;
      }
      if (f !== rowEnd) throw new MalformedMessageError(`DataRow: ${rowEnd - f} unexpected trailing bytes`);
      if (rowOut >= 0 && onRow === null) {
        // The rest of the row joins the next span: its length is what was written since its
        // start plus what is still to copy (`copyFrom` to the row's end).
        outView.setInt32(rowOut + 1, o - rowOut - 1 + (rowEnd - copyFrom));
      } else if (rowOut >= 0) {
        const needed = o + (rowEnd - copyFrom);
        if (needed > out!.length) {
          out = grow(out!, o, needed);
          outView = viewOf(out);
        }
        o = copySpan(data, view, copyFrom, rowEnd, out!, outView, o);
        copyFrom = rowEnd;
        outView.setInt32(rowOut + 1, o - rowOut - 1);
        if (onRow !== null && !onRow(out!, rowOut, o)) onRow = null;
      } else if (onRow !== null && !onRow(data, pos, rowEnd)) onRow = null;
      pos = rowEnd;
    }
    if (out === null) return null;
    const needed = o + (end - copyFrom);
    if (needed > out.length) out = grow(out, o, needed);
    o += data.copy(out, o, copyFrom, end);
    return out.subarray(0, o);
  }

  /**
   * Takes back the bytes a {@link rewrite} returned once nothing refers to them any more (the
   * socket they were written to has taken them): their buffer serves a later rewrite, which saves
   * an allocation and its garbage collection per received chunk of a large result.
   */
  recycle(sent: Buffer): void {
    const whole = sent.buffer;
    // Smaller buffers may be slices of Node's shared allocation pool: never taken back.
    if (sent.byteOffset !== 0 || whole.byteLength < MIN_SPARE || whole.byteLength > MAX_SPARE) return;
    if (this.spares.length >= MAX_SPARES) return;
    this.spares.push(Buffer.from(whole));
  }

  /** Lets go of the buffers taken back (when the session goes idle). */
  dropSpares(): void {
    if (this.spares.length > 0) this.spares.length = 0;
  }

  private allocate(size: number): Buffer {
    const spare = this.spares.pop();
    return spare !== undefined && spare.length >= size ? spare : Buffer.allocUnsafe(size);
  }

  /** The `hash` token of a value, from the session's bounded cache when it is short. */
  private tokenOf(data: Buffer, start: number, end: number, rule: ColumnRule): Buffer {
    if (end - start > MAX_CACHED_VALUE) return this.masker.maskBuffer(data.subarray(start, end), rule).buffer;
    const key = data.toString('latin1', start, end);
    let token = this.tokens.get(key);
    if (token === undefined) {
      token = this.masker.maskBuffer(data.subarray(start, end), rule).buffer;
      if (this.tokens.size >= MAX_CACHED_TOKENS) this.tokens.clear();
      this.tokens.set(key, token);
    }
    return token;
  }
}

/** Room for a run's output: its input plus a quarter for replacements that grow. */
function initialSize(input: number, needed: number): number {
  return Math.max(needed, input + (input >> 2) + 64);
}

function grow(out: Buffer, used: number, needed: number): Buffer {
  const grown = Buffer.allocUnsafe(Math.max(needed, out.length * 2));
  out.copy(grown, 0, 0, used);
  return grown;
}
