/** A PostgreSQL login minted for a grant (see `../credential.ts`). */
import type { Secret } from '../../config/secrets.ts';
import {
  type ChatCredentialView,
  type CredentialRoute,
  formatExpiry,
  type IssuedCredential,
} from '../credential.ts';

/** The fields of a {@link PostgresCredential}. */
export interface PostgresCredentialFields {
  host: string;
  port: number;
  database: string;
  user: string;
  password: Secret;
  expiresAt: number;
  /** Default `direct`; `proxy` when host and port are Warden's recording proxy. */
  route?: CredentialRoute;
}

/** A PostgreSQL role (or, through the proxy, the grant's proxy login) with its password. */
export class PostgresCredential implements IssuedCredential {
  readonly kind = 'postgres';
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;
  readonly password: Secret;
  readonly expiresAt: number;
  readonly route: CredentialRoute;

  constructor(fields: PostgresCredentialFields) {
    this.host = fields.host;
    this.port = fields.port;
    this.database = fields.database;
    this.user = fields.user;
    this.password = fields.password;
    this.expiresAt = fields.expiresAt;
    this.route = fields.route ?? 'direct';
  }

  get login(): string {
    return this.user;
  }

  /** The same login reached elsewhere with another password (the recording proxy's). */
  withEndpoint(endpoint: {
    host: string;
    port: number;
    password: Secret;
    route: CredentialRoute;
  }): PostgresCredential {
    return new PostgresCredential({ ...this, ...endpoint });
  }

  renderChat(): ChatCredentialView {
    return {
      summary: `PostgreSQL login for ${this.database}, valid until ${formatExpiry(this.expiresAt)}${this.route === 'proxy' ? " (through Warden's recording proxy)" : ''}`,
      block: this.renderText(),
    };
  }

  renderJson(): Record<string, unknown> {
    return {
      kind: this.kind,
      host: this.host,
      port: this.port,
      database: this.database,
      user: this.user,
      password: this.password.reveal(),
      expiresAt: this.expiresAt,
      route: this.route,
    };
  }

  renderText(): string {
    return [
      `host: ${this.host}  port: ${this.port}  database: ${this.database}`,
      `user: ${this.user}`,
      `password: ${this.password.reveal()}`,
      `psql "host=${this.host} port=${this.port} dbname=${this.database} user=${this.user}"  (password above; it stops working at ${formatExpiry(this.expiresAt)})`,
    ].join('\n');
  }

  /** Never the password, whatever serialises it by accident (a log line, an event dump). */
  toJSON(): Record<string, unknown> {
    return {
      kind: this.kind,
      host: this.host,
      port: this.port,
      database: this.database,
      user: this.user,
      expiresAt: this.expiresAt,
      route: this.route,
    };
  }
}
