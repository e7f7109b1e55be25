/**
 * Checks that an HTTP request comes from Slack (v0 signatures) and was not seen before. Pure:
 * the caller passes the raw body, the headers' values and the time. Bolt checks signatures as
 * well, but not replays: a captured request re-sent within five minutes would act twice.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { SignatureError } from '../errors.ts';

/** Slack refuses timestamps further than five minutes from now, either way. */
export const MAX_SKEW_MS = 5 * 60_000;

const SIGNATURE = /^v0=[0-9a-f]{64}$/;
const TIMESTAMP = /^\d{1,12}$/;

export interface SignedRequest {
  /** `X-Slack-Request-Timestamp`, seconds. */
  timestamp: string | undefined;
  /** `X-Slack-Signature`, `v0=<hex>`. */
  signature: string | undefined;
  body: Buffer;
}

/** The `v0=` signature Slack would send for this body at this timestamp. */
export function signSlackRequest(signingSecret: string, timestamp: string, body: Buffer | string): string {
  const mac = createHmac('sha256', signingSecret);
  mac.update(`v0:${timestamp}:`);
  mac.update(body);
  return `v0=${mac.digest('hex')}`;
}

/** Throws `ERR_BOT_SIGNATURE` unless the request is signed with `signingSecret` within five minutes of `now`. */
export function verifySlackSignature(signingSecret: string, request: SignedRequest, now: number): void {
  const { timestamp, signature } = request;
  if (!timestamp || !signature) throw new SignatureError('ERR_BOT_SIGNATURE', 'missing signature headers');
  if (!TIMESTAMP.test(timestamp)) throw new SignatureError('ERR_BOT_SIGNATURE', 'malformed timestamp');
  if (Math.abs(now - Number(timestamp) * 1000) > MAX_SKEW_MS) {
    throw new SignatureError('ERR_BOT_SIGNATURE', 'timestamp outside the five-minute window');
  }
  if (!SIGNATURE.test(signature)) throw new SignatureError('ERR_BOT_SIGNATURE', 'malformed signature');
  const expected = Buffer.from(signSlackRequest(signingSecret, timestamp, request.body));
  if (!timingSafeEqual(expected, Buffer.from(signature))) {
    throw new SignatureError('ERR_BOT_SIGNATURE', 'signature mismatch');
  }
}

/**
 * Remembers signatures already accepted until they leave the five-minute window. Bounded: when
 * full of live entries it refuses new requests (`ERR_BOT_REPLAY`) rather than forget one, since a
 * forgotten entry could be replayed.
 */
export class ReplayCache {
  readonly #seen = new Map<string, number>();
  readonly #max: number;

  /** `max`: live entries kept. Default 50,000 (about 170 signed requests a second). */
  constructor(max = 50_000) {
    this.#max = max;
  }

  get size(): number {
    return this.#seen.size;
  }

  /** Records a verified request; throws `ERR_BOT_REPLAY` if it was seen, or if the cache is full. */
  remember(request: Pick<SignedRequest, 'timestamp' | 'signature'>, now: number): void {
    const key = `${request.timestamp}:${request.signature}`;
    this.#evict(now);
    if (this.#seen.has(key)) throw new SignatureError('ERR_BOT_REPLAY', 'request replayed');
    if (this.#seen.size >= this.#max) throw new SignatureError('ERR_BOT_REPLAY', 'replay cache full');
    this.#seen.set(key, Number(request.timestamp) * 1000 + MAX_SKEW_MS);
  }

  #evict(now: number): void {
    // Entries arrive roughly in time order; stop at the first one still live.
    for (const [key, until] of this.#seen) {
      if (until > now) break;
      this.#seen.delete(key);
    }
  }
}
