/**
 * The `masking:` configuration fragment: its schema, defaults, and compilation into the form the
 * masker runs.
 *
 * ```yaml
 * masking:
 *   key: env:WARDEN_MASKING_KEY       # secret reference, resolved by the caller
 *   columns:
 *     - { match: customers.email, style: hash }
 *     - { match: '*.card_number', style: last4 }
 *     - { match: public.audit.note, style: none }   # exempt from content detectors
 *   detectors: { card: last4, email: hash, ssn: redact, phone: off }
 *   patterns:
 *     - { name: employee_id, regex: 'EMP-[0-9]{6}', style: redact }
 * ```
 *
 * Defaults ({@link DEFAULT_DETECTORS}): every detector on; `card` and `iban` keep the last four,
 * the others redact. No default needs the key; any `hash` style does.
 */
import { z } from 'zod';
import { type ColumnRule, compileColumnRule } from './columns.ts';
import { DETECTOR_NAMES, type DetectorName } from './detectors.ts';
import { MaskingConfigError } from './errors.ts';
import { type CustomPattern, compilePattern } from './patterns.ts';
import { MASK_STYLES, MaskingKey, type MaskStyle } from './styles.ts';

/** Shortest accepted `hash` key, in bytes. */
export const MIN_KEY_BYTES = 16;

/** The detector styles used when the configuration does not name one. */
export const DEFAULT_DETECTORS: Readonly<Record<DetectorName, MaskStyle>> = {
  card: 'last4',
  email: 'redact',
  ssn: 'redact',
  iban: 'last4',
  phone: 'redact',
  jwt: 'redact',
  api_key: 'redact',
};

const styleSchema = z.enum(MASK_STYLES);
const detectorSchema = z.union([styleSchema, z.literal('off')]);

/** Schema of the `masking:` YAML fragment. Unknown keys are refused. */
export const maskingConfigSchema = z
  .object({
    /** A secret reference (`env:NAME`, `file:/path`); the caller resolves it for {@link compileMasking}. */
    key: z.string().min(1).optional(),
    columns: z
      .array(
        z.strictObject({
          match: z.string().min(1).max(200),
          style: z.enum([...MASK_STYLES, 'none']),
        }),
      )
      .max(1000)
      .default([]),
    detectors: z
      .strictObject({
        card: z
          .union([
            detectorSchema,
            z.strictObject({ style: detectorSchema, require_iin: z.boolean().default(false) }),
          ])
          .optional(),
        email: detectorSchema.optional(),
        ssn: detectorSchema.optional(),
        iban: detectorSchema.optional(),
        phone: detectorSchema.optional(),
        jwt: detectorSchema.optional(),
        api_key: detectorSchema.optional(),
      })
      .default({}),
    patterns: z
      .array(
        z.strictObject({
          name: z.string().regex(/^[A-Za-z][A-Za-z0-9_-]{0,39}$/, 'use letters, digits, _ and -, up to 40'),
          regex: z.string(),
          flags: z
            .string()
            .regex(/^(?!.*(.).*\1)[imsu]*$/, 'use any of i, m, s, u once')
            .default(''),
          style: styleSchema.default('redact'),
        }),
      )
      .max(100)
      .default([]),
  })
  .strict();

/** The `masking:` fragment as written. */
export type MaskingConfigInput = z.input<typeof maskingConfigSchema>;
/** The `masking:` fragment with defaults applied. */
export type MaskingConfig = z.output<typeof maskingConfigSchema>;

/** A validated, compiled masking configuration; the input of `createMasker`. */
export interface CompiledMasking {
  /** Style per built-in detector; `null` when the detector is off. */
  readonly detectors: Readonly<Record<DetectorName, MaskStyle | null>>;
  readonly cardRequireIin: boolean;
  readonly columns: readonly ColumnRule[];
  readonly patterns: readonly CustomPattern[];
  /** Present when some style is `hash`. */
  readonly key: MaskingKey | undefined;
}

function formatPath(base: string, path: readonly PropertyKey[]): string {
  return path.reduce<string>(
    (out, part) => (typeof part === 'number' ? `${out}[${part}]` : `${out}.${String(part)}`),
    base,
  );
}

/**
 * Validates and compiles the `masking:` fragment. `key` is the resolved secret behind
 * `masking.key` (a string is taken as UTF-8); it is required, with at least
 * {@link MIN_KEY_BYTES} bytes, when any column, detector or pattern uses `hash`.
 *
 * @param path where the fragment sits in the whole configuration, for error messages.
 * @throws MaskingConfigError `ERR_MASKING_CONFIG` (shape, column patterns), `ERR_MASKING_PATTERN`
 *   (custom regex), `ERR_MASKING_KEY` (missing or short key); the message names the config path.
 */
export function compileMasking(
  config: unknown,
  key?: string | Uint8Array,
  path = 'masking',
): CompiledMasking {
  const parsed = maskingConfigSchema.safeParse(config ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new MaskingConfigError(formatPath(path, issue.path), issue.message);
  }
  const input = parsed.data;
  const detectors = {} as Record<DetectorName, MaskStyle | null>;
  let cardRequireIin = false;
  for (const name of DETECTOR_NAMES) {
    let setting = input.detectors[name];
    if (typeof setting === 'object') {
      cardRequireIin = setting.require_iin;
      setting = setting.style;
    }
    detectors[name] = setting === 'off' ? null : (setting ?? DEFAULT_DETECTORS[name]);
  }
  const columns = input.columns.map((rule, i) =>
    compileColumnRule(rule.match, rule.style, `${path}.columns[${i}].match`),
  );
  const names = new Set<string>();
  const patterns = input.patterns.map((pattern, i) => {
    if (names.has(pattern.name)) {
      throw new MaskingConfigError(`${path}.patterns[${i}].name`, `"${pattern.name}" is used twice`);
    }
    names.add(pattern.name);
    return compilePattern(
      pattern.name,
      pattern.regex,
      pattern.flags,
      pattern.style,
      `${path}.patterns[${i}]`,
    );
  });
  const usesHash =
    Object.values(detectors).includes('hash') ||
    columns.some((c) => c.style === 'hash') ||
    patterns.some((p) => p.style === 'hash');
  let compiledKey: MaskingKey | undefined;
  if (key !== undefined) {
    const bytes = typeof key === 'string' ? Buffer.from(key, 'utf8') : Buffer.from(key);
    if (bytes.length < MIN_KEY_BYTES) {
      throw new MaskingConfigError(
        `${path}.key`,
        `the key must have at least ${MIN_KEY_BYTES} bytes`,
        'ERR_MASKING_KEY',
      );
    }
    compiledKey = new MaskingKey(bytes);
  } else if (usesHash) {
    throw new MaskingConfigError(
      `${path}.key`,
      'the hash style needs a key: set masking.key',
      'ERR_MASKING_KEY',
    );
  }
  return { detectors, cardRequireIin, columns, patterns, key: compiledKey };
}
