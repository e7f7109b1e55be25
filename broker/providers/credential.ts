/**
 * What a provider mints, as the requester receives it. The set of kinds is open (postgres, ssh,
 * later vault leases): each kind is a class next to its provider that knows how to show itself,
 * so no front end switches on `kind`. A credential holds its secrets as {@link Secret}s; only the
 * `render*` methods reveal them, and only an edge that answers the requester alone calls them
 * (the requester's DM, the API answer to the requester, the CLI's standard output).
 */
import type { Secret } from '../config/secrets.ts';

/** Where a credential's sessions go: to the target, or through Warden's recording proxy. */
export type CredentialRoute = 'direct' | 'proxy';

/** A credential for the chat DM: Warden's own words, then the details shown verbatim. */
export interface ChatCredentialView {
  /** One line, no secrets (`postgres role for app-db, valid until 14:30 UTC`). */
  summary: string;
  /** Connection details with the secrets revealed, shown verbatim in a monospace block. */
  block: string;
}

/** A minted credential, whatever its kind. */
export interface IssuedCredential {
  /** The kind's name (`postgres`, `ssh`); API answers carry it so clients know the shape. */
  readonly kind: string;
  /** Epoch milliseconds. */
  readonly expiresAt: number;
  /** The login name the requester presents (role, principal); never secret. */
  readonly login: string;
  /** Whether sessions with it go through (and are recorded by) Warden's proxy. */
  readonly route: CredentialRoute;
  /** For the requester's DM (bot core turns it into its neutral message). Reveals secrets. */
  renderChat(): ChatCredentialView;
  /** For the API answer: a JSON object with `kind`, secrets in clear. Reveals secrets. */
  renderJson(): Record<string, unknown>;
  /** For the CLI: plain text lines. Reveals secrets. */
  renderText(): string;
}

/** The secret a credential holds, for code that hands it on (CI's connection URI). */
export interface HasPassword {
  readonly password: Secret;
}

/** `14:30 UTC`: how credentials state their expiry (the chat front end uses the same form). */
export function formatExpiry(ms: number): string {
  return `${new Date(ms).toISOString().slice(11, 16)} UTC`;
}
