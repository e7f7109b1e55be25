/**
 * Remote JWKS of CI issuers: discovery, caching, key rotation. Modelled on jose's remote JWKS:
 * a fetched set is trusted for `cacheTtlMs`; a token whose `kid` is not in the set causes at most
 * one refetch per `refreshMinIntervalMs`, so a stream of forged `kid`s cannot hammer the issuer;
 * concurrent callers share one in-flight fetch; any failure fails closed. `fetch` is injected and
 * every call takes `nowMs`, so tests control both the network and the clock.
 */
import { type CryptoKey, importJWK, type JWK } from 'jose';
import type { CiAlgorithm, CiIssuerConfig } from './config.ts';
import { CiJwksError } from './errors.ts';

/** The subset of `fetch` used here; the global `fetch` fits. */
export type CiFetch = (url: string, init: RequestInit) => Promise<Response>;

/** The protected header fields that choose a key. */
export interface CiKeyHint {
  readonly alg: CiAlgorithm;
  readonly kid: string | undefined;
}

/** Resolves the verification key of a token; implemented by {@link CiKeyStore}, faked in tests. */
export interface CiKeyResolver {
  /** Throws `ERR_CI_KEY_UNKNOWN`, `ERR_CI_JWKS_UNAVAILABLE` or `ERR_CI_DISCOVERY_INVALID`. */
  getKey(issuer: CiIssuerConfig, hint: CiKeyHint, nowMs: number): Promise<CryptoKey>;
}

/** Network counters of one issuer (the benchmark reports them). */
export interface JwksStats {
  discoveryFetches: number;
  jwksFetches: number;
  failures: number;
}

/** Options of one issuer's {@link RemoteJwks}; durations in milliseconds. */
export interface RemoteJwksOptions {
  /** Exact issuer URL; discovery must echo it. */
  readonly issuer: string;
  /** JWKS URL; discovered when undefined. */
  readonly jwksUri: string | undefined;
  readonly cacheTtlMs: number;
  readonly refreshMinIntervalMs: number;
  readonly timeoutMs: number;
  /** Largest discovery or JWKS document read, in bytes; default 256 KiB. */
  readonly maxBytes?: number;
  /** Default: the global `fetch`. */
  readonly fetch?: CiFetch;
}

const DEFAULT_MAX_BYTES = 256 * 1024;
const MAX_KEYS = 100;

/** The JWKS of one issuer. */
export class RemoteJwks {
  readonly stats: JwksStats = { discoveryFetches: 0, jwksFetches: 0, failures: 0 };
  readonly #options: RemoteJwksOptions;
  readonly #fetch: CiFetch;
  #keys: readonly JWK[] | undefined;
  #fetchedAt = 0;
  #lastAttemptAt: number | undefined;
  #lastFailureAt: number | undefined;
  #discoveredUri: string | undefined;
  #pending: Promise<void> | undefined;
  #imported = new WeakMap<JWK, CryptoKey>();

  constructor(options: RemoteJwksOptions) {
    this.#options = options;
    this.#fetch = options.fetch ?? ((url, init) => fetch(url, init));
  }

  /** Returns the key for `hint`, fetching the set when stale or when the `kid` is new. */
  async getKey(hint: CiKeyHint, nowMs: number): Promise<CryptoKey> {
    if (this.#pending) await this.#pending;
    if (this.#keys === undefined || nowMs - this.#fetchedAt >= this.#options.cacheTtlMs) {
      await this.#refresh(nowMs);
    }
    let jwk = selectKey(this.#keys!, hint);
    if (!jwk) {
      if (
        this.#lastAttemptAt !== undefined &&
        nowMs - this.#lastAttemptAt < this.#options.refreshMinIntervalMs
      ) {
        throw new CiJwksError('ERR_CI_KEY_UNKNOWN', {
          details: { kid: hint.kid, alg: hint.alg, refetched: false },
        });
      }
      await this.#refresh(nowMs);
      jwk = selectKey(this.#keys!, hint);
      if (!jwk)
        throw new CiJwksError('ERR_CI_KEY_UNKNOWN', {
          details: { kid: hint.kid, alg: hint.alg, refetched: true },
        });
    }
    return this.#import(jwk, hint);
  }

  #refresh(nowMs: number): Promise<void> {
    if (this.#pending) return this.#pending;
    if (
      this.#lastFailureAt !== undefined &&
      nowMs - this.#lastFailureAt < this.#options.refreshMinIntervalMs
    ) {
      // A failing issuer is retried once per interval, not on every token.
      return Promise.reject(
        new CiJwksError('ERR_CI_JWKS_UNAVAILABLE', { details: { reason: 'recent failure' } }),
      );
    }
    this.#lastAttemptAt = nowMs;
    this.#pending = this.#load()
      .then(
        (keys) => {
          this.#keys = keys;
          this.#fetchedAt = nowMs;
          this.#lastFailureAt = undefined;
        },
        (error: unknown) => {
          this.stats.failures++;
          this.#lastFailureAt = nowMs;
          this.#discoveredUri = undefined;
          throw error instanceof CiJwksError
            ? error
            : new CiJwksError('ERR_CI_JWKS_UNAVAILABLE', {
                details: { reason: describe(error) },
                cause: error,
              });
        },
      )
      .finally(() => {
        this.#pending = undefined;
      });
    return this.#pending;
  }

  async #load(): Promise<readonly JWK[]> {
    const uri = this.#options.jwksUri ?? this.#discoveredUri ?? (await this.#discover());
    this.stats.jwksFetches++;
    const body = await this.#getJson(uri);
    const keys = (body as { keys?: unknown }).keys;
    if (!Array.isArray(keys) || keys.length > MAX_KEYS) {
      throw new CiJwksError('ERR_CI_JWKS_UNAVAILABLE', { details: { reason: 'not a JWKS', uri } });
    }
    return keys.filter((k): k is JWK => typeof k === 'object' && k !== null && !Array.isArray(k));
  }

  async #discover(): Promise<string> {
    const base = this.#options.issuer.replace(/\/+$/, '');
    const url = `${base}/.well-known/openid-configuration`;
    this.stats.discoveryFetches++;
    const doc = (await this.#getJson(url)) as { issuer?: unknown; jwks_uri?: unknown };
    if (doc.issuer !== this.#options.issuer) {
      throw new CiJwksError('ERR_CI_DISCOVERY_INVALID', {
        details: {
          reason: 'issuer mismatch',
          issuer: String(doc.issuer),
        },
      });
    }
    if (typeof doc.jwks_uri !== 'string' || !isAllowedUrl(doc.jwks_uri, this.#options.issuer)) {
      throw new CiJwksError('ERR_CI_DISCOVERY_INVALID', { details: { reason: 'bad jwks_uri' } });
    }
    this.#discoveredUri = doc.jwks_uri;
    return doc.jwks_uri;
  }

  async #getJson(url: string): Promise<unknown> {
    const response = await this.#fetch(url, {
      headers: { accept: 'application/json' },
      redirect: 'manual',
      signal: AbortSignal.timeout(this.#options.timeoutMs),
    });
    if (response.status !== 200) {
      await response.body?.cancel();
      throw new CiJwksError('ERR_CI_JWKS_UNAVAILABLE', {
        details: { reason: `HTTP ${response.status}`, url },
      });
    }
    const text = await readBounded(response, this.#options.maxBytes ?? DEFAULT_MAX_BYTES);
    try {
      const body: unknown = JSON.parse(text);
      if (typeof body === 'object' && body !== null && !Array.isArray(body)) return body;
    } catch {
      // fall through to the error below
    }
    throw new CiJwksError('ERR_CI_JWKS_UNAVAILABLE', { details: { reason: 'not a JSON object', url } });
  }

  async #import(jwk: JWK, hint: CiKeyHint): Promise<CryptoKey> {
    const cached = this.#imported.get(jwk);
    if (cached) return cached;
    try {
      const key = await importJWK({ ...jwk, ext: false }, hint.alg);
      if (key instanceof Uint8Array) throw new TypeError('symmetric key');
      this.#imported.set(jwk, key);
      return key;
    } catch (error) {
      throw new CiJwksError('ERR_CI_KEY_UNKNOWN', {
        details: { kid: hint.kid, reason: 'key import failed' },
        cause: error,
      });
    }
  }
}

/** One {@link RemoteJwks} per configured issuer. */
export class CiKeyStore implements CiKeyResolver {
  readonly #sets = new Map<string, RemoteJwks>();

  constructor(issuers: readonly CiIssuerConfig[], deps: { fetch?: CiFetch } = {}) {
    for (const issuer of issuers) {
      this.#sets.set(
        issuer.name,
        new RemoteJwks({
          issuer: issuer.issuer,
          jwksUri: issuer.jwksUri,
          cacheTtlMs: issuer.jwksCacheTtlMs,
          refreshMinIntervalMs: issuer.jwksRefreshMinIntervalMs,
          timeoutMs: issuer.jwksTimeoutMs,
          ...(deps.fetch ? { fetch: deps.fetch } : {}),
        }),
      );
    }
  }

  getKey(issuer: CiIssuerConfig, hint: CiKeyHint, nowMs: number): Promise<CryptoKey> {
    const set = this.#sets.get(issuer.name);
    if (!set)
      return Promise.reject(
        new CiJwksError('ERR_CI_JWKS_UNAVAILABLE', { details: { reason: 'issuer not configured' } }),
      );
    return set.getKey(hint, nowMs);
  }

  /** Counters per issuer name. */
  stats(): Record<string, JwksStats> {
    return Object.fromEntries([...this.#sets].map(([name, set]) => [name, { ...set.stats }]));
  }
}

const CURVES: Partial<Record<CiAlgorithm, string>> = {
  ES256: 'P-256',
  ES384: 'P-384',
  ES512: 'P-521',
  EdDSA: 'Ed25519',
  Ed25519: 'Ed25519',
};

/**
 * Picks the JWK for a header: same `kid`, key type and curve fitting `alg`, `alg`/`use`/`key_ops`
 * not contradicting it. Without a `kid` exactly one key may fit, else none is chosen.
 */
export function selectKey(keys: readonly JWK[], hint: CiKeyHint): JWK | undefined {
  const kty =
    hint.alg.startsWith('RS') || hint.alg.startsWith('PS') ? 'RSA' : hint.alg.startsWith('ES') ? 'EC' : 'OKP';
  const fits = keys.filter(
    (k) =>
      k.kty === kty &&
      (CURVES[hint.alg] === undefined || k.crv === CURVES[hint.alg]) &&
      (k.alg === undefined || k.alg === hint.alg) &&
      (k.use === undefined || k.use === 'sig') &&
      (k.key_ops === undefined || (Array.isArray(k.key_ops) && k.key_ops.includes('verify'))) &&
      k.d === undefined &&
      (hint.kid === undefined || k.kid === hint.kid),
  );
  if (hint.kid === undefined && fits.length !== 1) return undefined;
  return fits[0];
}

function isAllowedUrl(text: string, issuer: string): boolean {
  try {
    const url = new URL(text);
    if (url.protocol === 'https:') return true;
    // Plain HTTP only when the issuer itself is a loopback HTTP issuer (tests, local development).
    return (
      url.protocol === 'http:' &&
      new URL(issuer).protocol === 'http:' &&
      url.hostname === new URL(issuer).hostname
    );
  } catch {
    return false;
  }
}

async function readBounded(response: Response, maxBytes: number): Promise<string> {
  if (!response.body) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel();
      throw new CiJwksError('ERR_CI_JWKS_UNAVAILABLE', {
        details: { reason: 'document too large', maxBytes },
      });
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function describe(error: unknown): string {
  if (error instanceof Error) return error.name === 'TimeoutError' ? 'timeout' : error.message.slice(0, 200);
  return 'unknown error';
}
