/**
 * The CI exchange: a job's OIDC token in, a short-lived database credential out. Each call runs
 * verify → rate limit → match rule → grant through the broker, and every outcome is audited with
 * the job's issuer, subject, repository, workflow, run id and commit.
 *
 * Rules with `approval: required` create a pending request that the rule's approvers approve like
 * any other. Approval does not mint: the request waits in `approved` until the job collects it
 * (the waiting exchange call, or `GET /v1/ci/exchange/<id>`), and only then is the role created.
 * So no credential is ever held between approval and collection (not in the store, not in memory),
 * collection works on any replica, and the grant's lifetime starts when the job can use it.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { formatDuration } from '../config/duration.ts';
import { BrokerError } from '../errors.ts';
import type { EventBus } from '../events/events.ts';
import type { Logger } from '../log.ts';
import type { AccessRequest } from '../model.ts';
import type { Activation, Broker, CreateCiRequestInput } from '../requests/broker.ts';
import type { Store } from '../store/store.ts';
import type { CiConfig } from './config.ts';
import { type CiConnection, routeCiCredential } from './credential-route.ts';
import { type CiError, CiExchangeError, isCiError } from './errors.ts';
import { parseBearerToken, parseCiExchangeBody } from './exchange-request.ts';
import { type CiFetch, CiKeyStore, type JwksStats } from './jwks.ts';
import { CiRateLimiter } from './rate-limit.ts';
import type { ReplayCache } from './replay-cache.ts';
import {
  type CiExchangeRequest,
  type CiIdentity,
  describeCiIdentity,
  matchCiRule,
  unmatchedClaims,
} from './rules.ts';
import { StoreReplayCache, toStoreReplayKey } from './store-replay-cache.ts';
import { type VerifiedCiToken, verifyCiToken } from './verify.ts';

/** What the exchange needs of the broker (the `Broker` class fits; tests may pass a fake). */
export interface CiBroker extends Pick<Broker, 'recordAudit'> {
  readonly events: Pick<EventBus, 'subscribe'>;
  requestCi(input: CreateCiRequestInput): Promise<Activation>;
  collectCi(id: string): Promise<Activation>;
}

/** Options of {@link CiExchange}; durations in milliseconds. */
export interface CiExchangeOptions {
  readonly config: CiConfig;
  readonly broker: CiBroker;
  readonly store: Pick<Store, 'getRequest' | 'rememberOnce'>;
  readonly logger: Logger;
  /** Default `Date.now`. */
  readonly clock?: () => number;
  /** Fetch for discovery and JWKS; default the global `fetch`. */
  readonly fetch?: CiFetch;
  /** Default: a {@link StoreReplayCache} on `store`, shared by replicas. */
  readonly replay?: ReplayCache;
  /** How often a waiting call re-reads its request; default 250 ms. */
  readonly pollIntervalMs?: number;
  /** Poll interval suggested to jobs with a pending id; default 5 s. */
  readonly retryAfterMs?: number;
}

/** The input of one exchange or collection call, as the HTTP edge received it. */
export interface CiCallInput {
  /** The raw `Authorization` header. */
  readonly authorization: string | undefined;
  /** The parsed JSON body (exchange only). */
  readonly body?: unknown;
  /** Set when the body could not be read (too large, not JSON): the call is refused with it. */
  readonly bodyError?: CiError | undefined;
}

/** A granted credential, or a pending request id to poll. */
export type CiExchangeOutcome =
  | { readonly status: 'granted'; readonly requestId: string; readonly connection: CiConnection }
  | { readonly status: 'pending'; readonly requestId: string; readonly retryAfterMs: number };

/** What the request's `meta.ci` holds: the job's facts and who may collect it. Never secrets. */
interface CiRequestMeta extends CiIdentity {
  readonly issuerName: string;
  readonly rule: string;
  /** Store key of the token that opened the request: that token may poll again. */
  readonly tokenKey: string;
}

const UNVERIFIED_ACTOR = 'ci:unverified';
const TERMINAL = new Set(['denied', 'cancelled', 'timed_out', 'expired', 'revoked', 'failed']);

/** Serves CI exchanges for one configuration. */
export class CiExchange {
  readonly #config: CiConfig;
  readonly #broker: CiBroker;
  readonly #store: Pick<Store, 'getRequest'>;
  readonly #log: Logger;
  readonly #clock: () => number;
  readonly #keys: CiKeyStore;
  readonly #replay: ReplayCache;
  readonly #limiter: CiRateLimiter;
  readonly #pollIntervalMs: number;
  readonly #retryAfterMs: number;
  readonly #wakers = new Map<string, Set<() => void>>();
  readonly #unsubscribe: () => void;

  constructor(options: CiExchangeOptions) {
    this.#config = options.config;
    this.#broker = options.broker;
    this.#store = options.store;
    this.#log = options.logger;
    this.#clock = options.clock ?? Date.now;
    this.#keys = new CiKeyStore(options.config.issuers, options.fetch ? { fetch: options.fetch } : {});
    this.#replay = options.replay ?? new StoreReplayCache(options.store);
    this.#limiter = new CiRateLimiter(options.config.rateLimit);
    this.#pollIntervalMs = options.pollIntervalMs ?? 250;
    this.#retryAfterMs = options.retryAfterMs ?? 5_000;
    // Events only wake a waiting exchange call; credentials come back from the broker's calls.
    this.#unsubscribe = this.#broker.events.subscribe((event) => {
      if (event.request.source !== 'ci') return;
      for (const wake of this.#wakers.get(event.request.id) ?? []) wake();
    });
  }

  /** JWKS network counters per issuer name. */
  jwksStats(): Record<string, JwksStats> {
    return this.#keys.stats();
  }

  /** Stops listening to broker events. */
  close(): void {
    this.#unsubscribe();
  }

  /**
   * `POST /v1/ci/exchange`. Returns the credential, or a pending id when the rule needs an approval
   * that did not come within the rule's `wait`. Throws a `CiError` (or a `BrokerError` from the
   * broker) after auditing the refusal; nothing is minted on any refusal.
   */
  async exchange(input: CiCallInput): Promise<CiExchangeOutcome> {
    let request: CiExchangeRequest | undefined;
    let verified: VerifiedCiToken | undefined;
    try {
      if (input.bodyError) throw input.bodyError;
      request = parseCiExchangeBody(input.body);
      const jwt = parseBearerToken(input.authorization);
      const job = await this.#verify(jwt, this.#replay);
      verified = job;
      const now = this.#clock();
      this.#limiter.consume({ issuer: job.issuer, subject: job.subject }, now);
      const match = matchCiRule(job, request, this.#config.rules);
      const identity = describeCiIdentity(job);
      const meta: CiRequestMeta = {
        ...identity,
        issuerName: verified.issuerName,
        rule: match.rule.name,
        tokenKey: toStoreReplayKey(`${verified.issuer}\u0000${verified.jti}`),
      };
      const opened = await this.#broker.requestCi({
        requester: requesterOf(job),
        rule: match.rule,
        durationMs: match.durationMs,
        reason: describeJob(identity),
        meta: { ci: meta },
      });
      if (opened.request.state !== 'pending') return await this.#granted(opened, meta, 'ci.exchange.granted');
      const pending = opened.request;
      await this.#audit(requesterOf(verified), 'ci.exchange.pending', pending.id, {
        ...facts(meta),
        target: pending.target,
        level: pending.level,
        duration: formatDuration(pending.durationMs),
        approval: pending.decision.summary,
      });
      return await this.#awaitApproval(pending, meta);
    } catch (error) {
      await this.#refuse('ci.exchange.refused', error, verified, {
        target: request?.target,
        level: request?.level,
        ...(request?.durationMs === undefined ? {} : { duration: formatDuration(request.durationMs) }),
      });
      throw error;
    }
  }

  /**
   * `GET /v1/ci/exchange/<id>`: a job collects the credential of its pending request. The token must
   * be the one that opened the request or a fresh one (its `jti` is then spent) of the same issuer
   * and subject; any other caller learns only `ERR_CI_PENDING_NOT_FOUND`.
   */
  async collect(input: CiCallInput, id: string): Promise<CiExchangeOutcome> {
    let verified: VerifiedCiToken | undefined;
    try {
      const jwt = parseBearerToken(input.authorization);
      const stored = await this.#store.getRequest(id);
      const meta = stored?.source === 'ci' ? (stored.meta.ci as CiRequestMeta | undefined) : undefined;
      // The opening token may poll again; any other token is spent like on an exchange.
      const replay: ReplayCache = {
        markUsed: (key, expiresAtMs, nowMs) =>
          meta !== undefined && sameText(toStoreReplayKey(key), meta.tokenKey)
            ? true
            : this.#replay.markUsed(key, expiresAtMs, nowMs),
      };
      verified = await this.#verify(jwt, replay);
      this.#limiter.consume({ issuer: verified.issuer, subject: verified.subject }, this.#clock());
      const owned =
        stored !== undefined &&
        meta !== undefined &&
        sameText(meta.issuer, verified.issuer) &&
        sameText(meta.subject, verified.subject);
      if (!owned) throw new CiExchangeError('ERR_CI_PENDING_NOT_FOUND', { details: { id: id.slice(0, 64) } });
      const rule = this.#config.rules.find((r) => r.name === meta.rule);
      if (!rule)
        throw new CiExchangeError('ERR_CI_PENDING_REFUSED', { details: { id, reason: 'rule removed' } });
      // The same issuer and subject is not the same job: another workflow (or ref, or environment)
      // of one repository shares `sub`. The collecting token must fit the request's rule itself.
      const unfit = unmatchedClaims(rule, verified);
      if (unfit.length > 0) {
        throw new CiExchangeError('ERR_CI_PENDING_NOT_FOUND', {
          details: { id: id.slice(0, 64), rule: rule.name, claims: unfit },
        });
      }
      return await this.#settle(stored, meta);
    } catch (error) {
      await this.#refuse('ci.collect.refused', error, verified, { request: id.slice(0, 64) });
      throw error;
    }
  }

  async #verify(jwt: string, replay: ReplayCache): Promise<VerifiedCiToken> {
    return verifyCiToken(jwt, {
      now: this.#clock(),
      issuers: this.#config.issuers,
      keys: this.#keys,
      replay,
    });
  }

  /** Decides from a request's current state: still pending, collectable, collected or refused. */
  async #settle(request: AccessRequest, meta: CiRequestMeta): Promise<CiExchangeOutcome> {
    if (request.state === 'pending') {
      return { status: 'pending', requestId: request.id, retryAfterMs: this.#retryAfterMs };
    }
    if (request.state === 'approved' && request.meta.collectedAt === undefined) {
      let active: Activation;
      try {
        active = await this.#broker.collectCi(request.id);
      } catch (error) {
        if ((error as BrokerError).code !== 'ERR_STATE_CONFLICT') throw error;
        throw new CiExchangeError('ERR_CI_ALREADY_COLLECTED', { details: { id: request.id }, cause: error });
      }
      return this.#granted(active, meta, 'ci.exchange.collected');
    }
    if (TERMINAL.has(request.state) && request.meta.collectedAt === undefined) {
      throw new CiExchangeError('ERR_CI_PENDING_REFUSED', {
        details: { id: request.id, state: request.state },
      });
    }
    throw new CiExchangeError('ERR_CI_ALREADY_COLLECTED', {
      details: { id: request.id, state: request.state },
    });
  }

  /** Waits up to the rule's `wait` for approval, woken by broker events, re-reading the store. */
  async #awaitApproval(opened: AccessRequest, meta: CiRequestMeta): Promise<CiExchangeOutcome> {
    const rule = this.#config.rules.find((r) => r.name === meta.rule);
    const deadline = this.#clock() + (rule?.waitMs ?? 0);
    let current = opened;
    while (current.state === 'pending' && this.#clock() < deadline) {
      await this.#sleep(current.id, Math.min(this.#pollIntervalMs, deadline - this.#clock()));
      current = (await this.#store.getRequest(current.id)) ?? current;
    }
    return this.#settle(current, meta);
  }

  #sleep(id: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wakers = this.#wakers.get(id) ?? new Set<() => void>();
      const done = () => {
        clearTimeout(timer);
        wakers.delete(done);
        if (wakers.size === 0) this.#wakers.delete(id);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      wakers.add(done);
      this.#wakers.set(id, wakers);
    });
  }

  /** Routes the credential the activation returned and audits the grant. */
  async #granted(activation: Activation, meta: CiRequestMeta, action: string): Promise<CiExchangeOutcome> {
    const { request: grant, credential } = activation;
    if (grant.state !== 'active' || !credential) {
      throw new CiExchangeError('ERR_CI_GRANT_FAILED', {
        details: {
          id: grant.id,
          state: grant.state,
          error: grant.error,
        },
      });
    }
    const connection = routeCiCredential(credential);
    await this.#audit(grant.requester, action, grant.id, {
      ...facts(meta),
      target: grant.target,
      level: grant.level,
      duration: formatDuration(grant.durationMs),
      user: connection.user,
      route: connection.route,
      recorded: connection.recorded,
      expires_at: new Date(connection.expiresAt).toISOString(),
    });
    return { status: 'granted', requestId: grant.id, connection };
  }

  async #refuse(
    action: string,
    error: unknown,
    verified: VerifiedCiToken | undefined,
    asked: Record<string, unknown>,
  ): Promise<void> {
    const code = isCiError(error) || error instanceof BrokerError ? error.code : 'ERR_INTERNAL';
    if (code === 'ERR_INTERNAL') this.#log.error({ err: error }, 'CI exchange failed');
    else this.#log.debug({ code }, 'CI exchange refused');
    const identity = verified
      ? facts({ ...describeCiIdentity(verified), issuerName: verified.issuerName })
      : {};
    await this.#audit(
      verified ? requesterOf(verified) : UNVERIFIED_ACTOR,
      action,
      String(asked.target ?? ''),
      {
        code,
        ...identity,
        ...asked,
        ...(isCiError(error) ? { details: error.details } : {}),
      },
    );
  }

  async #audit(actor: string, action: string, subject: string, data: Record<string, unknown>): Promise<void> {
    await this.#broker.recordAudit(actor, action, subject, data);
  }
}

/** `ci:<issuer name>:<sub>`: the grant's requester. */
export function requesterOf(verified: Pick<VerifiedCiToken, 'issuerName' | 'subject'>): string {
  return `ci:${verified.issuerName}:${verified.subject}`;
}

function describeJob(identity: CiIdentity): string {
  const what = identity.repository ?? identity.subject;
  const run = identity.runId ? ` run ${identity.runId}` : '';
  const workflow = identity.workflow ? ` (${identity.workflow})` : '';
  return `CI ${what}${run}${workflow}`;
}

/** The audit facts of a job: issuer, subject, repository, workflow, run id, commit, ref. */
function facts(meta: CiIdentity & { issuerName: string }): Record<string, unknown> {
  return {
    issuer: meta.issuer,
    issuer_name: meta.issuerName,
    subject: meta.subject,
    repository: meta.repository,
    workflow: meta.workflow,
    run_id: meta.runId,
    commit: meta.commit,
    ref: meta.ref,
    environment: meta.environment,
    actor: meta.actor,
  };
}

/** Constant-time string equality (digests have equal length whatever the inputs). */
function sameText(a: string, b: string): boolean {
  const digest = (text: string) => createHash('sha256').update(text, 'utf8').digest();
  return timingSafeEqual(digest(a), digest(b));
}
