/**
 * Data masking core shared by the Postgres and SSH proxies. Pure: no sockets, timers or
 * environment. See `config.ts` for the configuration, `masker.ts` for the per-value API and
 * `stream-masker.ts` for terminal output.
 */
export { isIbanValid, isLuhnValid, isSsnValid } from './checksums.ts';
export {
  type ColumnRule,
  type ColumnStyle,
  compileColumnRule,
  type ResultColumn,
  resolveColumnRules,
  type TableName,
} from './columns.ts';
export {
  type CompiledMasking,
  compileMasking,
  DEFAULT_DETECTORS,
  type MaskingConfig,
  type MaskingConfigInput,
  MIN_KEY_BYTES,
  maskingConfigSchema,
} from './config.ts';
export {
  type CardOptions,
  DETECTOR_NAMES,
  type DetectorName,
  findApiKeys,
  findCards,
  findEmails,
  findIbans,
  findJwts,
  findPhones,
  findSsns,
  hasKnownIin,
  type Span,
} from './detectors.ts';
export { addCounts, type MaskCounts } from './engine.ts';
export {
  isMaskingError,
  MaskingConfigError,
  MaskingError,
  type MaskingErrorCode,
  MaskingInputError,
} from './errors.ts';
export { type BufferMaskResult, createMasker, type Masker, type MaskResult } from './masker.ts';
export { MAX_PATTERN_SOURCE, PATTERN_OVERLAP, PATTERN_WINDOW } from './patterns.ts';
export { DEFAULT_MAX_HOLD_BYTES, type StreamMasker, type StreamMaskerOptions } from './stream-masker.ts';
export { keepLast4, keepLast4Bytes, MaskingKey, type MaskStyle, writeLast4Ascii } from './styles.ts';
