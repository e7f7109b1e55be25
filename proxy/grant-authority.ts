/**
 * The proxy's narrow view of the broker. The proxies ask it who a connecting user is and learn
 * from it when a grant ends; they never see the broker's store, policy or providers. In
 * `warden serve` the broker implements it in process (`broker/proxy-authority.ts`); a split
 * deployment can implement the same interface over the broker's HTTP API.
 */

/**
 * What the proxy needs to know about a live grant, and the grant changes it acts on. The broker
 * defines these records (it produces them); this module names them for the proxy.
 */
export type {
  ProxiedGrant as ProxyGrant,
  ProxiedGrantChange as GrantChange,
} from '../broker/proxy-authority.ts';

import type { ProxiedGrant, ProxiedGrantChange } from '../broker/proxy-authority.ts';

/** The broker as the proxy sees it. */
export interface GrantAuthority {
  /**
   * The live grant whose proxy user name is `user` on `target`, or undefined (unknown user,
   * ended grant, another target). Must not throw for unknown users.
   */
  lookup(target: string, user: string): Promise<ProxiedGrant | undefined>;
  /** Calls `listener` for every grant change; returns a function that stops listening. */
  watch(listener: (change: ProxiedGrantChange) => void): () => void;
}
