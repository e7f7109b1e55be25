/** An OpenSSH user certificate minted for a grant (see `../credential.ts`). */
import type { Secret } from '../../config/secrets.ts';
import {
  type ChatCredentialView,
  type CredentialRoute,
  formatExpiry,
  type IssuedCredential,
} from '../credential.ts';

/** The fields of an {@link SshCredential}. */
export interface SshCredentialFields {
  /** The target's sshd. */
  host: string;
  port: number;
  /** Login names the certificate is valid for. */
  principals: string[];
  /** The certificate line (`ssh-ed25519-cert-v01@openssh.com AAAA... keyid`), to save as `<key>-cert.pub`. */
  certificate: string;
  /** The private key, when Warden generated the key pair: handed over once, never stored. */
  privateKey?: Secret;
  /** The grant's token for the SSH proxy's password prompt (`<grant>.<mac>`); none without Warden's CA. */
  password?: Secret;
  keyId: string;
  /** Certificate serial, decimal. */
  serial: string;
  expiresAt: number;
}

/** An SSH certificate, its private key when Warden generated it, and the proxy token. */
export class SshCredential implements IssuedCredential {
  readonly kind = 'ssh';
  readonly route: CredentialRoute = 'direct';
  readonly host: string;
  readonly port: number;
  readonly principals: string[];
  readonly certificate: string;
  readonly privateKey?: Secret;
  readonly password?: Secret;
  readonly keyId: string;
  readonly serial: string;
  readonly expiresAt: number;

  constructor(fields: SshCredentialFields) {
    this.host = fields.host;
    this.port = fields.port;
    this.principals = fields.principals;
    this.certificate = fields.certificate;
    if (fields.privateKey) this.privateKey = fields.privateKey;
    if (fields.password) this.password = fields.password;
    this.keyId = fields.keyId;
    this.serial = fields.serial;
    this.expiresAt = fields.expiresAt;
  }

  get login(): string {
    return this.principals.join(',');
  }

  renderChat(): ChatCredentialView {
    return {
      summary: `SSH certificate for ${this.principals.join(', ')} on ${this.host}, valid until ${formatExpiry(this.expiresAt)}`,
      block: this.renderText(),
    };
  }

  renderJson(): Record<string, unknown> {
    return {
      kind: this.kind,
      host: this.host,
      port: this.port,
      principals: this.principals,
      certificate: this.certificate,
      ...(this.privateKey ? { privateKey: this.privateKey.reveal() } : {}),
      ...(this.password ? { password: this.password.reveal() } : {}),
      keyId: this.keyId,
      serial: this.serial,
      expiresAt: this.expiresAt,
    };
  }

  renderText(): string {
    return [
      `ssh certificate for ${this.principals.join(', ')} on ${this.host}:${this.port}, valid until ${formatExpiry(this.expiresAt)}`,
      `key id: ${this.keyId}`,
      'save it with: warden ssh login <grant id> (or copy the certificate below next to your key as <key>-cert.pub)',
      this.certificate,
      ...(this.password ? [`proxy token: ${this.password.reveal()}`] : []),
    ].join('\n');
  }

  /** Never the key or the token, whatever serialises it by accident. */
  toJSON(): Record<string, unknown> {
    return {
      kind: this.kind,
      host: this.host,
      port: this.port,
      principals: this.principals,
      keyId: this.keyId,
      serial: this.serial,
      expiresAt: this.expiresAt,
    };
  }
}
