/**
 * The broker's side of the proxy contract (`ports/proxy.ts`): what `warden serve` lends every
 * recording proxy. Grant lookup for proxy logins and grant changes come from the
 * {@link ProxyAuthority}, which follows the broker's events (every grant that ends or is extended,
 * whatever its target); grant lookup by id, sessions and their recordings from the store; audit
 * from the broker's log; review from the statement reviews.
 */
import type { GrantStatus, ProxyPorts, SessionSink, StatementReviewer } from './ports/proxy.ts';
import type { ProxyAuthority } from './proxy-authority.ts';
import type { Broker } from './requests/broker.ts';
import type { Store } from './store/store.ts';

/** What a grant id may look like (the key id's pattern, see `lib/ssh/certificate.ts`). */
const GRANT_ID = /^[a-z0-9]{1,64}$/;

/** What {@link createProxyPorts} is built from. */
export interface ProxyPortsParts {
  authority: Pick<ProxyAuthority, 'lookup' | 'watch'>;
  store: Pick<Store, 'getRequest'> & SessionSink;
  broker: Pick<Broker, 'recordAudit'>;
  reviews?: StatementReviewer | undefined;
}

/** The proxy ports over a running broker. */
export function createProxyPorts(parts: ProxyPortsParts): ProxyPorts {
  const { authority, store, broker } = parts;
  return {
    grants: {
      lookup: (target, user) => authority.lookup(target, user),
      async getGrant(grantId): Promise<GrantStatus | undefined> {
        // The id comes from a certificate or a token: never a store query for anything else.
        if (!GRANT_ID.test(grantId)) return undefined;
        const request = await store.getRequest(grantId);
        if (!request) return undefined;
        return {
          grantId: request.id,
          requester: request.requester,
          target: request.target,
          level: request.level,
          state: request.state,
          endState: request.endState,
          expiresAt: request.expiresAt,
        };
      },
      watch: (listener) => authority.watch(listener),
    },
    sessions: {
      insertSession: (session) => store.insertSession(session),
      appendSessionEvents: (events) => store.appendSessionEvents(events),
      appendSessionFrames: (id, seq, piece) => store.appendSessionFrames(id, seq, piece),
      endSession: (id, end) => store.endSession(id, end),
    },
    audit: {
      async record(actor, action, subject, data) {
        // Proxies name their actions after their protocol (`ssh.login`, `postgres.session_start`):
        // the entry says which proxy made the call (`via: proxy:ssh`).
        const protocol = action.slice(0, Math.max(0, action.indexOf('.'))) || 'unknown';
        await broker.recordAudit(actor, action, subject, data, `proxy:${protocol}`);
      },
    },
    ...(parts.reviews ? { reviews: parts.reviews } : {}),
  };
}
