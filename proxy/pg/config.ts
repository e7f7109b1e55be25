/**
 * Compiles a target's `proxy:` settings (validated in shape by the broker's config schema) into
 * what a session runs: guardrails, masker, TLS context. Every failure names the config path and
 * happens at start-up.
 */
import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureContext } from 'node:tls';
import { compileSqlGuardrails, type SqlGuardrails } from '../guardrails/sql/index.ts';
import { compileMasking, createMasker, type Masker } from '../masking/index.ts';
import { PgProxyConfigError } from './errors.ts';

/** The `proxy:` fragment of a Postgres target, as the broker's schema outputs it. */
export interface PgProxyTargetConfig {
  listen: string;
  public?: string | undefined;
  tls?: { cert: string; key: string } | undefined;
  allow_plaintext: boolean;
  guardrails: Record<string, unknown>;
  masking: Record<string, unknown>;
  record_rows: boolean;
}

/** What every session of one target runs with. */
export interface PgProxyTarget {
  /** The target's name in the configuration. */
  name: string;
  guardrails: SqlGuardrails;
  masker: Masker;
  /** Present when the proxy accepts TLS. */
  tls: SecureContext | undefined;
  allowPlaintext: boolean;
  recordRows: boolean;
  /** The target's levels (for the hint of a blocked statement); unknown when not given. */
  levels?: readonly string[];
}

/** Reads a file named in the configuration (injectable for tests). */
export type ReadConfigFile = (path: string) => Buffer;

/**
 * Resolves a masking key reference: `env:NAME` or `file:/path`. Inline keys are refused so that
 * the key never sits in the configuration file.
 */
function resolveMaskingKey(
  ref: string,
  path: string,
  env: Record<string, string | undefined>,
  readFile: ReadConfigFile,
): Buffer {
  if (ref.startsWith('env:')) {
    const value = env[ref.slice(4)];
    if (!value) throw new PgProxyConfigError(path, `environment variable ${ref.slice(4)} is not set`);
    return Buffer.from(value, 'utf8');
  }
  if (ref.startsWith('file:')) {
    try {
      return readFile(ref.slice(5));
    } catch (error) {
      throw new PgProxyConfigError(path, `cannot read key file ${ref.slice(5)}`, { cause: error });
    }
  }
  throw new PgProxyConfigError(path, 'reference the key as env:NAME or file:/path, never inline');
}

/**
 * Compiles the proxy settings of target `name`.
 * @throws PgProxyConfigError (`ERR_PGPROXY_CONFIG`), SqlGuardConfigError or MaskingConfigError,
 *   each naming the configuration path.
 */
export function compilePgProxyTarget(
  name: string,
  config: PgProxyTargetConfig,
  options: {
    env?: Record<string, string | undefined>;
    readFile?: ReadConfigFile;
    /** The target's level names. */
    levels?: readonly string[];
  } = {},
): PgProxyTarget {
  const env = options.env ?? {};
  const readFile = options.readFile ?? ((path: string) => readFileSync(path));
  const base = `targets.${name}.proxy`;
  let tls: SecureContext | undefined;
  if (config.tls) {
    let cert: Buffer;
    let key: Buffer;
    try {
      cert = readFile(config.tls.cert);
      key = readFile(config.tls.key);
    } catch (error) {
      throw new PgProxyConfigError(`${base}.tls`, 'cannot read the certificate or key file', {
        cause: error,
      });
    }
    try {
      tls = createSecureContext({ cert, key, minVersion: 'TLSv1.2' });
    } catch (error) {
      throw new PgProxyConfigError(
        `${base}.tls`,
        `invalid certificate or key (${(error as Error).message})`,
        {
          cause: error,
        },
      );
    }
  } else if (!config.allow_plaintext) {
    throw new PgProxyConfigError(`${base}.tls`, 'give tls.cert and tls.key, or set allow_plaintext: true');
  }
  const keyRef = typeof config.masking.key === 'string' ? config.masking.key : undefined;
  const key = keyRef ? resolveMaskingKey(keyRef, `${base}.masking.key`, env, readFile) : undefined;
  return {
    name,
    guardrails: compileSqlGuardrails(config.guardrails, `${base}.guardrails`),
    masker: createMasker(compileMasking(config.masking, key, `${base}.masking`)),
    tls,
    allowPlaintext: config.allow_plaintext,
    recordRows: config.record_rows,
    ...(options.levels ? { levels: options.levels } : {}),
  };
}
