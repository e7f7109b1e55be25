/**
 * A local stand-in of the HashiCorp Vault HTTP API (no Vault server can be installed here), for
 * the endpoints Warden uses, with Vault's documented request and response shapes: JSON bodies,
 * `{"errors": [...]}` on failure, 204 for writes that return nothing, 400 (bad input, refused),
 * 403 (no or bad `X-Vault-Token`, or a policy without the capability), 404 (no such path, secret,
 * role; `{"errors": []}` like Vault), 405, 413, 503 (sealed).
 *
 * Served: `sys/seal-status`, `sys/health`, `sys/capabilities-self`, `sys/leases/{renew,revoke,
 * revoke-prefix,lookup}` (and the legacy `sys/revoke-prefix`), `auth/token/{lookup-self,renew-self}`,
 * `auth/approle/login`, `auth/kubernetes/login`, KV version 2 at `kv/` (`data/<path>`), the
 * database secrets engine at `database/` (`config/<name>`, `roles/<name>`, `creds/<name>`), and the
 * SSH secrets engine at `ssh/` (`roles/<name>`, `sign/<name>`, `public_key`).
 *
 * Leases behave as Vault's do: a TTL (the role's `default_ttl`), renewal with an `increment` capped
 * at the role's `max_ttl` counted from issue (with Vault's warning), revocation at expiry by the
 * stand-in itself, revoke by id (idempotent: an unknown lease is a 204) and by prefix. The database
 * engine runs the role's `creation_statements` (and `renew_statements`, `revocation_statements`)
 * against the real PostgreSQL as Vault's Postgres plugin does: each entry split on `;`, run in one
 * transaction, `{{name}}`/`{{username}}`, `{{password}}` and `{{expiration}}` substituted as plain
 * text (the statements quote them), the default revocation revoking the role's privileges and
 * dropping it. Like Vault, it never ends the role's open sessions. The SSH engine signs keys with a
 * real Ed25519 CA (`ca`), through the same certificate code Warden's own CA uses.
 *
 * Over HTTPS when started with a certificate (`vault.ca` tests).
 *
 * Lists are `GET ?list=true` (or `=1`): Node's HTTP server rejects the `LIST` method itself, which
 * is why Warden sends lists that way. Request bodies are capped at {@link MAX_BODY} bytes; every
 * socket error is handled.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import pg from 'pg';
import { mintUserCertificate } from '../../lib/ssh/certificate.ts';
import { formatCaPublicKeyLine, generateCa, type SshCa } from '../../lib/ssh/keys.ts';

/** Vault's own default limit is 32 MiB; this stand-in needs far less. */
export const MAX_BODY = 1024 * 1024;
const SYSTEM_MAX_TTL = 768 * 3600;

type Json = Record<string, unknown>;

/** A policy: path patterns (Vault's glob: a final `*`, `+` for one segment) to capabilities. */
export type Policy = Record<string, readonly string[]>;

interface Token {
  token: string;
  policies: string[];
  /** Epoch ms; Infinity for root. */
  expiresAt: number;
  maxExpiresAt: number;
  ttl: number;
  renewable: boolean;
  displayName: string;
}

interface Lease {
  id: string;
  issuedAt: number;
  expiresAt: number;
  maxExpiresAt: number;
  lastRenewal: number | null;
  renewable: boolean;
  revoke(): Promise<void>;
  renew?(expiresAt: number): Promise<void>;
  timer?: NodeJS.Timeout;
}

interface DbRole {
  db_name: string;
  creation_statements: string[];
  revocation_statements: string[];
  renew_statements: string[];
  default_ttl: number;
  max_ttl: number;
}

interface SshRole {
  key_type: string;
  allow_user_certificates: boolean;
  allowed_users: string;
  default_user: string;
  ttl: number;
  max_ttl: number;
  allowed_extensions: string;
  default_extensions: Record<string, string>;
}

/** A way to answer the next matching requests wrongly (tests of bad input). */
export type Misbehaviour = 'not-json' | 'truncated' | 'wrong-shape' | 'status-500' | 'hang';

export interface VaultStandin {
  /** `http://127.0.0.1:<port>`. */
  readonly address: string;
  readonly rootToken: string;
  /** The SSH engine's CA. */
  readonly ca: SshCa;
  /** The CA's public key line, for sshd's `TrustedUserCAKeys`. */
  readonly caPublicKey: string;
  sealed: boolean;
  /**
   * Whether the stand-in revokes leases at their expiry itself, as Vault's expiration manager does
   * (default true). Off: a lease outlives its TTL until revoked (a Vault whose expiry lags).
   */
  autoExpire: boolean;
  /** Every request served: method and path (no bodies, no tokens). */
  readonly requests: { method: string; path: string; status: number }[];
  /** Stops answering (connections refused) or answers again on the same port. */
  setDown(down: boolean): Promise<void>;
  addPolicy(name: string, policy: Policy): void;
  /** A token with these policies; `ttl` seconds (default: no expiry). */
  addToken(policies: string[], options?: { ttl?: number; maxTtl?: number; renewable?: boolean }): string;
  addAppRole(
    name: string,
    options: { policies: string[]; tokenTtl?: number; tokenMaxTtl?: number },
  ): { roleId: string; secretId: string };
  addKubernetesRole(name: string, options: { jwt: string; policies: string[]; tokenTtl?: number }): void;
  /** Points the database engine's connection `name` at a PostgreSQL URL (as `database/config/<name>` does). */
  configureDatabase(name: string, url: string): void;
  kvPut(path: string, data: Json): void;
  /** Answers the next `times` requests whose path matches wrongly. */
  misbehave(path: RegExp, mode: Misbehaviour, times?: number): void;
  /** Leases still live, by id. */
  liveLeases(): string[];
  /** How many requests to paths matching `path` were served. */
  count(path: RegExp): number;
  close(): Promise<void>;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly errors: string[],
  ) {
    super(errors[0] ?? String(status));
  }
}

const denied = () => new HttpError(403, ['permission denied']);
const notFound = () => new HttpError(404, []);
const bad = (message: string) => new HttpError(400, [message]);

/** Vault's duration input: seconds as a number or `"90s"`, `"5m"`, `"1h"`, `"768h"`. */
function parseTtl(value: unknown, field: string): number {
  if (value === undefined || value === null || value === '') return 0;
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return Math.floor(value);
  if (typeof value === 'string') {
    const match = /^(\d+)(s|m|h|d)?$/.exec(value.trim());
    if (match) {
      const n = Number(match[1]);
      return n * ({ s: 1, m: 60, h: 3600, d: 86400 }[match[2] ?? 's'] ?? 1);
    }
  }
  throw bad(`error converting input ${String(value)} for field "${field}": time: invalid duration`);
}

/** Vault's comma-separated or array inputs. */
function parseStrings(value: unknown): string[] {
  if (value === undefined || value === null) return [];
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === 'string');
  if (typeof value === 'string') return value === '' ? [] : [value];
  throw bad('expected a string or a list of strings');
}

/** Vault's Postgres plugin: each entry may hold several statements separated by `;`. */
function splitStatements(entries: readonly string[]): string[] {
  return entries
    .flatMap((e) => e.split(';'))
    .map((s) => s.trim())
    .filter(Boolean);
}

/** `2006-01-02 15:04:05-0700`, the form Vault's Postgres plugin gives `{{expiration}}`. */
function formatExpiration(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 19).replace('T', ' ')}+0000`;
}

function render(template: string, values: Record<string, string>): string {
  return template.replace(/\{\{\s*(\w+)\s*\}\}/g, (whole, key: string) => values[key] ?? whole);
}

/** Vault's glob: `a/b/*` matches a prefix, `+` one path segment, else exact. */
function matches(pattern: string, path: string): boolean {
  const prefix = pattern.endsWith('*');
  const parts = (prefix ? pattern.slice(0, -1) : pattern).split('/');
  const have = path.split('/');
  if (!prefix && parts.length !== have.length) return false;
  for (let i = 0; i < parts.length; i++) {
    const want = parts[i]!;
    const got = have[i];
    if (got === undefined) return false;
    if (want === '+') continue;
    if (i === parts.length - 1 && prefix) return got.startsWith(want);
    if (want !== got) return false;
  }
  return true;
}

/**
 * Starts the stand-in on 127.0.0.1 and a free port; with `tls` (PEM certificate and key), over
 * HTTPS, as a production Vault listens.
 */
export async function startVaultStandin(
  options: { tls?: { cert: string; key: string } } = {},
): Promise<VaultStandin> {
  const rootToken = `hvs.root${randomBytes(12).toString('hex')}`;
  const policies = new Map<string, Policy>();
  const tokens = new Map<string, Token>();
  tokens.set(rootToken, {
    token: rootToken,
    policies: ['root'],
    expiresAt: Number.POSITIVE_INFINITY,
    maxExpiresAt: Number.POSITIVE_INFINITY,
    ttl: 0,
    renewable: false,
    displayName: 'root',
  });
  const appRoles = new Map<
    string,
    { roleId: string; secretId: string; policies: string[]; ttl: number; maxTtl: number }
  >();
  const k8sRoles = new Map<string, { jwt: string; policies: string[]; ttl: number }>();
  const kv = new Map<string, { data: Json; version: number; created: string }>();
  const databases = new Map<string, { url: string; pool: pg.Pool }>();
  const dbRoles = new Map<string, DbRole>();
  const sshRoles = new Map<string, SshRole>();
  const leases = new Map<string, Lease>();
  const ca = generateCa('vault-standin-ssh-ca');
  const requests: VaultStandin['requests'] = [];
  const faults: { path: RegExp; mode: Misbehaviour; times: number }[] = [];
  const sockets = new Set<Socket>();
  let sealed = false;
  let autoExpire = true;
  let closed = false;

  const issueToken = (policyNames: string[], ttl: number, maxTtl: number, displayName: string): Token => {
    const now = Date.now();
    const token: Token = {
      token: `hvs.${randomBytes(18).toString('base64url')}`,
      policies: ['default', ...policyNames],
      expiresAt: ttl > 0 ? now + ttl * 1000 : Number.POSITIVE_INFINITY,
      maxExpiresAt: maxTtl > 0 ? now + maxTtl * 1000 : Number.POSITIVE_INFINITY,
      ttl,
      renewable: ttl > 0,
      displayName,
    };
    tokens.set(token.token, token);
    return token;
  };

  const authOf = (t: Token) => ({
    client_token: t.token,
    accessor: randomBytes(12).toString('hex'),
    policies: t.policies,
    token_policies: t.policies,
    metadata: null,
    lease_duration: Number.isFinite(t.expiresAt)
      ? Math.max(0, Math.round((t.expiresAt - Date.now()) / 1000))
      : 0,
    renewable: t.renewable,
    entity_id: '',
    token_type: 'service',
    orphan: true,
  });

  const capabilitiesOf = (token: Token, path: string): string[] => {
    if (token.policies.includes('root')) return ['root'];
    const caps = new Set<string>();
    for (const name of token.policies) {
      for (const [pattern, list] of Object.entries(policies.get(name) ?? {})) {
        if (matches(pattern, path)) for (const c of list) caps.add(c);
      }
    }
    if (caps.has('deny')) return ['deny'];
    return caps.size ? [...caps].sort() : ['deny'];
  };

  const lookupToken = (req: IncomingMessage): Token => {
    const header = req.headers['x-vault-token'];
    const value = Array.isArray(header) ? header[0] : header;
    const token = value ? tokens.get(value) : undefined;
    if (!token || token.expiresAt <= Date.now()) throw denied();
    return token;
  };

  /** Paths every valid token may use (Vault's `default` policy). */
  const DEFAULT_PATHS = ['auth/token/lookup-self', 'auth/token/renew-self', 'sys/capabilities-self'];

  const authorize = (req: IncomingMessage, path: string, capability: string): Token => {
    const token = lookupToken(req);
    if (DEFAULT_PATHS.includes(path)) return token;
    const caps = capabilitiesOf(token, path);
    if (caps.includes('root')) return token;
    const wanted = capability === 'write' ? ['create', 'update'] : [capability];
    if (!wanted.some((c) => caps.includes(c))) throw denied();
    return token;
  };

  const scheduleExpiry = (lease: Lease) => {
    if (lease.timer) clearTimeout(lease.timer);
    const attempt = (tries: number) => {
      lease.timer = setTimeout(
        () => {
          if (!leases.has(lease.id)) return;
          if (!autoExpire) {
            lease.timer = setTimeout(() => attempt(0), 250);
            lease.timer.unref();
            return;
          }
          lease
            .revoke()
            .then(() => leases.delete(lease.id))
            // Vault retries a failing revocation, up to its limit ("maximum revoke attempts reached").
            .catch(() => {
              if (tries < 6 && !closed) attempt(tries + 1);
            });
        },
        tries === 0 ? Math.max(0, lease.expiresAt - Date.now()) : 1000 * 2 ** tries,
      );
      lease.timer.unref();
    };
    attempt(0);
  };

  const revokeLease = async (id: string) => {
    const lease = leases.get(id);
    if (!lease) return;
    try {
      await lease.revoke();
    } catch (error) {
      throw new HttpError(400, [
        `failed to revoke entry: resp: (*logical.Response)(nil) err: ${(error as Error).message}`,
      ]);
    }
    if (lease.timer) clearTimeout(lease.timer);
    leases.delete(id);
  };

  const runStatements = async (
    dbName: string,
    statements: readonly string[],
    values: Record<string, string>,
  ) => {
    const db = databases.get(dbName);
    if (!db) throw bad(`plugin not found for database ${dbName}`);
    const client = await db.pool.connect();
    let failure: unknown;
    try {
      await client.query('BEGIN');
      for (const statement of splitStatements(statements)) await client.query(render(statement, values));
      await client.query('COMMIT');
    } catch (error) {
      failure = error;
      await client.query('ROLLBACK').catch(() => {});
      throw new Error(`pq: ${(error as Error).message}`);
    } finally {
      client.release(
        failure instanceof Error && /terminat|Connection/.test(failure.message) ? true : undefined,
      );
    }
  };

  const DEFAULT_REVOCATION = [
    'REVOKE ALL PRIVILEGES ON ALL TABLES IN SCHEMA public FROM "{{name}}"',
    'REVOKE ALL PRIVILEGES ON ALL SEQUENCES IN SCHEMA public FROM "{{name}}"',
    'REVOKE USAGE ON SCHEMA public FROM "{{name}}"',
    'DROP ROLE IF EXISTS "{{name}}"',
  ];
  const DEFAULT_RENEW = [`ALTER ROLE "{{name}}" VALID UNTIL '{{expiration}}'`];

  // ---- routes ----

  type Handler = (req: IncomingMessage, rest: string, body: Json, list: boolean) => Promise<[number, Json?]>;

  const sys: Handler = async (req, rest, body, list) => {
    const method = req.method;
    if (rest === 'seal-status' && method === 'GET') {
      return [
        200,
        {
          type: 'shamir',
          initialized: true,
          sealed,
          t: 1,
          n: 1,
          progress: 0,
          nonce: '',
          version: '1.15.6+standin',
          migration: false,
          recovery_seal: false,
          storage_type: 'inmem',
        },
      ];
    }
    if (rest === 'health' && method === 'GET') {
      return [
        sealed ? 503 : 200,
        {
          initialized: true,
          sealed,
          standby: false,
          version: '1.15.6+standin',
          server_time_utc: Math.floor(Date.now() / 1000),
        },
      ];
    }
    if (sealed) throw new HttpError(503, ['Vault is sealed']);
    if (rest === 'capabilities-self' && (method === 'POST' || method === 'PUT')) {
      const token = lookupToken(req);
      const paths = body.paths !== undefined ? parseStrings(body.paths) : parseStrings(body.path);
      if (paths.length === 0) throw bad('paths must be supplied');
      const out: Json = {};
      for (const p of paths) out[p] = DEFAULT_PATHS.includes(p) ? ['update'] : capabilitiesOf(token, p);
      if (paths.length === 1) out.capabilities = out[paths[0]!];
      return [200, { ...out, data: { ...out } }];
    }
    const leasePath = /^(leases\/)?(renew|revoke|revoke-prefix|lookup)(\/(.*))?$/.exec(rest);
    if (!leasePath) throw new HttpError(404, [`no handler for route "sys/${rest}". route entry not found.`]);
    const [, , verb, , tail = ''] = leasePath;
    if (verb === 'lookup' && list && method === 'GET') {
      authorize(req, `sys/leases/lookup/${tail}`, 'list');
      const prefix = tail.endsWith('/') || tail === '' ? tail : `${tail}/`;
      const keys = new Set<string>();
      for (const id of leases.keys()) {
        if (!id.startsWith(prefix)) continue;
        const next = id.slice(prefix.length);
        const slash = next.indexOf('/');
        keys.add(slash === -1 ? next : next.slice(0, slash + 1));
      }
      if (keys.size === 0) throw notFound();
      return [200, { data: { keys: [...keys].sort() } }];
    }
    if (method !== 'PUT' && method !== 'POST') throw new HttpError(405, ['unsupported operation']);
    if (verb === 'revoke-prefix') {
      authorize(req, `sys/${rest}`, 'sudo');
      if (!tail) throw bad('prefix is required');
      for (const id of [...leases.keys()].filter((i) => i.startsWith(tail))) await revokeLease(id);
      return [204];
    }
    const leaseId = (typeof body.lease_id === 'string' && body.lease_id) || tail;
    if (!leaseId) throw bad('lease_id must be specified');
    authorize(req, `sys/leases/${verb}`, 'write');
    if (verb === 'revoke') {
      await revokeLease(leaseId);
      return [204];
    }
    const lease = leases.get(leaseId);
    if (verb === 'lookup') {
      if (!lease) throw bad('invalid lease');
      return [
        200,
        {
          data: {
            id: lease.id,
            issue_time: new Date(lease.issuedAt).toISOString(),
            expire_time: new Date(lease.expiresAt).toISOString(),
            last_renewal: lease.lastRenewal ? new Date(lease.lastRenewal).toISOString() : null,
            renewable: lease.renewable,
            ttl: Math.max(0, Math.round((lease.expiresAt - Date.now()) / 1000)),
          },
        },
      ];
    }
    // renew
    if (!lease || lease.expiresAt <= Date.now()) throw bad('lease not found or lease is not renewable');
    if (!lease.renewable) throw bad('lease is not renewable');
    const increment = parseTtl(body.increment, 'increment');
    const now = Date.now();
    const wanted = increment > 0 ? now + increment * 1000 : lease.expiresAt;
    const warnings: string[] = [];
    let expiresAt = wanted;
    if (wanted > lease.maxExpiresAt) {
      expiresAt = lease.maxExpiresAt;
      warnings.push(
        `TTL of "${increment}s" exceeded the effective max_ttl of "${Math.round((lease.maxExpiresAt - now) / 1000)}s"; TTL value is capped accordingly`,
      );
    }
    if (expiresAt <= now) throw bad('past the max TTL, cannot renew');
    await lease.renew?.(expiresAt);
    lease.expiresAt = expiresAt;
    lease.lastRenewal = now;
    scheduleExpiry(lease);
    return [
      200,
      {
        lease_id: lease.id,
        renewable: true,
        lease_duration: Math.round((expiresAt - now) / 1000),
        data: null,
        warnings: warnings.length ? warnings : null,
        auth: null,
      },
    ];
  };

  const auth: Handler = async (req, rest, body) => {
    if (sealed) throw new HttpError(503, ['Vault is sealed']);
    if (req.method !== 'POST' && req.method !== 'PUT' && req.method !== 'GET')
      throw new HttpError(405, ['unsupported operation']);
    if (rest === 'token/lookup-self' && req.method === 'GET') {
      const t = lookupToken(req);
      return [
        200,
        {
          data: {
            id: t.token,
            policies: t.policies,
            display_name: t.displayName,
            renewable: t.renewable,
            ttl: Number.isFinite(t.expiresAt) ? Math.round((t.expiresAt - Date.now()) / 1000) : 0,
            expire_time: Number.isFinite(t.expiresAt) ? new Date(t.expiresAt).toISOString() : null,
          },
        },
      ];
    }
    if (rest === 'token/renew-self') {
      const t = lookupToken(req);
      if (!t.renewable) throw bad('lease is not renewable');
      const increment = parseTtl(body.increment, 'increment') || t.ttl;
      t.expiresAt = Math.min(Date.now() + increment * 1000, t.maxExpiresAt);
      return [200, { auth: authOf(t), warnings: null, data: null }];
    }
    if (rest === 'approle/login') {
      const role = [...appRoles.values()].find((r) => r.roleId === body.role_id);
      if (!role || role.secretId !== body.secret_id) throw bad('invalid role or secret ID');
      return [
        200,
        {
          auth: authOf(issueToken(role.policies, role.ttl, role.maxTtl, 'approle')),
          data: null,
          warnings: null,
        },
      ];
    }
    if (rest === 'kubernetes/login') {
      if (typeof body.role !== 'string' || !body.role) throw bad('missing role');
      const role = k8sRoles.get(body.role);
      if (!role) throw bad(`invalid role name "${body.role}"`);
      if (body.jwt !== role.jwt) throw denied();
      return [
        200,
        {
          auth: authOf(issueToken(role.policies, role.ttl, 0, `kubernetes-${body.role}`)),
          data: null,
          warnings: null,
        },
      ];
    }
    throw new HttpError(404, [`no handler for route "auth/${rest}". route entry not found.`]);
  };

  const kvEngine: Handler = async (req, rest, body) => {
    const path = `kv/${rest}`;
    if (!rest.startsWith('data/'))
      throw new HttpError(404, [`no handler for route "${path}". route entry not found.`]);
    const key = rest.slice(5);
    if (req.method === 'GET') {
      authorize(req, path, 'read');
      const entry = kv.get(key);
      if (!entry) throw notFound();
      return [
        200,
        {
          request_id: randomUUID(),
          lease_id: '',
          renewable: false,
          lease_duration: 0,
          data: {
            data: entry.data,
            metadata: {
              created_time: entry.created,
              custom_metadata: null,
              deletion_time: '',
              destroyed: false,
              version: entry.version,
            },
          },
          warnings: null,
        },
      ];
    }
    if (req.method === 'POST' || req.method === 'PUT') {
      authorize(req, path, 'write');
      if (typeof body.data !== 'object' || body.data === null) throw bad('no data provided');
      const version = (kv.get(key)?.version ?? 0) + 1;
      kv.set(key, { data: body.data as Json, version, created: new Date().toISOString() });
      return [200, { data: { version, created_time: new Date().toISOString() } }];
    }
    throw new HttpError(405, ['unsupported operation']);
  };

  const databaseEngine: Handler = async (req, rest, body) => {
    const path = `database/${rest}`;
    const [kind, name] = rest.split('/', 2) as [string, string | undefined];
    if (!name) throw new HttpError(404, [`no handler for route "${path}". route entry not found.`]);
    const write = req.method === 'POST' || req.method === 'PUT';
    if (kind === 'config' && write) {
      authorize(req, path, 'write');
      const url = String(body.connection_url ?? '');
      if (!url) throw bad('connection_url cannot be empty');
      const resolved = render(url, {
        username: String(body.username ?? ''),
        password: String(body.password ?? ''),
      });
      configureDatabase(name, resolved);
      return [204];
    }
    if (kind === 'roles') {
      if (req.method === 'GET') {
        authorize(req, path, 'read');
        const role = dbRoles.get(name);
        if (!role) throw notFound();
        return [200, { data: { ...role, credential_type: 'password' } }];
      }
      if (write) {
        authorize(req, path, 'write');
        const dbName = String(body.db_name ?? '');
        if (!dbName) throw bad('empty database name attribute');
        const creation = parseStrings(body.creation_statements);
        if (creation.length === 0) throw bad('creation statements are required');
        dbRoles.set(name, {
          db_name: dbName,
          creation_statements: creation,
          revocation_statements: parseStrings(body.revocation_statements),
          renew_statements: parseStrings(body.renew_statements),
          default_ttl: parseTtl(body.default_ttl, 'default_ttl'),
          max_ttl: parseTtl(body.max_ttl, 'max_ttl'),
        });
        return [204];
      }
      if (req.method === 'DELETE') {
        authorize(req, path, 'delete');
        dbRoles.delete(name);
        return [204];
      }
    }
    if (kind === 'creds' && req.method === 'GET') {
      const token = authorize(req, path, 'read');
      const role = dbRoles.get(name);
      if (!role) throw bad(`unknown role: ${name}`);
      const now = Date.now();
      const maxTtl = Math.min(role.max_ttl || SYSTEM_MAX_TTL, SYSTEM_MAX_TTL);
      const ttl = Math.min(role.default_ttl || SYSTEM_MAX_TTL, maxTtl);
      const username =
        `v-${token.displayName.slice(0, 8)}-${name.slice(0, 8)}-${randomBytes(10).toString('hex')}-${Math.floor(now / 1000)}`.slice(
          0,
          63,
        );
      const password = `A1a-${randomBytes(12)
        .toString('base64url')
        .replace(/[^A-Za-z0-9]/g, 'x')
        .slice(0, 16)}`;
      const expiresAt = now + ttl * 1000;
      try {
        await runStatements(role.db_name, role.creation_statements, {
          name: username,
          username,
          password,
          expiration: formatExpiration(expiresAt),
        });
      } catch (error) {
        throw new HttpError(500, [`1 error occurred:\n\t* ${(error as Error).message}\n\n`]);
      }
      const lease: Lease = {
        id: `database/creds/${name}/${randomBytes(12).toString('base64url')}`,
        issuedAt: now,
        expiresAt,
        maxExpiresAt: now + maxTtl * 1000,
        lastRenewal: null,
        renewable: true,
        // Like Vault, the role's statements as they are at revocation (or renewal) time.
        revoke: () => {
          const now = dbRoles.get(name) ?? role;
          return runStatements(
            now.db_name,
            now.revocation_statements.length ? now.revocation_statements : DEFAULT_REVOCATION,
            { name: username, username },
          );
        },
        renew: (at) => {
          const now = dbRoles.get(name) ?? role;
          return runStatements(
            now.db_name,
            now.renew_statements.length ? now.renew_statements : DEFAULT_RENEW,
            { name: username, username, expiration: formatExpiration(at) },
          );
        },
      };
      leases.set(lease.id, lease);
      scheduleExpiry(lease);
      return [
        200,
        {
          request_id: randomUUID(),
          lease_id: lease.id,
          renewable: true,
          lease_duration: ttl,
          data: { username, password },
          wrap_info: null,
          warnings: null,
          auth: null,
        },
      ];
    }
    throw new HttpError(405, ['unsupported operation']);
  };

  const sshEngine: Handler = async (req, rest, body) => {
    const path = `ssh/${rest}`;
    const write = req.method === 'POST' || req.method === 'PUT';
    if (rest === 'public_key' && req.method === 'GET') {
      return [200, { data: { public_key: formatCaPublicKeyLine(ca) } }];
    }
    const [kind, name] = rest.split('/', 2) as [string, string | undefined];
    if (!name) throw new HttpError(404, [`no handler for route "${path}". route entry not found.`]);
    if (kind === 'roles') {
      if (req.method === 'GET') {
        authorize(req, path, 'read');
        const role = sshRoles.get(name);
        if (!role) throw notFound();
        return [200, { data: role }];
      }
      if (write) {
        authorize(req, path, 'write');
        if (body.key_type !== 'ca') throw bad('key_type must be "ca" for signing');
        sshRoles.set(name, {
          key_type: 'ca',
          allow_user_certificates: body.allow_user_certificates === true,
          allowed_users: String(body.allowed_users ?? ''),
          default_user: String(body.default_user ?? ''),
          ttl: parseTtl(body.ttl, 'ttl'),
          max_ttl: parseTtl(body.max_ttl, 'max_ttl'),
          allowed_extensions: String(body.allowed_extensions ?? ''),
          default_extensions: (body.default_extensions as Record<string, string>) ?? {},
        });
        return [204];
      }
    }
    if (kind === 'sign' && write) {
      authorize(req, path, 'write');
      const role = sshRoles.get(name);
      if (!role) throw bad(`Unknown role: ${name}`);
      if (!role.allow_user_certificates) throw bad('Either a role or a public key is missing');
      if (typeof body.public_key !== 'string' || !body.public_key) throw bad('missing public_key');
      const principals = String(body.valid_principals ?? role.default_user)
        .split(',')
        .map((p) => p.trim())
        .filter(Boolean);
      const allowed = role.allowed_users.split(',').map((u) => u.trim());
      for (const p of principals) {
        if (!allowed.includes('*') && !allowed.includes(p))
          throw bad(`${p} is not a valid value for valid_principals`);
      }
      const maxTtl = role.max_ttl || SYSTEM_MAX_TTL;
      const ttl = parseTtl(body.ttl, 'ttl') || role.ttl || maxTtl;
      if (ttl > maxTtl) throw bad(`ttl is larger than maximum allowed (${maxTtl})`);
      const extensionsIn =
        (body.extensions as Record<string, unknown> | undefined) ?? role.default_extensions;
      const allowedExt = role.allowed_extensions.split(',').map((e) => e.trim());
      for (const e of Object.keys(extensionsIn)) {
        if (!allowedExt.includes('*') && !allowedExt.includes(e))
          throw bad(`extensions [${e}] are not on allowed list`);
      }
      const serial = randomBytes(8).readBigUInt64BE() | 1n;
      const now = Date.now();
      let minted: ReturnType<typeof mintUserCertificate>;
      try {
        minted = mintUserCertificate({
          ca,
          publicKey: body.public_key,
          principals,
          validAfter: new Date(now),
          validBefore: new Date(now + ttl * 1000),
          keyId: typeof body.key_id === 'string' && body.key_id ? body.key_id : `vault-standin-${serial}`,
          serial,
          extensions: {
            permitPty: 'permit-pty' in extensionsIn,
            permitAgentForwarding: 'permit-agent-forwarding' in extensionsIn,
            permitPortForwarding: 'permit-port-forwarding' in extensionsIn,
            permitX11Forwarding: 'permit-X11-forwarding' in extensionsIn,
          },
        });
      } catch (error) {
        throw bad(`failed to parse public_key as SSH key: ${(error as Error).message}`);
      }
      return [
        200,
        {
          lease_id: '',
          renewable: false,
          lease_duration: 0,
          data: {
            serial_number: serial.toString(16).padStart(16, '0'),
            signed_key: `${minted.certificate}\n`,
          },
          warnings: null,
        },
      ];
    }
    throw new HttpError(405, ['unsupported operation']);
  };

  const ENGINES: Record<string, Handler> = {
    sys,
    auth,
    kv: kvEngine,
    database: databaseEngine,
    ssh: sshEngine,
  };

  const send = (res: ServerResponse, status: number, body?: Json | string) => {
    if (res.headersSent || res.destroyed) return;
    if (status === 204 || body === undefined) {
      res.writeHead(status).end();
      return;
    }
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(text);
  };

  const readBody = (req: IncomingMessage): Promise<Buffer> =>
    new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_BODY) {
          reject(new HttpError(413, ['http: request body too large']));
          req.resume();
          return;
        }
        chunks.push(chunk);
      });
      req.on('end', () => resolve(Buffer.concat(chunks)));
      req.on('error', reject);
    });

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://standin');
    const path = url.pathname.replace(/^\/v1\//, '');
    let status = 500;
    try {
      if (!url.pathname.startsWith('/v1/')) throw notFound();
      const fault = faults.find((f) => f.path.test(path) && f.times > 0);
      if (fault) {
        fault.times--;
        status = fault.mode === 'status-500' ? 500 : 200;
        if (fault.mode === 'hang') return;
        if (fault.mode === 'not-json') send(res, 200, '<html><body>proxy error</body></html>');
        else if (fault.mode === 'truncated') send(res, 200, '{"lease_id":"database/creds/x","data":{"userna');
        else if (fault.mode === 'wrong-shape')
          send(res, 200, { data: 'not an object', auth: 'nope', lease_id: 7, keys: 3 });
        else send(res, 500, { errors: ['internal error'] });
        return;
      }
      const raw = await readBody(req);
      let body: Json = {};
      if (raw.length > 0) {
        try {
          const parsed = JSON.parse(raw.toString('utf8')) as unknown;
          if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
            throw new Error('not an object');
          body = parsed as Json;
        } catch (error) {
          throw bad(`failed to parse JSON input: ${(error as Error).message}`);
        }
      }
      const slash = path.indexOf('/');
      const engine = ENGINES[slash === -1 ? path : path.slice(0, slash)];
      if (!engine) throw new HttpError(404, [`no handler for route "${path}". route entry not found.`]);
      const list = req.method === 'GET' && ['true', '1'].includes(url.searchParams.get('list') ?? '');
      if (sealed && engine !== sys) throw new HttpError(503, ['Vault is sealed']);
      const [code, answer] = await engine(req, slash === -1 ? '' : path.slice(slash + 1), body, list);
      status = code;
      send(res, code, answer);
    } catch (error) {
      if (error instanceof HttpError) {
        status = error.status;
        send(res, error.status, { errors: error.errors });
      } else {
        status = 500;
        send(res, 500, { errors: [`internal error: ${(error as Error).message}`] });
      }
    } finally {
      requests.push({ method: req.method ?? '?', path, status });
    }
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    req.on('error', () => {});
    res.on('error', () => {});
    void handle(req, res);
  };
  const server: Server = options.tls ? createHttpsServer(options.tls, onRequest) : createServer(onRequest);
  server.on('clientError', (_error, socket) => socket.destroy());
  // A client that refuses the certificate ends the handshake: nothing to answer.
  server.on('tlsClientError', (_error, socket) => socket.destroy());
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
  });
  server.keepAliveTimeout = 2000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  let down = false;

  function configureDatabase(name: string, url: string): void {
    const old = databases.get(name);
    if (old) void old.pool.end().catch(() => {});
    const pool = new pg.Pool({ connectionString: url, max: 4 });
    pool.on('error', () => {});
    databases.set(name, { url, pool });
  }

  return {
    address: `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    rootToken,
    ca,
    caPublicKey: formatCaPublicKeyLine(ca),
    get sealed() {
      return sealed;
    },
    set sealed(value: boolean) {
      sealed = value;
    },
    get autoExpire() {
      return autoExpire;
    },
    set autoExpire(value: boolean) {
      autoExpire = value;
    },
    requests,
    async setDown(value: boolean) {
      if (value === down) return;
      down = value;
      if (value) {
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          for (const socket of sockets) socket.destroy();
        });
      } else {
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen(port, '127.0.0.1', () => {
            server.off('error', reject);
            resolve();
          });
        });
      }
    },
    addPolicy(name, policy) {
      policies.set(name, policy);
    },
    addToken(policyNames, options = {}) {
      const t = issueToken(policyNames, options.ttl ?? 0, options.maxTtl ?? 0, 'token');
      if (options.renewable !== undefined) t.renewable = options.renewable;
      return t.token;
    },
    addAppRole(name, options) {
      const entry = {
        roleId: randomUUID(),
        secretId: randomUUID(),
        policies: options.policies,
        ttl: options.tokenTtl ?? 3600,
        maxTtl: options.tokenMaxTtl ?? 0,
      };
      appRoles.set(name, entry);
      return { roleId: entry.roleId, secretId: entry.secretId };
    },
    addKubernetesRole(name, options) {
      k8sRoles.set(name, { jwt: options.jwt, policies: options.policies, ttl: options.tokenTtl ?? 3600 });
    },
    configureDatabase,
    kvPut(path, data) {
      kv.set(path, { data, version: (kv.get(path)?.version ?? 0) + 1, created: new Date().toISOString() });
    },
    misbehave(path, mode, times = 1) {
      faults.push({ path, mode, times });
    },
    liveLeases() {
      return [...leases.keys()];
    },
    count(path) {
      return requests.filter((r) => path.test(r.path)).length;
    },
    async close() {
      closed = true;
      for (const lease of leases.values()) if (lease.timer) clearTimeout(lease.timer);
      if (!down) {
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          for (const socket of sockets) socket.destroy();
        });
      }
      await Promise.all([...databases.values()].map((d) => d.pool.end().catch(() => {})));
    },
  };
}
