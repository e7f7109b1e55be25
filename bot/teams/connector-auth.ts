/**
 * Authenticates inbound activities the way the Bot Connector requires
 * (https://learn.microsoft.com/azure/bot-service/rest-api/bot-framework-rest-connector-authentication):
 *
 * 1. `Authorization: Bearer <JWT>` is present;
 * 2. the JWT is signed (RS256) by a key of the Connector's OpenID metadata (`jwks_uri`), and that
 *    key is endorsed for the activity's `channelId`;
 * 3. `iss` is the Connector's issuer, `aud` is Warden's app id;
 * 4. it is within its `nbf`/`exp` (five minutes of clock skew, as the Connector allows);
 * 5. its `serviceurl` claim is the activity's `serviceUrl`, so a token cannot send Warden's replies
 *    (and its bot token) elsewhere.
 *
 * Metadata and keys are cached for a day; an unknown `kid` fetches the keys again (at most once
 * every five minutes, so forged `kid`s cannot make Warden hammer the endpoint). Failures get one
 * fixed message (`request refused`); the reason is for debug logs only.
 */
import { importJWK, type JWK, type JWTPayload, jwtVerify } from 'jose';
import { SignatureError } from '../errors.ts';

/** The claims Warden reads of a verified token. */
export interface ConnectorClaims extends JWTPayload {
  serviceurl?: string;
}

export interface ConnectorAuthOptions {
  /** Warden's app id: the required audience. */
  appId: string;
  /** The required issuer (`https://api.botframework.com`). */
  issuer: string;
  openIdMetadataUrl: string;
  fetch?: typeof fetch;
  /** Milliseconds since the epoch. */
  clock?: () => number;
}

/** The part of an activity the check reads. */
export interface ActivityFacts {
  serviceUrl?: unknown;
  channelId?: unknown;
}

type EndorsedJwk = JWK & { endorsements?: unknown };

const CACHE_MS = 24 * 60 * 60 * 1000;
const REFETCH_COOLDOWN_MS = 5 * 60 * 1000;
const SKEW_S = 300;
const MAX_TOKEN = 8192;
const FETCH_TIMEOUT_MS = 10_000;

/** Lower case, no trailing slash: how service URLs are compared. */
export function normalizeServiceUrl(url: string): string {
  return url.replace(/\/+$/, '').toLowerCase();
}

export class ConnectorAuth {
  readonly #options: ConnectorAuthOptions;
  readonly #fetch: typeof fetch;
  readonly #clock: () => number;
  #keys: { fetchedAt: number; keys: EndorsedJwk[] } | undefined;
  /** Imported keys by the JWK they came from (a refetch that drops a key drops it here too). */
  readonly #imported = new WeakMap<EndorsedJwk, Promise<Awaited<ReturnType<typeof importJWK>>>>();
  #keysLoading: Promise<EndorsedJwk[]> | undefined;

  constructor(options: ConnectorAuthOptions) {
    this.#options = options;
    this.#fetch = options.fetch ?? fetch;
    this.#clock = options.clock ?? Date.now;
  }

  /** The verified claims; throws `ERR_BOT_SIGNATURE` (`request refused`) otherwise. */
  async verify(authorization: string | undefined, activity: ActivityFacts): Promise<ConnectorClaims> {
    if (!authorization) throw new SignatureError('ERR_BOT_SIGNATURE', 'no Authorization header');
    const match = /^Bearer ([A-Za-z0-9._-]+)$/.exec(authorization);
    if (!match || match[1]!.length > MAX_TOKEN) {
      throw new SignatureError('ERR_BOT_SIGNATURE', 'not a bearer token');
    }
    if (typeof activity.serviceUrl !== 'string' || !activity.serviceUrl) {
      throw new SignatureError('ERR_BOT_SIGNATURE', 'the activity names no serviceUrl');
    }
    if (typeof activity.channelId !== 'string' || !activity.channelId) {
      throw new SignatureError('ERR_BOT_SIGNATURE', 'the activity names no channelId');
    }
    const channelId = activity.channelId;
    let payload: ConnectorClaims;
    try {
      ({ payload } = await jwtVerify<ConnectorClaims>(
        match[1]!,
        async (header) => this.#keyFor(header.kid, channelId),
        {
          issuer: this.#options.issuer,
          audience: this.#options.appId,
          algorithms: ['RS256'],
          clockTolerance: SKEW_S,
          requiredClaims: ['exp'],
          currentDate: new Date(this.#clock()),
        },
      ));
    } catch (error) {
      if (error instanceof SignatureError) throw error;
      throw new SignatureError('ERR_BOT_SIGNATURE', `token: ${(error as Error).message}`);
    }
    if (
      typeof payload.serviceurl !== 'string' ||
      normalizeServiceUrl(payload.serviceurl) !== normalizeServiceUrl(activity.serviceUrl)
    ) {
      throw new SignatureError('ERR_BOT_SIGNATURE', 'the token was not issued for this serviceUrl');
    }
    return payload;
  }

  async #keyFor(kid: string | undefined, channelId: string) {
    if (!kid) throw new SignatureError('ERR_BOT_SIGNATURE', 'the token names no key');
    let key = (await this.#currentKeys()).find((k) => k.kid === kid);
    if (!key && this.#keys && this.#clock() - this.#keys.fetchedAt > REFETCH_COOLDOWN_MS) {
      this.#keys = undefined;
      key = (await this.#currentKeys()).find((k) => k.kid === kid);
    }
    if (!key) throw new SignatureError('ERR_BOT_SIGNATURE', 'the token is signed by an unknown key');
    const endorsements = key.endorsements;
    if (!Array.isArray(endorsements) || !endorsements.includes(channelId)) {
      throw new SignatureError('ERR_BOT_SIGNATURE', `the signing key is not endorsed for ${channelId}`);
    }
    let imported = this.#imported.get(key);
    if (!imported) {
      const { endorsements: _drop, ...jwk } = key;
      imported = importJWK(jwk, 'RS256');
      this.#imported.set(key, imported);
    }
    return imported;
  }

  async #currentKeys(): Promise<EndorsedJwk[]> {
    if (this.#keys && this.#clock() - this.#keys.fetchedAt < CACHE_MS) return this.#keys.keys;
    this.#keysLoading ??= this.#loadKeys().finally(() => {
      this.#keysLoading = undefined;
    });
    return this.#keysLoading;
  }

  async #loadKeys(): Promise<EndorsedJwk[]> {
    const metadata = (await this.#getJson(this.#options.openIdMetadataUrl)) as { jwks_uri?: unknown };
    if (typeof metadata.jwks_uri !== 'string') {
      throw new SignatureError('ERR_BOT_SIGNATURE', 'the OpenID metadata names no jwks_uri');
    }
    const jwks = (await this.#getJson(metadata.jwks_uri)) as { keys?: unknown };
    if (!Array.isArray(jwks.keys)) throw new SignatureError('ERR_BOT_SIGNATURE', 'the key set has no keys');
    const keys = jwks.keys.filter(
      (k): k is EndorsedJwk => typeof k === 'object' && k !== null && (k as JWK).kty === 'RSA',
    );
    this.#keys = { fetchedAt: this.#clock(), keys };
    return keys;
  }

  async #getJson(url: string): Promise<unknown> {
    try {
      const res = await this.#fetch(url, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      return await res.json();
    } catch (error) {
      throw new SignatureError('ERR_BOT_SIGNATURE', `cannot read ${url}: ${(error as Error).message}`);
    }
  }
}
