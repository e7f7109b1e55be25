/**
 * Credential hand-off for targets behind Warden's recording proxy.
 *
 * For such a target the provider still mints a LOGIN role, but the requester is not given its
 * password: {@link ProxyAuthority.wrapProvider} swaps the issued credential for the proxy's
 * address, the same user name and a fresh random proxy password, and keeps the minted password
 * and a SCRAM verifier of the proxy password in memory for the proxy (`lookup`).
 *
 * Surviving a restart without storing a usable secret: the verifier (which lets nobody log in;
 * PostgreSQL stores the same) is also written to the store, the minted password never is. At
 * start-up {@link ProxyAuthority.restore} reads the verifiers of live grants back and gives each
 * minted role a fresh random password kept in memory (`ALTER ROLE ... PASSWORD` with a verifier),
 * so the requester's proxy password keeps working; sessions open at the crash died with it.
 * It is the grant part of the proxy contract (`ports/proxy.ts`: `lookup` and `watch`), lent to the
 * proxies through `proxy-ports.ts`.
 */
import { randomBytes } from 'node:crypto';
import type { PostgresTargetConfig } from './config/schema.ts';
import { Secret } from './config/secrets.ts';
import type { Directory } from './directory/directory.ts';
import { ProviderError } from './errors.ts';
import type { BrokerEvent, BrokerEvents } from './events/events.ts';
import type { AccessRequest, CredentialRecord } from './model.ts';
import type { GrantChange, ProxiedGrant } from './ports/proxy.ts';
import { PostgresCredential } from './providers/postgres/credential.ts';
import { buildScramVerifier } from './providers/postgres/scram-verifier.ts';
import type { PgTlsSettings } from './providers/postgres/tls.ts';
import type { CredentialProvider, MintResult } from './providers/provider.ts';
import type { Store } from './store/store.ts';

/** The store's part the authority uses: verifiers of proxy passwords. */
export type ProxyVerifierStore = Pick<
  Store,
  'saveProxyVerifier' | 'listProxyVerifiers' | 'deleteProxyVerifiers' | 'listCredentials'
>;

/** What {@link ProxyAuthority.restore} did. */
export interface RestoreResult {
  /** Proxy users whose grants work again. */
  restored: string[];
  /** Verifiers deleted: their grant is over, or their target is no longer proxied. */
  dropped: string[];
  /** Proxy users whose password could not be reset (kept for the next start), with the reason. */
  failed: { user: string; error: Error }[];
}

/** What a wrapped target needs to rebuild a grant after a restart. */
interface ProxiedTargetEntry {
  inner: CredentialProvider;
  upstream: { host: string; port: number; database: string; tls: PgTlsSettings | undefined };
}

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
  /** Where verifiers are persisted (the broker's store); without it grants live in memory only. */
  verifiers?: ProxyVerifierStore;
}

/** Keeps the proxy's view of live grants of proxied targets, in memory. */
export class ProxyAuthority {
  readonly #grants = new Map<string, ProxiedGrant>();
  readonly #listeners = new Set<(change: GrantChange) => void>();
  readonly #directory: Directory;
  readonly #clock: () => number;
  readonly #passwordBytes: number;
  readonly #getRequest: ((id: string) => Promise<AccessRequest | undefined>) | undefined;
  readonly #verifiers: ProxyVerifierStore | undefined;
  readonly #targets = new Map<string, ProxiedTargetEntry>();

  constructor(options: ProxyAuthorityOptions) {
    this.#directory = options.directory;
    this.#verifiers = options.verifiers;
    this.#getRequest = options.getRequest;
    this.#clock = options.clock ?? Date.now;
    this.#passwordBytes = options.passwordBytes ?? 24;
  }

  /**
   * Wraps a target's provider so that what it issues points at the proxy (see the module
   * comment). `tls` is the target's resolved TLS towards its `connect` host, for the proxy.
   */
  wrapProvider(
    targetName: string,
    target: PostgresTargetConfig,
    inner: CredentialProvider,
    tls?: PgTlsSettings,
  ): CredentialProvider {
    const proxy = target.proxy;
    if (!proxy) return inner;
    const [host, port] = (proxy.public ?? proxy.listen).split(':') as [string, string];
    this.#targets.set(targetName, {
      inner,
      upstream: {
        host: target.connect.host ?? target.admin.host,
        port: target.connect.port ?? target.admin.port,
        database: target.admin.database,
        tls,
      },
    });
    const mint = async (grant: AccessRequest, expiresAt: number): Promise<MintResult> => {
      const minted = await inner.mint(grant, expiresAt);
      const upstream = minted.credential;
      if (!(upstream instanceof PostgresCredential)) return minted;
      const password = randomBytes(this.#passwordBytes).toString('base64url');
      const verifier = await buildScramVerifier(password);
      await this.#verifiers?.saveProxyVerifier({
        target: targetName,
        user: upstream.user,
        grantId: grant.id,
        verifier,
        createdAt: this.#clock(),
      });
      this.#remember(grant, targetName, expiresAt, verifier, {
        host: upstream.host,
        port: upstream.port,
        database: upstream.database,
        user: upstream.user,
        password: upstream.password,
        tls,
      });
      return {
        handle: minted.handle,
        credential: upstream.withEndpoint({
          host,
          port: Number(port),
          password: new Secret(password),
          route: 'proxy',
        }),
      };
    };
    return {
      name: inner.name,
      ...(inner.planHandle ? { planHandle: (grant: AccessRequest) => inner.planHandle!(grant) } : {}),
      ...(inner.maintain ? { maintain: () => inner.maintain!() } : {}),
      ...(inner.assertMaskingEnforced ? { assertMaskingEnforced: () => inner.assertMaskingEnforced!() } : {}),
      ...(inner.health ? { health: () => inner.health!() } : {}),
      ...(inner.selfTest ? { selfTest: () => inner.selfTest!() } : {}),
      mint,
      reissue: (credential, grant) => this.#reissue(targetName, host, Number(port), credential, grant),
      extend: (credential, at) => inner.extend(credential, at),
      revoke: async (credentials) => {
        for (const credential of credentials) await this.#endBeforeRevocation(credential.requestId);
        return inner.revoke(credentials);
      },
      listManaged: () => inner.listManaged(),
      removeOrphan: (handle) => inner.removeOrphan(handle),
      ...(inner.reconcile
        ? { reconcile: (live: readonly CredentialRecord[]) => inner.reconcile!(live) }
        : {}),
      check: () => inner.check(),
      close: () => inner.close(),
    };
  }

  /**
   * A new proxy password for a live proxied grant (the requester collects the credential again):
   * the new verifier replaces the old one in memory and in the store, so the earlier proxy password
   * stops logging in; sessions it opened go on. The minted upstream credential is untouched.
   */
  async #reissue(
    targetName: string,
    host: string,
    port: number,
    credential: CredentialRecord,
    grant: AccessRequest,
  ): Promise<PostgresCredential> {
    const entry = [...this.#grants.entries()].find(
      ([, g]) => g.grantId === grant.id && g.target === targetName,
    );
    if (!entry || entry[1].expiresAt <= this.#clock()) {
      throw new ProviderError(`grant ${grant.id} has no live proxied login on ${targetName}`);
    }
    const [user, proxied] = entry;
    const password = randomBytes(this.#passwordBytes).toString('base64url');
    const verifier = await buildScramVerifier(password);
    await this.#verifiers?.saveProxyVerifier({
      target: targetName,
      user,
      grantId: grant.id,
      verifier,
      createdAt: this.#clock(),
    });
    proxied.verifier = verifier;
    return new PostgresCredential({
      host,
      port,
      database: proxied.upstream.database,
      user,
      password: new Secret(password),
      expiresAt: Math.min(proxied.expiresAt, credential.expiresAt),
      route: 'proxy',
    });
  }

  /**
   * Start-up: brings back the live proxied grants from their stored verifiers, giving each
   * minted role a fresh password kept in memory, and deletes verifiers of grants that are over.
   * Call it after the broker's own reconciliation (which ends grants that expired meanwhile).
   */
  async restore(): Promise<RestoreResult> {
    const result: RestoreResult = { restored: [], dropped: [], failed: [] };
    if (!this.#verifiers) return result;
    for (const record of await this.#verifiers.listProxyVerifiers()) {
      const target = this.#targets.get(record.target);
      const grant = await this.#getRequest?.(record.grantId);
      const live = grant?.state === 'active' && grant.expiresAt !== null && grant.expiresAt > this.#clock();
      // The provider resets the credential it minted, known by its handle; the verifier's user is
      // the login the requester presents, which need not be the handle.
      const [credential] =
        target && grant && live
          ? await this.#verifiers.listCredentials({ requestId: grant.id, states: ['active'] })
          : [];
      if (!target || !grant || !live || !credential || !target.inner.resetPassword) {
        await this.#verifiers.deleteProxyVerifiers(record.grantId);
        result.dropped.push(record.user);
        continue;
      }
      try {
        const password = await target.inner.resetPassword(credential);
        this.#remember(grant, record.target, grant.expiresAt!, record.verifier, {
          ...target.upstream,
          user: record.user,
          password,
        });
        result.restored.push(record.user);
      } catch (error) {
        result.failed.push({ user: record.user, error: error as Error });
      }
    }
    return result;
  }

  #remember(
    grant: AccessRequest,
    target: string,
    expiresAt: number,
    verifier: string,
    upstream: ProxiedGrant['upstream'],
  ): void {
    this.#grants.set(upstream.user, {
      grantId: grant.id,
      requester: grant.requester,
      groups: this.#directory.get(grant.requester)?.groups ?? [],
      level: grant.level,
      target,
      expiresAt,
      verifier,
      upstream,
    });
  }

  /** The live grant of proxy user `user` on `target`, or undefined. */
  async lookup(target: string, user: string): Promise<ProxiedGrant | undefined> {
    const grant = this.#grants.get(user);
    if (!grant || grant.target !== target) return undefined;
    if (grant.expiresAt <= this.#clock()) return undefined;
    return grant;
  }

  /** Calls `listener` on every grant change; returns the unsubscribe function. */
  watch(listener: (change: GrantChange) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Follows broker events (end and extension of grants); returns the unsubscribe function. */
  follow(events: BrokerEvents): () => void {
    return events.subscribe((event) => this.#onEvent(event));
  }

  async #endBeforeRevocation(grantId: string): Promise<void> {
    const request = await this.#getRequest?.(grantId).catch(() => undefined);
    if (request?.endState === 'revoked')
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
    // A failed delete leaves a verifier that lets nobody in; the next restore() removes it.
    this.#verifiers?.deleteProxyVerifiers(grantId).catch(() => {});
    this.#emit({
      type: 'ended',
      grantId,
      reason,
      detail: reason === 'expired' ? 'the grant expired' : `the grant was revoked by ${by}: ${text}`,
    });
  }

  #emit(change: GrantChange): void {
    for (const listener of this.#listeners) {
      try {
        listener(change);
      } catch {
        // A failing listener must not stop the others (or the broker's event bus).
      }
    }
  }
}
