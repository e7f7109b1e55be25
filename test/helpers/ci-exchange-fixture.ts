/**
 * The CI exchange end to end on loopback: a real PostgreSQL target, a local OIDC issuer, a broker
 * and its HTTP API with the CI routes mounted. Used by the CI tests and the benchmark.
 */
import pg from 'pg';
import { createCiRoutes } from '../../broker/api/ci-route.ts';
import { ApiServer } from '../../broker/api/server.ts';
import type { CiConnection } from '../../broker/ci/credential-route.ts';
import { CiExchange } from '../../broker/ci/exchange.ts';
import type { ConfigInput } from '../../broker/config/schema.ts';
import { createLogger } from '../../broker/log.ts';
import type { AuditEntry } from '../../broker/model.ts';
import { type BrokerFixture, type StoreKind, startBrokerFixture } from './broker-fixture.ts';
import { type OidcIssuer, startOidcIssuer } from './oidc-issuer.ts';
import type { PgCluster } from './pg-cluster.ts';

/** Audience the test issuers put in their tokens. */
export const CI_AUDIENCE = 'warden-test';

/**
 * The JSON of an exchange answer. Which fields are present depends on the answer (credential,
 * pending id or error); tests read the ones their case expects, absent ones are undefined.
 */
export interface CiAnswerJson extends Omit<CiConnection, 'expiresAt'> {
  readonly request_id: string;
  readonly expires_at: string;
  readonly pending: string;
  readonly poll: string;
  readonly retry_after: number;
  readonly error: { readonly code: string; readonly message: string };
}

/** Status, headers and JSON of one call. */
export interface CiAnswer {
  readonly status: number;
  readonly headers: Headers;
  readonly json: CiAnswerJson;
}

/** Knobs of {@link startCiExchangeFixture}. */
export interface CiExchangeFixtureOptions {
  readonly store?: StoreKind;
  /** `rate_limit:` of the `ci:` section; default generous (tests do many exchanges). */
  readonly rateLimit?: { per_subject?: number; per_issuer?: number };
  /** `wait` of the approval rule; default none (answer 202 at once). */
  readonly approvalWait?: string;
  /** Extra issuer settings (`jwks_refresh_min_interval`, ...). */
  readonly issuerExtra?: Record<string, unknown>;
}

/** A running exchange and helpers to call it. */
export interface CiExchangeFixture {
  readonly broker: BrokerFixture;
  readonly issuer: OidcIssuer;
  /** Configured, but its JWKS endpoint resets every connection. */
  readonly downIssuer: OidcIssuer;
  readonly exchange: CiExchange;
  readonly url: string;
  readonly cluster: PgCluster;
  /** `POST /v1/ci/exchange` with `token` as bearer (undefined: no header). */
  post(token: string | undefined, body: unknown): Promise<CiAnswer>;
  /** `GET /v1/ci/exchange/<id>`. */
  poll(token: string, id: string): Promise<CiAnswer>;
  /** Roles carrying Warden's prefix on the target server. */
  wardenRoles(): Promise<string[]>;
  /** Number of requests (any state) in the store. */
  requestCount(): Promise<number>;
  /** Audit entries whose action starts with `prefix`. */
  audit(prefix: string): Promise<AuditEntry[]>;
  close(): Promise<void>;
}

/** Builds the `ci:` section: issuer `github` (GitHub shaped), issuer `down`, three rules on app-db. */
export function buildCiSection(
  issuer: OidcIssuer,
  down: OidcIssuer,
  options: CiExchangeFixtureOptions = {},
): NonNullable<ConfigInput['ci']> {
  return {
    issuers: [
      {
        name: 'github',
        issuer: issuer.url,
        audience: CI_AUDIENCE,
        kind: 'github',
        jwks_refresh_min_interval: '1s',
        ...options.issuerExtra,
      },
      { name: 'down', issuer: down.url, audience: CI_AUDIENCE, kind: 'github' },
    ],
    rules: [
      {
        name: 'nightly-report',
        issuer: 'github',
        match: { repository: 'octo-org/reports', ref: ['refs/heads/main', 'refs/heads/release/*'] },
        target: 'app-db',
        level: 'read',
        max_duration: '15m',
      },
      {
        name: 'migrations',
        issuer: 'github',
        match: { repository: 'octo-org/reports', environment: 'production' },
        target: 'app-db',
        level: 'write',
        max_duration: '10m',
        approval: 'required',
        approvers: [{ group: 'dba' }],
        ...(options.approvalWait ? { wait: options.approvalWait } : {}),
      },
      {
        name: 'anything-down',
        issuer: 'down',
        match: { repository: '**' },
        target: 'app-db',
        level: 'read',
        max_duration: '15m',
      },
    ],
    rate_limit: { per_subject: 1000, per_issuer: 10_000, ...options.rateLimit },
  };
}

async function call(
  url: string,
  method: 'GET' | 'POST',
  token: string | undefined,
  body?: unknown,
): Promise<CiAnswer> {
  const response = await fetch(url, {
    method,
    headers: {
      ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  return {
    status: response.status,
    headers: response.headers,
    json: (await response.json()) as CiAnswerJson,
  };
}

/** Starts issuer, broker and API on `cluster`. */
export async function startCiExchangeFixture(
  cluster: PgCluster,
  options: CiExchangeFixtureOptions = {},
): Promise<CiExchangeFixture> {
  const issuer = await startOidcIssuer({ audience: CI_AUDIENCE });
  const downIssuer = await startOidcIssuer({ audience: CI_AUDIENCE });
  downIssuer.setJwksMode('reset');
  const ci = buildCiSection(issuer, downIssuer, options);
  const broker = await startBrokerFixture(options.store ?? 'embedded', cluster, { ci });
  // Same capture as the broker's logger, so tests see every line either writes.
  const logger = createLogger({ level: 'debug', destination: broker.logs });
  const exchange = new CiExchange({
    config: broker.config.ci!,
    broker: broker.app.broker,
    store: broker.store,
    logger: logger,
    pollIntervalMs: 50,
    retryAfterMs: 1_000,
  });
  const api = new ApiServer({
    broker: broker.app.broker,
    store: broker.store,
    tokens: [],
    logger: logger,
    publicRoutes: createCiRoutes(exchange, logger),
  });
  const address = await api.listen(0, '127.0.0.1');
  const url = `http://127.0.0.1:${address.port}`;
  return {
    broker,
    issuer,
    downIssuer,
    exchange,
    url,
    cluster,
    post: (token, body) => call(`${url}/v1/ci/exchange`, 'POST', token, body),
    poll: (token, id) => call(`${url}/v1/ci/exchange/${id}`, 'GET', token),
    async wardenRoles() {
      const client = new pg.Client({ connectionString: cluster.url });
      await client.connect();
      try {
        const res = await client.query("SELECT rolname FROM pg_roles WHERE starts_with(rolname, 'warden_')");
        return res.rows.map((r: { rolname: string }) => r.rolname).sort();
      } finally {
        await client.end();
      }
    },
    async requestCount() {
      return (await broker.store.listRequests({ limit: 100_000 })).length;
    },
    async audit(prefix) {
      const entries = await broker.store.readAudit({ limit: 100_000 });
      return entries.filter((e) => e.action.startsWith(prefix));
    },
    async close() {
      exchange.close();
      await api.close();
      await broker.close();
      await issuer.close();
      await downIssuer.close();
    },
  };
}
