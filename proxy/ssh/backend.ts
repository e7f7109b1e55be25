/**
 * What the SSH proxy needs from the broker, as one small interface: grant lookups, targets,
 * session records, audit, and grant changes. {@link createBrokerBackend} implements it in-process;
 * tests may pass a fake.
 */
import type { TargetConfig } from '../../broker/config/schema.ts';
import type { SshSessionRecord } from '../../broker/model.ts';
import type { Broker } from '../../broker/requests/broker.ts';
import type { Store } from '../../broker/store/store.ts';
import type { ProxyGrant } from './authenticate.ts';

export interface SshProxyBackend {
  readonly targets: Readonly<Record<string, TargetConfig>>;
  getGrant(id: string): Promise<ProxyGrant | undefined>;
  insertSession(session: SshSessionRecord): Promise<void>;
  /** Stores piece `seq` of a live session's recording (see {@link Store.appendSshRecording}). */
  appendRecording(id: string, seq: number, piece: Uint8Array): Promise<void>;
  finishSession(
    id: string,
    patch: Pick<SshSessionRecord, 'endedAt' | 'endReason' | 'recording' | 'meta'>,
  ): Promise<void>;
  audit(actor: string, action: string, subject: string, data: Record<string, unknown>): Promise<void>;
  /** Calls `listener` with the grant id whenever a grant is revoked, expires or is extended. */
  watchGrants(listener: (grantId: string) => void): () => void;
}

/** The in-process backend over a running broker and its store. */
export function createBrokerBackend(broker: Broker, store: Store): SshProxyBackend {
  return {
    targets: broker.config.targets,
    async getGrant(id) {
      if (!/^[a-z0-9]{1,64}$/.test(id)) return undefined;
      return store.getRequest(id);
    },
    insertSession: (session) => store.insertSshSession(session),
    appendRecording: (id, seq, piece) => store.appendSshRecording(id, seq, piece),
    finishSession: (id, patch) => store.finishSshSession(id, patch),
    async audit(actor, action, subject, data) {
      await broker.recordAudit(actor, action, subject, data, 'proxy:ssh');
    },
    watchGrants(listener) {
      return broker.events.subscribe((event) => {
        if (
          event.type === 'grant.revoked' ||
          event.type === 'grant.expired' ||
          event.type === 'grant.extended'
        ) {
          listener(event.request.id);
        }
      });
    },
  };
}
