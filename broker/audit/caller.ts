/**
 * What made the call an audit entry records (`via`), carried through the async work of one call.
 * The edges set it where they know the caller: the API server (`token:<name>`, the token's
 * configured name, never its secret), the chat bot (`chat:slack`), the CI exchange
 * (`oidc:<issuer>`), the proxies (`proxy:ssh`, `session:<id>`). The broker reads it when it
 * appends, so every entry of a call says who made it without each method passing it along.
 *
 * Timers booked during a call inherit the context (AsyncLocalStorage follows them), so entries
 * Warden writes on its own (`actor: warden`: expiry, revocation, time-outs) always say `warden`.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

const callers = new AsyncLocalStorage<string>();

/** `via` of Warden's own work. */
export const WARDEN_VIA = 'warden';

/** `via` of a call in the process that named no caller (tests, embedded use). */
export const IN_PROCESS_VIA = 'in-process';

/** Runs `fn` with `via` as the caller of every audit entry it causes. */
export function runAsCaller<T>(via: string, fn: () => T): T {
  return callers.run(via.slice(0, 200), fn);
}

/** The caller of the current call, if an edge named one. */
export function currentCaller(): string | undefined {
  return callers.getStore();
}

/** The `via` of an entry by `actor`: Warden's own entries are Warden's, whatever call booked them. */
export function resolveVia(actor: string, explicit?: string | null): string {
  if (actor === 'warden') return WARDEN_VIA;
  return explicit ?? currentCaller() ?? IN_PROCESS_VIA;
}

/** `token:<name>`: an API token, by the name it has in `broker.tokens`. */
export function tokenVia(name: string): string {
  return `token:${name}`;
}
