/**
 * OpenSSH user certificates (PROTOCOL.certkeys), encoded here rather than with sshpk because
 * sshpk cannot emit critical options such as `force-command` and `source-address`. Minting is
 * pure apart from randomness (nonce, optional fresh subject key); verification is pure.
 */

import { randomBytes, sign, timingSafeEqual, verify } from 'node:crypto';
import { isIP } from 'node:net';
import { SshCertificateInputError, SshCertificateRejectedError, SshKeyError } from './errors.ts';
import {
  ed25519PublicKeyFromBlob,
  fingerprintKeyBlob,
  formatPublicKeyLine,
  generateSubjectKey,
  parsePublicKeyLine,
  type SshCa,
  SshKeyType,
  SUBJECT_KEY_FIELDS,
} from './keys.ts';
import { readNameDataList, readStringList, SshReader, SshWriter } from './ssh-wire.ts';

/** Certificate kinds on the wire (`uint32 type`). */
export enum SshCertType {
  /** `1`: SSH_CERT_TYPE_USER */
  User = 1,
  /** `2`: SSH_CERT_TYPE_HOST */
  Host = 2,
}

/** Seconds `validAfter` is moved back when minting, so a client or server clock a little behind still accepts. */
export const CLOCK_SKEW_SECONDS = 30;
const CERT_SUFFIX = '-cert-v01@openssh.com';
const MAX_SERIAL = 0xffff_ffff_ffff_ffffn;
const MAX_PRINCIPALS = 256;
const MAX_CERT_TEXT = 16_384;
/** Login names and `user@realm` principals; no commas (sshd splits on them), wildcards, spaces. */
const PRINCIPAL = /^[A-Za-z0-9_][A-Za-z0-9._@-]{0,255}$/;
/** Key ids are logged by sshd: printable ASCII only, so a key id cannot forge log lines. */
const KEY_ID = /^[\x21-\x7e][\x20-\x7e]{0,255}$/;

/** Critical options sshd enforces; an unknown one makes sshd (and our verifier) refuse the certificate. */
export interface CriticalOptions {
  /** Command run instead of whatever the client asks for (`force-command`). */
  forceCommand?: string;
  /** Client addresses or CIDR ranges the certificate may be used from (`source-address`). */
  sourceAddress?: readonly string[];
}

/** Permissions granted by the certificate; each `false` or missing one is simply not granted. */
export interface CertificateExtensions {
  permitPty?: boolean;
  permitAgentForwarding?: boolean;
  permitPortForwarding?: boolean;
  permitX11Forwarding?: boolean;
  permitUserRc?: boolean;
}

/** Input of {@link mintUserCertificate}. */
export interface MintUserCertificateInput {
  ca: SshCa;
  /** The subject's OpenSSH public key line; when missing a fresh Ed25519 key pair is generated. */
  publicKey?: string;
  /** Login names the certificate is valid for (sshd matches them against the account or AuthorizedPrincipalsFile). */
  principals: readonly string[];
  /**
   * Start of validity, as the grant says. The certificate is written valid from
   * `validAfter - CLOCK_SKEW_SECONDS` so small clock differences do not refuse a fresh certificate.
   */
  validAfter: Date;
  /** End of validity (the grant's expiry); written as is, never extended. */
  validBefore: Date;
  /** Logged by sshd on every login; see {@link formatKeyId}. */
  keyId: string;
  /** Certificate serial, 1 to 2^64-1, unique per CA so a KRL can revoke it. */
  serial: bigint | number;
  criticalOptions?: CriticalOptions;
  extensions?: CertificateExtensions;
}

/** Result of {@link mintUserCertificate}. */
export interface MintedUserCertificate {
  /** The certificate line (`ssh-ed25519-cert-v01@openssh.com AAAA... <keyId>`), for `<key>-cert.pub`. */
  certificate: string;
  serial: bigint;
  /** `SHA256:` fingerprint of the certified public key (what sshd logs next to the key id). */
  fingerprint: string;
  keyId: string;
  /** Validity actually written, after the clock-skew backdating. */
  validAfter: Date;
  validBefore: Date;
  /** The subject's public key line. */
  publicKey: string;
  /** Only when Warden generated the key pair: the OpenSSH private key, returned this once. */
  privateKey?: string;
}

/** A certificate that passed {@link verifyUserCertificate}. */
export interface VerifiedUserCertificate {
  keyId: string;
  serial: bigint;
  principals: string[];
  validAfter: Date;
  validBefore: Date;
  criticalOptions: CriticalOptions;
  /** Extension names as on the wire (`permit-pty`, ...). */
  extensions: string[];
  /** The certified key's blob and fingerprint. */
  publicKeyBlob: Buffer;
  fingerprint: string;
  /** Fingerprint of the CA that signed it. */
  caFingerprint: string;
}

/** Options of {@link verifyUserCertificate}. */
export interface VerifyUserCertificateOptions {
  /** Trusted CA public key lines (the `TrustedUserCAKeys` content). */
  caPublicKeys: readonly string[];
  /** The login name the client asks for. */
  principal: string;
  now: Date;
  /** Serials revoked for these CAs; a match throws `ERR_SSH_CA_CERT_REVOKED`. */
  revokedSerials?: ReadonlySet<bigint>;
  /** Key ids revoked; a match throws `ERR_SSH_CA_CERT_REVOKED`. */
  revokedKeyIds?: ReadonlySet<string>;
}

const EXTENSION_NAMES: readonly [keyof CertificateExtensions, string][] = [
  ['permitX11Forwarding', 'permit-X11-forwarding'],
  ['permitAgentForwarding', 'permit-agent-forwarding'],
  ['permitPortForwarding', 'permit-port-forwarding'],
  ['permitPty', 'permit-pty'],
  ['permitUserRc', 'permit-user-rc'],
];

const inputError = (message: string, details: Record<string, unknown> = {}) =>
  new SshCertificateInputError('ERR_SSH_CA_INPUT_INVALID', message, { details });

/**
 * Builds the key id Warden writes into certificates: `warden:grant=<grantId>:user=<email>`, so
 * sshd's log names the grant and the person. Both parts must be printable and free of `:` and spaces.
 */
export function formatKeyId(grantId: string, user: string): string {
  for (const [name, value] of [
    ['grant id', grantId],
    ['user', user],
  ] as const) {
    if (!/^[\x21-\x39\x3b-\x7e]{1,100}$/.test(value)) {
      throw inputError(`the ${name} in a key id must be 1-100 printable characters without ":" or spaces`);
    }
  }
  return `warden:grant=${grantId}:user=${user}`;
}

/** Reads the grant id back from a Warden key id; `undefined` for any other key id. */
export function grantIdFromKeyId(keyId: string): string | undefined {
  return /^warden:grant=([a-z0-9]{1,64}):user=[\x21-\x39\x3b-\x7e]{1,100}$/.exec(keyId)?.[1];
}

function checkPrincipals(principals: readonly string[]): void {
  if (principals.length === 0 || principals.length > MAX_PRINCIPALS) {
    throw new SshCertificateInputError(
      'ERR_SSH_CA_PRINCIPAL_INVALID',
      `a certificate needs 1 to ${MAX_PRINCIPALS} principals (an empty list would be valid for every user)`,
    );
  }
  for (const principal of principals) {
    if (typeof principal !== 'string' || !PRINCIPAL.test(principal)) {
      throw new SshCertificateInputError(
        'ERR_SSH_CA_PRINCIPAL_INVALID',
        'a principal may hold letters, digits and . _ @ - only, and not start with . @ or -',
        { details: { principal: String(principal).slice(0, 64) } },
      );
    }
  }
}

function toSeconds(date: Date, name: string): bigint {
  const ms = date instanceof Date ? date.getTime() : Number.NaN;
  if (!Number.isFinite(ms) || ms < 0) throw inputError(`${name} must be a valid date after 1970`);
  return BigInt(Math.floor(ms / 1000));
}

function checkSerial(serial: bigint | number): bigint {
  const value = typeof serial === 'number' && Number.isSafeInteger(serial) ? BigInt(serial) : serial;
  if (typeof value !== 'bigint' || value < 1n || value > MAX_SERIAL) {
    throw inputError('the serial must be an integer from 1 to 2^64-1', { serial: String(serial) });
  }
  return value;
}

function checkSourceAddress(list: readonly string[]): string {
  if (list.length === 0) throw inputError('source-address needs at least one address');
  for (const entry of list) {
    const [address, prefix, extra] = entry.split('/');
    const family = isIP(address ?? '');
    const maxPrefix = family === 6 ? 128 : 32;
    const prefixOk = prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= maxPrefix);
    if (family === 0 || !prefixOk || extra !== undefined) {
      throw inputError('source-address entries must be IP addresses or CIDR ranges', {
        entry: entry.slice(0, 64),
      });
    }
  }
  return list.join(',');
}

function encodeCriticalOptions(options: CriticalOptions): Buffer {
  const writer = new SshWriter();
  // Names must be sorted (PROTOCOL.certkeys); "force-command" < "source-address".
  if (options.forceCommand !== undefined) {
    if (
      options.forceCommand.length === 0 ||
      options.forceCommand.length > 4096 ||
      /\0/.test(options.forceCommand)
    ) {
      throw inputError('force-command must be 1-4096 characters without NUL');
    }
    writer.string('force-command').string(new SshWriter().string(options.forceCommand).toBuffer());
  }
  if (options.sourceAddress !== undefined) {
    const value = checkSourceAddress(options.sourceAddress);
    writer.string('source-address').string(new SshWriter().string(value).toBuffer());
  }
  return writer.toBuffer();
}

function encodeExtensions(extensions: CertificateExtensions): Buffer {
  const writer = new SshWriter();
  for (const [key, name] of EXTENSION_NAMES) {
    if (extensions[key] === true) writer.string(name).string('');
  }
  return writer.toBuffer();
}

/**
 * Mints an OpenSSH user certificate signed by the CA. Without `publicKey` a fresh Ed25519 key pair
 * is generated and its private key returned once. Throws `ERR_SSH_CA_PRINCIPAL_INVALID`,
 * `ERR_SSH_CA_VALIDITY_INVERTED`, `ERR_SSH_CA_INPUT_INVALID` (serial, key id, options) or a key
 * error for an unusable public key.
 */
export function mintUserCertificate(input: MintUserCertificateInput): MintedUserCertificate {
  checkPrincipals(input.principals);
  if (typeof input.keyId !== 'string' || !KEY_ID.test(input.keyId)) {
    throw inputError('the key id must be 1-256 printable ASCII characters');
  }
  const serial = checkSerial(input.serial);
  const notBefore = toSeconds(input.validAfter, 'validAfter');
  const notAfter = toSeconds(input.validBefore, 'validBefore');
  if (notAfter <= notBefore) {
    throw new SshCertificateInputError(
      'ERR_SSH_CA_VALIDITY_INVERTED',
      'validBefore must be later than validAfter',
      {
        details: {
          validAfter: input.validAfter.toISOString(),
          validBefore: input.validBefore.toISOString(),
        },
      },
    );
  }
  const writtenAfter = notBefore > BigInt(CLOCK_SKEW_SECONDS) ? notBefore - BigInt(CLOCK_SKEW_SECONDS) : 0n;

  let privateKey: string | undefined;
  let subject: { type: string; blob: Buffer };
  if (input.publicKey === undefined) {
    const generated = generateSubjectKey(input.keyId);
    privateKey = generated.privateKey;
    subject = generated.publicKey;
  } else {
    subject = parsePublicKeyLine(input.publicKey);
  }
  const subjectReader = new SshReader(
    subject.blob,
    (what) => new SshKeyError('ERR_SSH_CA_KEY_INVALID', what),
  );
  subjectReader.text();
  const keyFields = subject.blob.subarray(subjectReader.offset);

  const principals = new SshWriter();
  for (const principal of input.principals) principals.string(principal);

  const body = new SshWriter()
    .string(subject.type + CERT_SUFFIX)
    .string(randomBytes(32))
    .raw(keyFields)
    .uint64(serial)
    .uint32(SshCertType.User)
    .string(input.keyId)
    .string(principals.toBuffer())
    .uint64(writtenAfter)
    .uint64(notAfter)
    .string(encodeCriticalOptions(input.criticalOptions ?? {}))
    .string(encodeExtensions(input.extensions ?? {}))
    .string('')
    .string(input.ca.publicKeyBlob)
    .toBuffer();
  const signature = sign(null, body, input.ca.privateKey);
  const blob = new SshWriter()
    .raw(body)
    .string(new SshWriter().string(SshKeyType.Ed25519).string(signature).toBuffer())
    .toBuffer();
  return {
    certificate: `${subject.type}${CERT_SUFFIX} ${blob.toString('base64')} ${input.keyId}`,
    serial,
    fingerprint: fingerprintKeyBlob(subject.blob),
    keyId: input.keyId,
    validAfter: new Date(Number(writtenAfter) * 1000),
    validBefore: new Date(Number(notAfter) * 1000),
    publicKey: formatPublicKeyLine(subject.blob, input.keyId),
    ...(privateKey === undefined ? {} : { privateKey }),
  };
}

/** A certificate read from the wire, before any trust decision. */
export interface ParsedCertificate {
  type: string;
  publicKeyBlob: Buffer;
  serial: bigint;
  certType: number;
  keyId: string;
  principals: string[];
  validAfter: bigint;
  validBefore: bigint;
  criticalOptions: { name: string; data: Buffer }[];
  extensions: string[];
  caKeyBlob: Buffer;
  signatureType: string;
  signature: Buffer;
  /** The signed bytes: everything before the signature field. */
  signed: Buffer;
}

const malformed = (what: string) =>
  new SshCertificateRejectedError('ERR_SSH_CA_CERT_MALFORMED', `malformed SSH certificate: ${what}`);

/**
 * Parses an OpenSSH certificate, given as its line (`<type>-cert-v01@openssh.com AAAA... [comment]`)
 * or as the raw blob (what an SSH server receives). Checks structure only, not trust:
 * throws `ERR_SSH_CA_CERT_MALFORMED`.
 */
export function parseCertificate(certificate: string | Uint8Array): ParsedCertificate {
  let blob: Buffer;
  if (typeof certificate === 'string') {
    if (certificate.length > MAX_CERT_TEXT) throw malformed('too long');
    const match = /^\s*(\S+)\s+([A-Za-z0-9+/]+={0,2})(?:\s.*)?$/s.exec(certificate);
    if (!match) throw malformed('expected "<type> <base64> [comment]"');
    blob = Buffer.from(match[2]!, 'base64');
    if (!blob.subarray(4, 4 + match[1]!.length).equals(Buffer.from(match[1]!))) {
      throw malformed('declared type does not match the certificate');
    }
  } else {
    if (certificate.byteLength > MAX_CERT_TEXT) throw malformed('too long');
    blob = Buffer.from(certificate);
  }
  const reader = new SshReader(blob, malformed);
  const type = reader.text('type');
  const keyType = type.endsWith(CERT_SUFFIX) ? type.slice(0, -CERT_SUFFIX.length) : '';
  const fields = SUBJECT_KEY_FIELDS.get(keyType);
  if (fields === undefined) throw malformed(`unsupported certificate type ${type.slice(0, 60)}`);
  reader.string('nonce');
  const keyStart = reader.offset;
  for (let i = 0; i < fields; i++) reader.string('key field');
  const keyFields = reader.slice(keyStart, reader.offset);
  const serial = reader.uint64('serial');
  const certType = reader.uint32('certificate type');
  const keyId = reader.text('key id');
  const principals = readStringList(reader.string('principals'), malformed, 'principal');
  const validAfter = reader.uint64('valid after');
  const validBefore = reader.uint64('valid before');
  const criticalOptions = readNameDataList(reader.string('critical options'), malformed, 'critical option');
  const extensions = readNameDataList(reader.string('extensions'), malformed, 'extension').map((e) => e.name);
  reader.string('reserved');
  const caKeyBlob = reader.string('signature key');
  const signed = reader.slice(0, reader.offset);
  const signatureReader = new SshReader(reader.string('signature'), malformed);
  reader.end('certificate');
  const signatureType = signatureReader.text('signature type');
  const signature = signatureReader.string('signature');
  signatureReader.end('signature');
  return {
    type,
    publicKeyBlob: new SshWriter().string(keyType).raw(keyFields).toBuffer(),
    serial,
    certType,
    keyId,
    principals,
    validAfter,
    validBefore,
    criticalOptions,
    extensions,
    caKeyBlob,
    signatureType,
    signature,
    signed,
  };
}

function decodeCriticalOptions(options: { name: string; data: Buffer }[]): CriticalOptions {
  const out: CriticalOptions = {};
  for (const { name, data } of options) {
    const reader = new SshReader(data, malformed);
    const value = reader.text(name);
    reader.end(name);
    if (name === 'force-command') out.forceCommand = value;
    else if (name === 'source-address') out.sourceAddress = value.split(',');
    else {
      // PROTOCOL.certkeys: an unrecognised critical option must cause the certificate to be refused.
      throw new SshCertificateRejectedError(
        'ERR_SSH_CA_CERT_CRITICAL_OPTION',
        'certificate has an unknown critical option',
        {
          details: {
            option: name.slice(0, 64),
          },
        },
      );
    }
  }
  return out;
}

function rejected(
  code: ConstructorParameters<typeof SshCertificateRejectedError>[0],
  message: string,
  details = {},
) {
  return new SshCertificateRejectedError(code, message, { details });
}

/**
 * Verifies a user certificate as sshd would: structure, a trusted CA, the CA's signature, user
 * type, critical options, revocation, validity at `now` and the principal. Each refusal has its
 * own code: `ERR_SSH_CA_CERT_MALFORMED`, `ERR_SSH_CA_CERT_FOREIGN_CA`, `ERR_SSH_CA_CERT_SIGNATURE`,
 * `ERR_SSH_CA_CERT_TYPE`, `ERR_SSH_CA_CERT_CRITICAL_OPTION`, `ERR_SSH_CA_CERT_REVOKED`,
 * `ERR_SSH_CA_CERT_NOT_YET_VALID`, `ERR_SSH_CA_CERT_EXPIRED`, `ERR_SSH_CA_CERT_WRONG_PRINCIPAL`.
 * It does not prove the client holds the private key: the SSH server does that.
 */
export function verifyUserCertificate(
  certificate: string | Uint8Array,
  options: VerifyUserCertificateOptions,
): VerifiedUserCertificate {
  const cert = parseCertificate(certificate);
  const trusted = options.caPublicKeys.map((line) =>
    parsePublicKeyLine(line, new Map([[SshKeyType.Ed25519, 1]])),
  );
  const ca = trusted.find(
    (key) => key.blob.length === cert.caKeyBlob.length && timingSafeEqual(key.blob, cert.caKeyBlob),
  );
  if (!ca) throw rejected('ERR_SSH_CA_CERT_FOREIGN_CA', 'certificate is not signed by a trusted CA');
  let valid = false;
  if (cert.signatureType === SshKeyType.Ed25519 && cert.signature.length === 64) {
    valid = verify(null, cert.signed, ed25519PublicKeyFromBlob(ca.blob), cert.signature);
  }
  if (!valid) throw rejected('ERR_SSH_CA_CERT_SIGNATURE', 'certificate signature is invalid');
  if (cert.certType !== SshCertType.User) throw rejected('ERR_SSH_CA_CERT_TYPE', 'not a user certificate');
  const criticalOptions = decodeCriticalOptions(cert.criticalOptions);
  if (options.revokedSerials?.has(cert.serial) || options.revokedKeyIds?.has(cert.keyId)) {
    throw rejected('ERR_SSH_CA_CERT_REVOKED', 'certificate is revoked', { serial: String(cert.serial) });
  }
  const now = BigInt(Math.floor(options.now.getTime() / 1000));
  if (now < cert.validAfter) throw rejected('ERR_SSH_CA_CERT_NOT_YET_VALID', 'certificate is not yet valid');
  // sshd accepts while now < valid_before (the bound is exclusive).
  if (now >= cert.validBefore) throw rejected('ERR_SSH_CA_CERT_EXPIRED', 'certificate has expired');
  if (!cert.principals.includes(options.principal)) {
    throw rejected('ERR_SSH_CA_CERT_WRONG_PRINCIPAL', 'certificate is not valid for this user', {
      principal: options.principal.slice(0, 64),
    });
  }
  return {
    keyId: cert.keyId,
    serial: cert.serial,
    principals: cert.principals,
    validAfter: new Date(Number(cert.validAfter) * 1000),
    validBefore: new Date(
      Number(cert.validBefore > 8_000_000_000_000n ? 8_000_000_000_000n : cert.validBefore) * 1000,
    ),
    criticalOptions,
    extensions: cert.extensions,
    publicKeyBlob: cert.publicKeyBlob,
    fingerprint: fingerprintKeyBlob(cert.publicKeyBlob),
    caFingerprint: fingerprintKeyBlob(cert.caKeyBlob),
  };
}
