/**
 * Warden's connection to HashiCorp Vault, through `node-vault`: the login (token, AppRole or
 * Kubernetes), the token's renewal before it expires, and every call's failure turned into a
 * {@link VaultError} that names what to fix (sealed, permission denied, not found, refused,
 * unreachable, or an answer that is not what Vault documents).
 *
 * Lists are sent as `GET ...?list=1` (`noCustomHTTPVerbs`): Node's own HTTP server, and some
 * proxies in front of Vault, reject the `LIST` method node-vault sends otherwise.
 */
import { readFile } from 'node:fs/promises';
import nodeVault from 'node-vault';
import type { VaultAuthConfig, VaultConfig } from '../config/schema.ts';
import type { Secret, SecretRef } from '../config/secrets.ts';
import { VaultError, type VaultErrorCode } from '../errors.ts';
import type { Logger } from '../log.ts';

/** What one Vault answer holds that Warden reads: a lease, `data`, `auth`, `warnings`. */
export interface VaultResponse {
  lease_id?: string;
  lease_duration?: number;
  renewable?: boolean;
  data?: Record<string, unknown> | null;
  auth?: VaultAuth | null;
  warnings?: string[] | null;
  [key: string]: unknown;
}

interface VaultAuth {
  client_token: string;
  lease_duration: number;
  renewable: boolean;
}

/** Options of {@link VaultClient}. */
export interface VaultClientOptions {
  settings: VaultConfig;
  /** Resolves the login's own secrets (`vault.auth.token`, `role_id`, `secret_id`): env and file only. */
  resolveSecret(ref: SecretRef, path: string): Promise<Secret>;
  logger?: Logger | undefined;
  /** Reads the Kubernetes service-account JWT (default: the file system). */
  readJwt?: (file: string) => Promise<string>;
  /** Renew the token when this fraction of its TTL has passed (default 2/3). */
  renewFraction?: number;
}

/** Connection-level failures node-vault passes through from axios. */
const NETWORK_CODES =
  /^(ECONNREFUSED|ECONNRESET|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|ECONNABORTED|EHOSTUNREACH|ENETUNREACH|EPIPE|ERR_SOCKET|ERR_TLS)/;
/** OpenSSL's verification failures, as Node reports them: a certificate not trusted or not matching. */
const TLS_CODES = /^(CERT_|UNABLE_TO|DEPTH_ZERO|SELF_SIGNED|ERR_TLS_CERT_ALTNAME)/;

/** Vault's first error text, short and on one line (Vault's errors never hold secrets, but they may be long). */
function firstVaultError(body: unknown): string | undefined {
  const errors = (body as { errors?: unknown } | null)?.errors;
  if (!Array.isArray(errors) || typeof errors[0] !== 'string' || errors[0] === '') return undefined;
  return errors[0].replace(/\s+/g, ' ').slice(0, 300);
}

/**
 * Turns what node-vault threw into a {@link VaultError}. `what` is what Warden was doing
 * (`reading kv/data/warden`), `path` the Vault path, for the message.
 */
export function describeVaultFailure(
  error: unknown,
  address: string,
  what: string,
  path: string,
): VaultError {
  if (error instanceof VaultError) return error;
  const response = (error as { response?: { statusCode?: unknown; body?: unknown } }).response;
  const status = typeof response?.statusCode === 'number' ? response.statusCode : undefined;
  if (status !== undefined) {
    const said = firstVaultError(response?.body);
    const because = said ? `: ${said}` : '';
    const fail = (code: VaultErrorCode, text: string) =>
      new VaultError(code, `${what} failed, Vault at ${address} answered ${status}${because}; ${text}`, {
        status,
      });
    switch (status) {
      case 503:
        return fail('ERR_VAULT_SEALED', 'Vault is sealed or in standby: unseal it (vault operator unseal)');
      case 403:
        return fail(
          'ERR_VAULT_DENIED',
          `permission denied: the token's policy must allow this on ${path} (and the login must be valid)`,
        );
      case 404:
        return fail(
          'ERR_VAULT_NOT_FOUND',
          `${path} does not exist: check the mount path and the role or secret name`,
        );
      case 400:
      case 405:
      case 409:
      case 412:
      case 429:
        return fail('ERR_VAULT_REFUSED', "see Vault's reason above");
      default:
        return fail('ERR_VAULT_REFUSED', 'Vault could not serve the request');
    }
  }
  const code = String((error as { code?: unknown }).code ?? '');
  if (TLS_CODES.test(code)) {
    return new VaultError(
      'ERR_VAULT_UNREACHABLE',
      `${what} failed: Vault at ${address} presented a TLS certificate Warden does not trust (${code}); set vault.ca to the certificate of the authority that signed it, and check vault.address matches its name`,
      { cause: error },
    );
  }
  if (NETWORK_CODES.test(code)) {
    return new VaultError(
      'ERR_VAULT_UNREACHABLE',
      `${what} failed: Vault at ${address} is unreachable (${code}); check vault.address, that Vault runs, and its TLS (vault.ca)`,
      { cause: error },
    );
  }
  return new VaultError(
    'ERR_VAULT_BAD_RESPONSE',
    `${what} failed: Vault at ${address} gave an answer Warden cannot read (${String((error as Error).message ?? error).slice(0, 200)})`,
    { cause: error },
  );
}

/** An answer that is not the JSON object Vault documents. */
export function badResponse(address: string, what: string, why: string): VaultError {
  return new VaultError('ERR_VAULT_BAD_RESPONSE', `${what}: Vault at ${address} answered ${why}`);
}

function asResponse(body: unknown, address: string, what: string): VaultResponse {
  if (body === undefined || body === '' || body === null) return {};
  if (typeof body !== 'object' || Array.isArray(body)) {
    throw badResponse(address, what, 'something that is not a JSON object');
  }
  return body as VaultResponse;
}

/** One Vault server, logged in once and kept logged in. */
export class VaultClient {
  readonly address: string;
  readonly #options: VaultClientOptions;
  #vault: nodeVault.client;
  #tlsSet = false;
  #login: Promise<void> | undefined;
  #renewal: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: VaultClientOptions) {
    this.#options = options;
    const { settings } = options;
    this.address = settings.address.replace(/\/+$/, '');
    this.#vault = nodeVault({
      endpoint: this.address,
      apiVersion: 'v1',
      noCustomHTTPVerbs: true,
      // node-vault falls back to VAULT_TOKEN and VAULT_NAMESPACE: Warden takes only what its configuration names.
      token: '',
      ...(settings.namespace ? { namespace: settings.namespace } : { namespace: '' }),
      requestOptions: { timeout: settings.timeout },
    });
    this.#vault.token = '';
  }

  /** The auth method, for messages (`approle`). */
  get method(): VaultAuthConfig['method'] {
    return this.#options.settings.auth.method;
  }

  /** Logs in (once; again after {@link relogin}). */
  login(): Promise<void> {
    this.#login ??= this.#doLogin().catch((error) => {
      this.#login = undefined;
      throw error;
    });
    return this.#login;
  }

  async #doLogin(): Promise<void> {
    const { settings, resolveSecret } = this.#options;
    const auth = settings.auth;
    if (settings.ca && !this.#tlsSet) {
      const ca = (await resolveSecret(settings.ca, 'vault.ca')).reveal();
      this.#vault = this.#withCa(ca);
      this.#tlsSet = true;
    }
    if (auth.method === 'token') {
      this.#vault.token = (await resolveSecret(auth.token, 'vault.auth.token')).reveal();
      const self = await this.#call(
        'looking up the token (auth/token/lookup-self)',
        'auth/token/lookup-self',
        () => this.#vault.read('auth/token/lookup-self'),
      );
      const data = self.data as { ttl?: unknown; renewable?: unknown } | null | undefined;
      if (typeof data?.ttl === 'number' && data.ttl > 0 && data.renewable === true)
        this.#scheduleRenewal(data.ttl);
      return;
    }
    let path: string;
    let body: Record<string, string>;
    if (auth.method === 'approle') {
      path = `auth/${auth.mount}/login`;
      body = {
        role_id: (await resolveSecret(auth.role_id, 'vault.auth.role_id')).reveal(),
        secret_id: (await resolveSecret(auth.secret_id, 'vault.auth.secret_id')).reveal(),
      };
    } else {
      let jwt: string;
      try {
        jwt = (await (this.#options.readJwt ?? ((f) => readFile(f, 'utf8')))(auth.jwt_file)).trim();
      } catch (error) {
        throw new VaultError(
          'ERR_VAULT_REFUSED',
          `cannot read the service-account token ${auth.jwt_file} (${(error as NodeJS.ErrnoException).code ?? 'unreadable'}): set vault.auth.jwt_file`,
        );
      }
      path = `auth/${auth.mount}/login`;
      body = { role: auth.role, jwt };
    }
    this.#vault.token = '';
    const answer = await this.#call(`logging in to Vault (${auth.method}, ${path})`, path, () =>
      this.#vault.write(path, body),
    );
    const login = answer.auth;
    if (!login || typeof login.client_token !== 'string' || login.client_token === '') {
      throw badResponse(this.address, `logging in (${path})`, 'without auth.client_token');
    }
    this.#vault.token = login.client_token;
    if (typeof login.lease_duration === 'number' && login.lease_duration > 0) {
      this.#scheduleRenewal(login.lease_duration);
    }
  }

  #withCa(ca: string): nodeVault.client {
    const { settings } = this.#options;
    return nodeVault({
      endpoint: this.address,
      apiVersion: 'v1',
      noCustomHTTPVerbs: true,
      token: '',
      namespace: settings.namespace ?? '',
      requestOptions: { timeout: settings.timeout, ca },
    });
  }

  /**
   * Renews the token when `renewFraction` of its TTL has passed. A token that cannot be renewed
   * (not renewable, or past its max TTL) is replaced by a new login, for AppRole and Kubernetes.
   */
  #scheduleRenewal(ttlSeconds: number): void {
    if (this.#closed) return;
    if (this.#renewal) clearTimeout(this.#renewal);
    const delay = Math.max(1000, ttlSeconds * 1000 * (this.#options.renewFraction ?? 2 / 3));
    this.#renewal = setTimeout(() => void this.#renew(), delay);
    this.#renewal.unref();
  }

  async #renew(): Promise<void> {
    this.#renewal = undefined;
    if (this.#closed) return;
    try {
      const answer = await this.#call('renewing the Vault token', 'auth/token/renew-self', () =>
        this.#vault.write('auth/token/renew-self', {}),
      );
      const ttl = answer.auth?.lease_duration;
      if (typeof ttl !== 'number' || ttl <= 0)
        throw badResponse(this.address, 'renewing the token', 'without a TTL');
      this.#options.logger?.debug({ ttl }, 'Vault token renewed');
      this.#scheduleRenewal(ttl);
    } catch (error) {
      this.#options.logger?.warn({ error: (error as Error).message }, 'renewing the Vault token failed');
      if (this.method !== 'token') {
        this.#login = undefined;
        await this.login().catch((e) =>
          this.#options.logger?.error({ error: (e as Error).message }, 'logging in to Vault again failed'),
        );
      }
    }
  }

  /** Forgets the token: the next call logs in again (a 403 after the token expired). */
  relogin(): void {
    if (this.method !== 'token') this.#login = undefined;
  }

  async #call(what: string, path: string, run: () => Promise<unknown>): Promise<VaultResponse> {
    let body: unknown;
    try {
      body = await run();
    } catch (error) {
      throw describeVaultFailure(error, this.address, what, path);
    }
    return asResponse(body, this.address, what);
  }

  /**
   * One call after the login. A 403 with an AppRole or Kubernetes token logs in again once and
   * retries (the token may have expired while Vault was unreachable).
   */
  async #authed(what: string, path: string, run: () => Promise<unknown>): Promise<VaultResponse> {
    await this.login();
    try {
      return await this.#call(what, path, run);
    } catch (error) {
      if ((error as VaultError).code !== 'ERR_VAULT_DENIED' || this.method === 'token') throw error;
      this.relogin();
      await this.login();
      return this.#call(what, path, run);
    }
  }

  /** `GET /v1/<path>`. */
  read(path: string, what = `reading ${path}`): Promise<VaultResponse> {
    return this.#authed(what, path, () => this.#vault.read(path));
  }

  /** `POST /v1/<path>` with a JSON body (`PUT` and `POST` are the same to Vault). */
  write(path: string, body: Record<string, unknown>, what = `writing ${path}`): Promise<VaultResponse> {
    return this.#authed(what, path, () => this.#vault.write(path, body));
  }

  /** `GET /v1/<path>?list=1`: the keys, none when Vault answers 404 (nothing there). */
  async list(path: string, what = `listing ${path}`): Promise<string[]> {
    let answer: VaultResponse;
    try {
      answer = await this.#authed(what, path, () => this.#vault.list(path));
    } catch (error) {
      if ((error as VaultError).code === 'ERR_VAULT_NOT_FOUND') return [];
      throw error;
    }
    const keys = (answer.data as { keys?: unknown } | undefined)?.keys;
    if (!Array.isArray(keys) || keys.some((k) => typeof k !== 'string')) {
      throw badResponse(this.address, what, 'without data.keys');
    }
    return keys as string[];
  }

  /** `sys/seal-status` (no token needed): whether Vault is sealed, and its version. */
  async sealStatus(): Promise<{ sealed: boolean; version: string }> {
    const answer = await this.#call('reading the seal status (sys/seal-status)', 'sys/seal-status', () =>
      this.#vault.read('sys/seal-status'),
    );
    if (typeof answer.sealed !== 'boolean') {
      throw badResponse(this.address, 'reading the seal status', 'without "sealed"');
    }
    return {
      sealed: answer.sealed,
      version: typeof answer.version === 'string' ? answer.version : 'unknown',
    };
  }

  /** The token's capabilities on each path (`sys/capabilities-self`). */
  async capabilities(paths: readonly string[]): Promise<Map<string, string[]>> {
    const answer = await this.write('sys/capabilities-self', { paths }, 'reading the token capabilities');
    const out = new Map<string, string[]>();
    for (const path of paths) {
      const caps = answer[path] ?? (paths.length === 1 ? answer.capabilities : undefined);
      if (!Array.isArray(caps))
        throw badResponse(this.address, 'reading the token capabilities', `nothing for ${path}`);
      out.set(
        path,
        caps.filter((c): c is string => typeof c === 'string'),
      );
    }
    return out;
  }

  /** Stops the token renewal. */
  close(): void {
    this.#closed = true;
    if (this.#renewal) clearTimeout(this.#renewal);
    this.#renewal = undefined;
  }
}
