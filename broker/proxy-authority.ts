/**
 * Credential hand-off for targets behind Warden's recording proxy.
 *
 * For such a target the provider still mints a LOGIN role, but the requester is not given its
 * password: {@link ProxyAuthority.wrapProvider} swaps the issued credential for the proxy's
 * address, the same user name and a fresh random proxy password, and keeps the minted password
 * and a SCRAM verifier of the proxy password in memory for the proxy (`lookup`). Nothing secret is
 * written anywhere: after a restart of the process the proxy no longer knows earlier grants and
 * their holders must request again (their sessions died with the process anyway). This is the
 * broker side of `proxy/grant-authority.ts`; it matches that interface structurally so the
 * broker does not import the proxy.
 */
import { randomBytes } from 'node:crypto';
import type { PostgresTargetConfig } from './config/schema.ts';
import { Secret } from './config/secrets.ts';
import type { Directory } from './directory/directory.ts';
import type { BrokerEvent, BrokerEvents } from './events/events.ts';
import type { AccessRequest } from './model.ts';
import { buildScramVerifier } from './providers/postgres/scram-verifier.ts';
import type { CredentialProvider, MintResult } from './providers/provider.ts';

/** A live proxied grant, as the proxy sees it (see `ProxyGrant` in `proxy/grant-authority.ts`). */
export interface ProxiedGrant {
  grantId: string;
  requester: string;
  groups: readonly string[];
  level: string;
  target: string;
  expiresAt: number;
  verifier: string;
  upstream: { host: string; port: number; database: string; user: string; password: Secret };
}

/** A change the proxy acts on (see `GrantChange` in `proxy/grant-authority.ts`). */
export type ProxiedGrantChange =
  | { type: 'ended'; grantId: string; reason: 'expired' | 'revoked'; detail: string }
  | { type: 'extended'; grantId: string; expiresAt: number };

/** Options of {@link ProxyAuthority}. */
export interface ProxyAuthorityOptions {
  directory: Directory;
  /**
   * Reads a grant (the broker's store). With it, sessions are ended with the grant's end reason
   * before the provider terminates the role's backends, so clients learn why.
   */
  getRequest?: (id: string) => Promise<AccessRequest | undefined>;
  clock?: () => number;
  /** Bytes of randomness in a proxy password (default 24, 192 bits). */
  passwordBytes?: number;
}

/** Keeps the proxy's view of live grants of proxied targets, in memory. */
export class ProxyAuthority {
  readonly #grants = new Map<string, ProxiedGrant>();
  readonly #listeners = new Set<(change: ProxiedGrantChange) => void>();
  readonly #directory: Directory;
  readonly #clock: () => number;
  readonly #passwordBytes: number;
  readonly #getRequest: ((id: string) => Promise<AccessRequest | undefined>) | undefined;

  constructor(options: ProxyAuthorityOptions) {
    this.#directory = options.directory;
    this.#getRequest = options.getRequest;
    this.#clock = options.clock ?? Date.now;
    this.#passwordBytes = options.passwordBytes ?? 24;
  }

  /** Wraps a target's provider so that what it issues points at the proxy (see the module comment). */
  wrapProvider(
    targetName: string,
    target: PostgresTargetConfig,
    inner: CredentialProvider,
  ): CredentialProvider {
    const proxy = target.proxy;
    if (!proxy) return inner;
    const [host, port] = (proxy.public ?? proxy.listen).split(':') as [string, string];
    const mint = async (grant: AccessRequest, expiresAt: number): Promise<MintResult> => {
      const minted = await inner.mint(grant, expiresAt);
      const upstream = minted.credential;
      if (upstream.kind !== 'postgres') return minted;
      const password = randomBytes(this.#passwordBytes).toString('base64url');
      this.#grants.set(upstream.user, {
        grantId: grant.id,
        requester: grant.requester,
        groups: this.#directory.get(grant.requester)?.groups ?? [],
        level: grant.level,
        target: targetName,
        expiresAt,
        verifier: await buildScramVerifier(password),
        upstream: {
          host: upstream.host,
          port: upstream.port,
          database: upstream.database,
          user: upstream.user,
          password: upstream.password,
        },
      });
      return {
        handle: minted.handle,
        credential: { ...upstream, host, port: Number(port), password: new Secret(password) },
      };
    };
    return {
      name: inner.name,
      mint,
      extend: (credential, at) => inner.extend(credential, at),
      revoke: async (credentials) => {
        for (const credential of credentials) await this.#endBeforeRevocation(credential.requestId);
        return inner.revoke(credentials);
      },
      listManaged: () => inner.listManaged(),
      removeOrphan: (handle) => inner.removeOrphan(handle),
      check: () => inner.check(),
      close: () => inner.close(),
    };
  }

  /** The live grant of proxy user `user` on `target`, or undefined. */
  async lookup(target: string, user: string): Promise<ProxiedGrant | undefined> {
    const grant = this.#grants.get(user);
    if (!grant || grant.target !== target) return undefined;
    if (grant.expiresAt <= this.#clock()) return undefined;
    return grant;
  }

  /** Calls `listener` on every grant change; returns the unsubscribe function. */
  watch(listener: (change: ProxiedGrantChange) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Follows broker events (end and extension of grants); returns the unsubscribe function. */
  follow(events: BrokerEvents): () => void {
    return events.subscribe((event) => this.#onEvent(event));
  }

  async #endBeforeRevocation(grantId: string): Promise<void> {
    const request = await this.#getRequest?.(grantId).catch(() => undefined);
    if (request?.state === 'revoked')
      this.#end(grantId, 'revoked', request.endedBy ?? 'warden', request.endReason ?? '');
    else this.#end(grantId, 'expired');
  }

  #onEvent(event: BrokerEvent): void {
    if (event.type === 'grant.expired') this.#end(event.request.id, 'expired');
    else if (event.type === 'grant.revoked') this.#end(event.request.id, 'revoked', event.by, event.reason);
    else if (event.type === 'grant.extended' && event.request.expiresAt !== null) {
      const expiresAt = event.request.expiresAt;
      for (const grant of this.#grants.values()) {
        if (grant.grantId === event.request.id) grant.expiresAt = expiresAt;
      }
      this.#emit({ type: 'extended', grantId: event.request.id, expiresAt });
    }
  }

  /** Forgets a grant and tells the proxies; repeated ends are harmless (sessions are gone). */
  #end(grantId: string, reason: 'expired' | 'revoked', by = '', text = ''): void {
    for (const [user, grant] of this.#grants) if (grant.grantId === grantId) this.#grants.delete(user);
    this.#emit({
      type: 'ended',
      grantId,
      reason,
      detail: reason === 'expired' ? 'the grant expired' : `the grant was revoked by ${by}: ${text}`,
    });
  }

  #emit(change: ProxiedGrantChange): void {
    for (const listener of this.#listeners) {
      try {
        listener(change);
      } catch {
        // A failing listener must not stop the others (or the broker's event bus).
      }
    }
  }
}
