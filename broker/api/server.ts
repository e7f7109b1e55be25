/**
 * The broker's HTTP API (JSON). Service tokens (Warden's own bot and proxy) act on behalf of the
 * person named in the body; admin tokens act as admins. Unauthenticated calls change nothing.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { closeServer, createHttpListener, listen } from '../../lib/http-listener.ts';
import { runAsCaller, tokenVia } from '../audit/caller.ts';
import type { AuditCheckpoint } from '../audit/checkpoints.ts';
import { readCheckpointFile } from '../audit/checkpoints.ts';
import type { AuditKeyring } from '../audit/signing.ts';
import { verifyAuditLog } from '../audit/verify.ts';
import { BrokerError, InvalidInputError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { AccessRequest, RequestState } from '../model.ts';
import { explainPolicy } from '../policy/explain.ts';
import type { IssuedCredential } from '../providers/credential.ts';
import type { Actor, Broker } from '../requests/broker.ts';
import type { Store } from '../store/store.ts';
import { type ApiCaller, type ApiToken, authenticateBearer } from './auth.ts';
import { toApiRequest } from './types.ts';

/** Largest request body accepted. */
const MAX_BODY = 64 * 1024;

const STATUS_BY_CODE: Record<string, number> = {
  ERR_AUTH_REQUIRED: 401,
  ERR_AUTH_INVALID: 401,
  ERR_NOT_FOUND: 404,
  ERR_STATE_CONFLICT: 409,
  ERR_APPROVAL_DUPLICATE: 409,
  ERR_FORBIDDEN: 403,
  ERR_CREDENTIAL_NOT_REQUESTER: 403,
  ERR_CREDENTIAL_NOT_REISSUABLE: 409,
  ERR_APPROVAL_SELF: 403,
  ERR_APPROVAL_NOT_ELIGIBLE: 403,
  ERR_POLICY_DENIED: 403,
  ERR_POLICY_NO_APPROVER: 403,
  ERR_POLICY_OUTSIDE_WINDOW: 403,
  ERR_PROVIDER_FAILED: 502,
};

export interface ApiServerOptions {
  broker: Broker;
  store: Store;
  tokens: readonly ApiToken[];
  logger: Logger;
  /** Routes of other broker features (CI exchange, proxy sessions), mounted beside the core ones. */
  extraRoutes?: readonly Route[];
  /** Routes that authenticate on their own (the CI exchange takes an OIDC token, not an API token). */
  publicRoutes?: readonly PublicRoute[];
  /** What `GET /v1/audit/verify` checks signatures and checkpoints against (the broker app's `audit`). */
  audit?: { keyring: AuditKeyring | undefined; checkpointFile: string | undefined };
  /**
   * Parts whose trouble degrades Warden without stopping it (chat), as `/v1/health` shows them:
   * `{chat: {degraded: true, slack: {...}}}`. A degraded part leaves the answer 200, with
   * `status: "degraded"`: proxies, API and CI still work, so nothing should restart Warden for it.
   */
  health?: () => Record<string, HealthPart>;
}

/** One part's health: whether it is degraded, and facts to show (never secrets). */
export interface HealthPart {
  degraded: boolean;
  [fact: string]: unknown;
}

export type Handler = (ctx: {
  caller: ApiCaller;
  params: string[];
  query: URLSearchParams;
  body: Record<string, unknown>;
}) => Promise<unknown>;

export interface Route {
  method: string;
  pattern: RegExp;
  handler: Handler;
}

/** Reads an optional or required string field (at most 1000 characters) of a JSON body. */
export function str(body: Record<string, unknown>, key: string, required = true): string | undefined {
  const value = body[key];
  if (value === undefined || value === null) {
    if (required) throw new InvalidInputError('ERR_API_BAD_REQUEST', `"${key}" is required`);
    return undefined;
  }
  if (typeof value !== 'string' || value.length > 1000) {
    throw new InvalidInputError(
      'ERR_API_BAD_REQUEST',
      `"${key}" must be a string of at most 1000 characters`,
    );
  }
  return value;
}

/** Service callers say which person they act for; admin callers act as admins. */
export function actorOf(caller: ApiCaller, body: Record<string, unknown>): Actor {
  const onBehalf = str(body, 'actor', caller.role === 'service');
  if (caller.role === 'admin') return { id: onBehalf ?? `admin:${caller.token}`, admin: true };
  return { id: onBehalf!, admin: false };
}

/** Reads a JSON object body of at most `MAX_BODY` bytes. */
export function readBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > MAX_BODY) {
      reject(new InvalidInputError('ERR_API_BAD_REQUEST', `body larger than ${MAX_BODY} bytes`));
      req.resume();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY) {
        reject(new InvalidInputError('ERR_API_BAD_REQUEST', `body larger than ${MAX_BODY} bytes`));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('error', reject);
    req.on('end', () => {
      if (size === 0) return resolve({});
      try {
        const parsed: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
          reject(new InvalidInputError('ERR_API_BAD_REQUEST', 'the body must be a JSON object'));
        } else resolve(parsed as Record<string, unknown>);
      } catch {
        reject(new InvalidInputError('ERR_API_BAD_REQUEST', 'the body is not valid JSON'));
      }
    });
  });
}

export function send(res: ServerResponse, status: number, payload: unknown): void {
  const body = JSON.stringify(payload);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  });
  res.end(body);
}

/** A route that sees the raw request (its own authentication, body limits and answers). */
export interface PublicRoute {
  method: string;
  pattern: RegExp;
  handle(req: IncomingMessage, res: ServerResponse, params: string[]): Promise<void>;
}

export function buildRoutes(options: ApiServerOptions): Route[] {
  const { broker, store } = options;
  const requireAdmin = (caller: ApiCaller) => {
    if (caller.role !== 'admin') throw new BrokerError('ERR_FORBIDDEN', 'this call needs an admin token');
  };
  const withCredential = (request: AccessRequest, credential: IssuedCredential | undefined) => ({
    request: toApiRequest(request),
    // The kind renders itself: JSON for programs, and the text the CLI prints as it is.
    ...(credential ? { credential: credential.renderJson(), credential_text: credential.renderText() } : {}),
  });
  return [
    {
      method: 'POST',
      pattern: /^\/v1\/requests$/,
      handler: async ({ caller, body }) => {
        const actor = actorOf(caller, body);
        const requester = caller.role === 'admin' ? (str(body, 'requester', false) ?? actor.id) : actor.id;
        const duration = body.duration;
        if (duration !== undefined && typeof duration !== 'string') {
          throw new InvalidInputError('ERR_API_BAD_REQUEST', '"duration" must be a string like 30m');
        }
        // The credential of a grant that activates inside this call goes back to this caller only.
        const { request, credential } = await broker.submit({
          requester,
          target: str(body, 'target')!,
          level: str(body, 'level', false),
          duration,
          reason: str(body, 'reason', false),
          breakGlass: body.break_glass === true,
          source: 'api',
        });
        return withCredential(request, request.state === 'active' ? credential : undefined);
      },
    },
    {
      // The requester collects the credential of an active grant (a fresh secret each time).
      method: 'POST',
      pattern: /^\/v1\/requests\/([a-z0-9]{1,64})\/credential$/,
      handler: async ({ caller, params, body }) => {
        const { request, credential } = await broker.collect(params[0]!, actorOf(caller, body));
        return withCredential(request, credential);
      },
    },
    {
      method: 'GET',
      pattern: /^\/v1\/requests$/,
      handler: async ({ query }) => {
        const states = query.get('state')?.split(',').filter(Boolean) as RequestState[] | undefined;
        const list = await broker.list({
          ...(query.get('requester') ? { requester: query.get('requester')! } : {}),
          ...(query.get('target') ? { target: query.get('target')! } : {}),
          ...(states?.length ? { states } : {}),
          limit: Math.min(Number(query.get('limit') ?? 100) || 100, 1000),
        });
        return { requests: list.map(toApiRequest) };
      },
    },
    {
      method: 'GET',
      pattern: /^\/v1\/requests\/([a-z0-9]{1,64})$/,
      handler: async ({ params }) => {
        const details = await broker.show(params[0]!);
        return {
          request: toApiRequest(details.request),
          approvals: details.approvals,
          credentials: details.credentials,
          requirement: details.requirement,
        };
      },
    },
    ...(['approve', 'deny', 'cancel', 'revoke', 'extend'] as const).map(
      (verb): Route => ({
        method: 'POST',
        pattern: new RegExp(`^/v1/requests/([a-z0-9]{1,64})/${verb}$`),
        handler: async ({ caller, params, body }) => {
          const actor = actorOf(caller, body);
          const id = params[0]!;
          const request =
            verb === 'approve'
              ? await broker.approve(id, actor)
              : verb === 'deny'
                ? await broker.deny(id, actor, str(body, 'reason')!)
                : verb === 'cancel'
                  ? await broker.cancel(id, actor)
                  : verb === 'revoke'
                    ? await broker.revoke(id, actor, str(body, 'reason', false))
                    : await broker.extend(id, actor, str(body, 'duration')!);
          return { request: toApiRequest(request) };
        },
      }),
    ),
    {
      method: 'GET',
      pattern: /^\/v1\/policy\/explain$/,
      handler: async ({ query }) =>
        explainPolicy(broker.config, broker.directory, {
          user: query.get('user') ?? '',
          target: query.get('target') ?? '',
          level: query.get('level') ?? undefined,
          at: Date.now(),
        }),
    },
    {
      method: 'GET',
      pattern: /^\/v1\/audit$/,
      handler: async ({ caller, query }) => {
        requireAdmin(caller);
        const since = query.get('since');
        const entries = await store.readAudit({
          ...(since ? { since: Date.parse(since) } : {}),
          ...(query.get('after_seq') ? { afterSeq: Number(query.get('after_seq')) } : {}),
          limit: Math.min(Number(query.get('limit') ?? 1000) || 1000, 10_000),
        });
        return { entries };
      },
    },
    {
      method: 'GET',
      pattern: /^\/v1\/audit\/verify$/,
      handler: async ({ caller }) => {
        requireAdmin(caller);
        const file = options.audit?.checkpointFile;
        const checkpoints: AuditCheckpoint[] = file ? readCheckpointFile(file) : [];
        const report = await verifyAuditLog({ store, keyring: options.audit?.keyring, checkpoints });
        // Kept for callers of the chain-only answer: lastSeq and lastHash name the verified head.
        return { ...report, lastSeq: report.head.seq, lastHash: report.head.hash };
      },
    },
  ];
}

/** Maps an error to an HTTP answer; unexpected errors never leak their message. */
export function toErrorResponse(error: unknown): {
  status: number;
  body: { error: { code: string; message: string; details?: unknown } };
} {
  if (error instanceof BrokerError) {
    const status = STATUS_BY_CODE[error.code] ?? (error.code === 'ERR_STORE_FAILED' ? 503 : 400);
    const details = Object.keys(error.details).length > 0 ? error.details : undefined;
    return {
      status,
      body: { error: { code: error.code, message: error.message, ...(details ? { details } : {}) } },
    };
  }
  return { status: 500, body: { error: { code: 'ERR_INTERNAL', message: 'internal error' } } };
}

export class ApiServer {
  readonly #options: ApiServerOptions;
  readonly #routes: Route[];
  readonly #server: Server;

  constructor(options: ApiServerOptions) {
    this.#options = options;
    this.#routes = [...buildRoutes(options), ...(options.extraRoutes ?? [])];
    this.#server = createHttpListener((req, res) => this.#handle(req, res), {
      name: 'api',
      logger: options.logger,
      requestTimeoutMs: 30_000,
    });
  }

  listen(port: number, host = '127.0.0.1'): Promise<AddressInfo> {
    return listen(this.#server, port, host);
  }

  close(): Promise<void> {
    return closeServer(this.#server);
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://warden');
    try {
      // Liveness: the process answers. It never touches the store, so an orchestrator does not
      // restart Warden (cutting every proxied session) because the database blinked.
      if (req.method === 'GET' && url.pathname === '/v1/health/live') {
        send(res, 200, { ok: true });
        return;
      }
      // Readiness: the store answers too.
      if (req.method === 'GET' && url.pathname === '/v1/health') {
        await this.#options.store.ping();
        // A target that cannot be reached is reported, not fatal: the API, the proxies and the
        // other targets go on (a load balancer must not pull the process for one database).
        const targets = Object.fromEntries(
          Object.entries(this.#options.broker.targetHealth()).map(([name, h]) => [
            name,
            { ok: h.ok, since: new Date(h.since).toISOString(), ...(h.error ? { error: h.error } : {}) },
          ]),
        );
        const parts = this.#options.health?.() ?? {};
        const degraded =
          Object.values(targets).some((t) => !t.ok) || Object.values(parts).some((part) => part.degraded);
        send(res, 200, {
          ok: true,
          status: degraded ? 'degraded' : 'ok',
          store: this.#options.store.kind,
          targets,
          ...parts,
          ...(degraded ? { degraded } : {}),
        });
        return;
      }
      for (const route of this.#options.publicRoutes ?? []) {
        const match = route.pattern.exec(url.pathname);
        if (match && route.method === req.method) {
          await route.handle(req, res, match.slice(1));
          return;
        }
      }
      if (
        url.pathname.startsWith('/v1/ci/') &&
        !this.#options.publicRoutes?.some((r) => r.pattern.test(url.pathname))
      ) {
        // Without this, a CI job's OIDC token meets the API-token check: "invalid credentials".
        send(res, 404, {
          error: {
            code: 'ERR_CI_NOT_CONFIGURED',
            message: 'this Warden does not exchange CI tokens: its configuration has no ci: section',
          },
        });
        return;
      }
      const caller = authenticateBearer(req.headers.authorization, this.#options.tokens);
      for (const route of this.#routes) {
        const match = route.pattern.exec(url.pathname);
        if (!match || route.method !== req.method) continue;
        const body = req.method === 'POST' ? await readBody(req) : {};
        // Every audit entry of this call names the token that made it, beside the person acted for.
        const result = await runAsCaller(tokenVia(caller.token), () =>
          route.handler({ caller, params: match.slice(1), query: url.searchParams, body }),
        );
        send(res, 200, result);
        return;
      }
      send(res, 404, { error: { code: 'ERR_NOT_FOUND', message: 'no such endpoint' } });
    } catch (error) {
      const { status, body } = toErrorResponse(error);
      if (status >= 500) this.#options.logger.error({ err: error, path: url.pathname }, 'API call failed');
      else this.#options.logger.debug({ code: body.error.code, path: url.pathname }, 'API call refused');
      send(res, status, body);
    }
  }
}
