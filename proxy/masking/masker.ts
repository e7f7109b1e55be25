/**
 * The API the proxies call: one {@link Masker} per compiled configuration, shared by all sessions;
 * one stream masker per terminal session.
 */
import { isUtf8 } from 'node:buffer';
import { type ColumnRule, type ResultColumn, resolveColumnRules, type TableName } from './columns.ts';
import type { CompiledMasking } from './config.ts';
import { type MaskCounts, MaskEngine, NO_COUNTS, scanTriggers } from './engine.ts';
import { MaskingInputError } from './errors.ts';
import { createEngineStreamMasker, type StreamMasker, type StreamMaskerOptions } from './stream-masker.ts';
import { keepLast4Bytes, renderColumnValue } from './styles.ts';

/** The outcome of masking one text value. */
export interface MaskResult {
  /** The value to show: `text` itself when nothing was masked. */
  text: string;
  changed: boolean;
  /** Masked values per label; the shared empty object when unchanged. */
  counts: MaskCounts;
}

/** The outcome of masking one value held as bytes. */
export interface BufferMaskResult {
  /** The bytes to send: the very same Buffer when nothing was masked. */
  buffer: Buffer;
  changed: boolean;
  counts: MaskCounts;
}

/** Masks values for one compiled configuration. Stateless and safe to share. */
export interface Masker {
  /** The compiled configuration this masker applies. */
  readonly config: CompiledMasking;
  /**
   * Masks one text value (a DataRow field, a COPY line, an ErrorResponse field). With a column
   * rule, the whole value is masked in the rule's style (or, for `none`, left as it is); without
   * one, the content detectors and custom patterns run.
   */
  maskValue(text: string, rule?: ColumnRule | null): MaskResult;
  /**
   * {@link maskValue} for UTF-8 bytes. When a one-pass byte pre-check finds nothing any enabled
   * detector could match (no `@` between word characters; no digit groups shaped like a card, SSN,
   * IBAN or phone number; no `eyJ`; no key prefix) and there are no custom patterns, returns the
   * same Buffer without decoding it: dates, timestamps, UUIDs, decimals and plain text take this
   * path. Bytes that are not UTF-8 are kept as they are outside masked spans.
   */
  maskBuffer(bytes: Buffer, rule?: ColumnRule | null): BufferMaskResult;
  /**
   * False when `maskBuffer` of the bytes `start` to `end` of `view` (with no rule) surely returns
   * them unchanged: no custom pattern and no byte pair that could start a match of an enabled
   * detector. Reads the bytes in place, four at a time: the hot path's pre-check of DataRow
   * values (a DataView, made once per received chunk, so no view is made per value).
   */
  mayMask(view: DataView, start: number, end: number): boolean;
  /** For each result column, the column rule that applies, or `null` (see `resolveColumnRules`). */
  resolveColumns(
    tables: ReadonlyMap<number, TableName>,
    columns: readonly ResultColumn[],
    attributeNames: ReadonlyMap<number, ReadonlyMap<number, string>>,
  ): (ColumnRule | null)[];
  /** A masker for one terminal output stream (see `stream-masker.ts`). */
  createStreamMasker(options?: StreamMaskerOptions): StreamMasker;
}

/** Creates the masker of a compiled configuration (from `compileMasking`). */
export function createMasker(config: CompiledMasking): Masker {
  const engine = new MaskEngine(config);
  const columnCounts = new Map<ColumnRule, MaskCounts>();
  const countsOf = (rule: ColumnRule): MaskCounts => {
    let counts = columnCounts.get(rule);
    if (!counts) {
      counts = Object.freeze({ [`column:${rule.match}`]: 1 });
      columnCounts.set(rule, counts);
    }
    return counts;
  };

  return {
    config,
    maskValue(text, rule) {
      if (typeof text !== 'string') throw new MaskingInputError('maskValue takes a string');
      if (rule && rule.style !== 'none') {
        return {
          text: renderColumnValue(rule.style, text, config.key),
          changed: true,
          counts: countsOf(rule),
        };
      }
      if (rule) return { text, changed: false, counts: NO_COUNTS };
      const triggers = scanTriggers(text);
      const masked = engine.isClean(triggers) ? null : engine.maskText(text, triggers, 'utf8');
      return masked
        ? { text: masked.text, changed: true, counts: masked.counts }
        : { text, changed: false, counts: NO_COUNTS };
    },
    maskBuffer(bytes, rule) {
      if (!Buffer.isBuffer(bytes)) throw new MaskingInputError('maskBuffer takes a Buffer');
      if (rule?.style === 'last4') {
        return { buffer: keepLast4Bytes(bytes), changed: true, counts: countsOf(rule) };
      }
      if (rule && rule.style !== 'none') {
        const text = renderColumnValue(rule.style, bytes, config.key);
        return { buffer: Buffer.from(text, 'utf8'), changed: true, counts: countsOf(rule) };
      }
      if (rule) return { buffer: bytes, changed: false, counts: NO_COUNTS };
      const triggers = scanTriggers(bytes);
      if (engine.isClean(triggers)) return { buffer: bytes, changed: false, counts: NO_COUNTS };
      // Latin-1 maps each byte to one character and back, so bytes outside masked spans survive
      // exactly; custom patterns may need real characters, so they get UTF-8 when it is valid.
      const encoding: BufferEncoding = engine.hasPatterns && isUtf8(bytes) ? 'utf8' : 'latin1';
      const masked = engine.maskText(bytes.toString(encoding), triggers, encoding);
      if (!masked) return { buffer: bytes, changed: false, counts: NO_COUNTS };
      return { buffer: Buffer.from(masked.text, encoding), changed: true, counts: masked.counts };
    },
    mayMask(view, start, end) {
      return engine.mayMatch(view, start, end);
    },
    resolveColumns(tables, columns, attributeNames) {
      return resolveColumnRules(config.columns, tables, columns, attributeNames);
    },
    createStreamMasker(options) {
      return createEngineStreamMasker(engine, options);
    },
  };
}
