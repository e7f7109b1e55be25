/**
 * Ed25519 keys for the CA and for subjects: load a CA from an OpenSSH private key (unencrypted
 * `openssh-key-v1`) or a PKCS#8 PEM, generate one, write keys in OpenSSH formats, and read public
 * key lines. Only Ed25519 CAs: sshd refuses the SHA-1 RSA signatures other tools make by default,
 * and Ed25519 has a single, unambiguous signature encoding.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
} from 'node:crypto';
import { SshKeyError } from './errors.ts';
import { SshReader, SshWriter } from './ssh-wire.ts';

/** SSH key type names as they appear on the wire. */
export enum SshKeyType {
  /** `ssh-ed25519` */
  Ed25519 = 'ssh-ed25519',
  /** `ssh-rsa` */
  Rsa = 'ssh-rsa',
  /** `ecdsa-sha2-nistp256` */
  EcdsaP256 = 'ecdsa-sha2-nistp256',
  /** `ecdsa-sha2-nistp384` */
  EcdsaP384 = 'ecdsa-sha2-nistp384',
  /** `ecdsa-sha2-nistp521` */
  EcdsaP521 = 'ecdsa-sha2-nistp521',
}

/**
 * Subject key types a certificate may certify, with how many wire fields follow the type name in
 * the public key blob (PROTOCOL.certkeys copies exactly these fields into the certificate).
 */
export const SUBJECT_KEY_FIELDS: ReadonlyMap<string, number> = new Map([
  [SshKeyType.Ed25519, 1],
  [SshKeyType.Rsa, 2],
  [SshKeyType.EcdsaP256, 2],
  [SshKeyType.EcdsaP384, 2],
  [SshKeyType.EcdsaP521, 2],
]);

const OPENSSH_MAGIC = Buffer.from('openssh-key-v1\0', 'latin1');
const PEM_OPENSSH = /-----BEGIN OPENSSH PRIVATE KEY-----([\s\S]*?)-----END OPENSSH PRIVATE KEY-----/;
/** Upper bound on key text we agree to parse; real Ed25519 keys are a few hundred bytes. */
const MAX_KEY_TEXT = 16_384;

/** Warden's certificate authority: an Ed25519 key pair. The private key never prints. */
export interface SshCa {
  /** The CA public key as an SSH wire blob (`string "ssh-ed25519"`, `string key`). */
  readonly publicKeyBlob: Buffer;
  /** Node key object of the private key; its `toString` shows no material. */
  readonly privateKey: KeyObject;
  /** `SHA256:<base64>` fingerprint of the public key, as ssh-keygen prints it. */
  readonly fingerprint: string;
  /** Comment written into public key lines. */
  readonly comment: string;
}

/** A parsed OpenSSH public key line (`type base64 [comment]`). */
export interface SshPublicKey {
  readonly type: string;
  readonly blob: Buffer;
  readonly comment: string;
}

const badKey = (what: string) => new SshKeyError('ERR_SSH_CA_KEY_INVALID', `invalid SSH key: ${what}`);

/** `SHA256:<unpadded base64>` fingerprint of a key blob, as `ssh-keygen -l` prints it. */
export function fingerprintKeyBlob(blob: Uint8Array): string {
  return 'SHA256:' + createHash('sha256').update(blob).digest('base64').replace(/=+$/, '');
}

function ed25519Blob(rawPublic: Uint8Array): Buffer {
  return new SshWriter().string(SshKeyType.Ed25519).string(rawPublic).toBuffer();
}

function rawEd25519Public(key: KeyObject): Buffer {
  const jwk = createPublicKey(key).export({ format: 'jwk' });
  return Buffer.from(jwk.x!, 'base64url');
}

function rawEd25519Seed(key: KeyObject): Buffer {
  return Buffer.from(key.export({ format: 'jwk' }).d!, 'base64url');
}

function ed25519FromSeed(seed: Uint8Array, rawPublic: Uint8Array): KeyObject {
  try {
    return createPrivateKey({
      key: {
        kty: 'OKP',
        crv: 'Ed25519',
        d: Buffer.from(seed).toString('base64url'),
        x: Buffer.from(rawPublic).toString('base64url'),
      },
      format: 'jwk',
    });
  } catch (cause) {
    throw new SshKeyError('ERR_SSH_CA_KEY_INVALID', 'invalid SSH key: bad Ed25519 private key', { cause });
  }
}

function caFromKeyObject(privateKey: KeyObject, comment: string): SshCa {
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw new SshKeyError(
      'ERR_SSH_CA_KEY_TYPE',
      `the SSH CA key must be Ed25519, not ${privateKey.asymmetricKeyType ?? 'unknown'}`,
      { details: { type: privateKey.asymmetricKeyType } },
    );
  }
  const publicKeyBlob = ed25519Blob(rawEd25519Public(privateKey));
  return { publicKeyBlob, privateKey, fingerprint: fingerprintKeyBlob(publicKeyBlob), comment };
}

/** Generates a fresh Ed25519 CA. */
export function generateCa(comment = 'warden-ca'): SshCa {
  return caFromKeyObject(generateKeyPairSync('ed25519').privateKey, comment);
}

/**
 * Reads a CA private key from its text: an unencrypted OpenSSH private key
 * (`-----BEGIN OPENSSH PRIVATE KEY-----`, what `ssh-keygen -t ed25519` writes) or a PKCS#8 PEM.
 * Throws `ERR_SSH_CA_KEY_ENCRYPTED` for a passphrase-protected key, `ERR_SSH_CA_KEY_TYPE` for a
 * key that is not Ed25519 and `ERR_SSH_CA_KEY_INVALID` for anything unreadable.
 */
export function loadCa(text: string, comment?: string): SshCa {
  if (text.length > MAX_KEY_TEXT) throw badKey('key text is too long');
  const openssh = PEM_OPENSSH.exec(text);
  if (openssh) {
    const { privateKey, comment: stored } = parseOpenSshPrivateKey(openssh[1]!);
    return caFromKeyObject(privateKey, comment ?? (stored || 'warden-ca'));
  }
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) {
    throw badKey('expected an OpenSSH or PEM private key');
  }
  if (/ENCRYPTED/.test(text)) {
    throw new SshKeyError(
      'ERR_SSH_CA_KEY_ENCRYPTED',
      'the SSH CA key is passphrase-protected; store it unencrypted',
    );
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: text, format: 'pem' });
  } catch (cause) {
    throw new SshKeyError('ERR_SSH_CA_KEY_INVALID', 'invalid SSH key: unreadable PEM private key', { cause });
  }
  return caFromKeyObject(privateKey, comment ?? 'warden-ca');
}

function parseOpenSshPrivateKey(base64Body: string): { privateKey: KeyObject; comment: string } {
  const body = base64Body.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body)) throw badKey('OpenSSH key body is not base64');
  const bytes = Buffer.from(body, 'base64');
  if (!bytes.subarray(0, OPENSSH_MAGIC.length).equals(OPENSSH_MAGIC))
    throw badKey('not an openssh-key-v1 key');
  const reader = new SshReader(bytes.subarray(OPENSSH_MAGIC.length), badKey);
  const cipher = reader.text('cipher name');
  const kdf = reader.text('kdf name');
  reader.string('kdf options');
  if (cipher !== 'none' || kdf !== 'none') {
    throw new SshKeyError(
      'ERR_SSH_CA_KEY_ENCRYPTED',
      'the SSH CA key is passphrase-protected; store it unencrypted',
    );
  }
  if (reader.uint32('key count') !== 1) throw badKey('expected exactly one key');
  const publicBlob = reader.string('public key');
  const section = new SshReader(reader.string('private section'), badKey);
  reader.end('private section');
  const check = section.uint32('check');
  if (section.uint32('check') !== check) throw badKey('check integers differ');
  const type = section.text('key type');
  if (type !== SshKeyType.Ed25519) {
    throw new SshKeyError('ERR_SSH_CA_KEY_TYPE', `the SSH CA key must be Ed25519, not ${type.slice(0, 40)}`, {
      details: {
        type: type.slice(0, 40),
      },
    });
  }
  const rawPublic = section.string('public key');
  const secret = section.string('private key');
  const comment = section.text('comment');
  if (rawPublic.length !== 32 || secret.length !== 64 || !secret.subarray(32).equals(rawPublic)) {
    throw badKey('bad Ed25519 key lengths');
  }
  const privateKey = ed25519FromSeed(secret.subarray(0, 32), rawPublic);
  if (!rawEd25519Public(privateKey).equals(rawPublic) || !ed25519Blob(rawPublic).equals(publicBlob)) {
    throw badKey('public key does not match private key');
  }
  return { privateKey, comment };
}

/** Writes an Ed25519 private key as an unencrypted OpenSSH private key file (`openssh-key-v1`). */
export function formatOpenSshPrivateKey(privateKey: KeyObject, comment = ''): string {
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw new SshKeyError('ERR_SSH_CA_KEY_TYPE', 'only Ed25519 private keys can be written');
  }
  const rawPublic = rawEd25519Public(privateKey);
  const seed = rawEd25519Seed(privateKey);
  const check = randomBytes(4).readUInt32BE(0);
  const section = new SshWriter()
    .uint32(check)
    .uint32(check)
    .string(SshKeyType.Ed25519)
    .string(rawPublic)
    .string(Buffer.concat([seed, rawPublic]))
    .string(comment);
  const unpadded = section.toBuffer();
  // The private section is padded with 1, 2, 3, ... to the cipher block size (8 for "none").
  const padding = Buffer.from(Array.from({ length: (8 - (unpadded.length % 8)) % 8 }, (_, i) => i + 1));
  const body = new SshWriter()
    .raw(OPENSSH_MAGIC)
    .string('none')
    .string('none')
    .string('')
    .uint32(1)
    .string(ed25519Blob(rawPublic))
    .string(Buffer.concat([unpadded, padding]))
    .toBuffer()
    .toString('base64');
  const lines = body.match(/.{1,70}/g) ?? [];
  return ['-----BEGIN OPENSSH PRIVATE KEY-----', ...lines, '-----END OPENSSH PRIVATE KEY-----', ''].join(
    '\n',
  );
}

/** The CA's public key line, for sshd's `TrustedUserCAKeys` file. */
export function formatCaPublicKeyLine(ca: SshCa): string {
  return formatPublicKeyLine(ca.publicKeyBlob, ca.comment);
}

/** Formats a key blob as an OpenSSH public key line. */
export function formatPublicKeyLine(blob: Uint8Array, comment = ''): string {
  const type = new SshReader(blob, badKey).text('key type');
  const line = `${type} ${Buffer.from(blob).toString('base64')}`;
  return comment ? `${line} ${comment}` : line;
}

/**
 * Parses an OpenSSH public key line (`ssh-ed25519 AAAA... comment`). Checks that the declared
 * type matches the blob and that the blob has exactly the fields of its type. `allowed` limits the
 * accepted types (default: the subject key types a certificate may certify).
 */
export function parsePublicKeyLine(
  line: string,
  allowed: ReadonlyMap<string, number> = SUBJECT_KEY_FIELDS,
): SshPublicKey {
  if (line.length > MAX_KEY_TEXT) throw badKey('public key line is too long');
  const match = /^\s*(\S+)\s+([A-Za-z0-9+/]+={0,2})(?:\s+(.*?))?\s*$/.exec(line);
  if (!match) throw badKey('expected "<type> <base64> [comment]"');
  const [, type, body, comment] = match;
  const fields = allowed.get(type!);
  if (fields === undefined) {
    throw new SshKeyError('ERR_SSH_CA_KEY_TYPE', `unsupported SSH key type ${type!.slice(0, 40)}`, {
      details: {
        type: type!.slice(0, 40),
      },
    });
  }
  const blob = Buffer.from(body!, 'base64');
  const reader = new SshReader(blob, badKey);
  if (reader.text('key type') !== type) throw badKey('key type does not match its blob');
  for (let i = 0; i < fields; i++) reader.string('key field');
  reader.end('public key');
  if (type === SshKeyType.Ed25519 && blob.length !== 4 + 11 + 4 + 32) throw badKey('bad Ed25519 key length');
  return { type: type!, blob, comment: comment ?? '' };
}

/** Builds a Node public key object from an Ed25519 key blob, to verify signatures. */
export function ed25519PublicKeyFromBlob(blob: Uint8Array): KeyObject {
  const reader = new SshReader(blob, badKey);
  if (reader.text('key type') !== SshKeyType.Ed25519) {
    throw new SshKeyError('ERR_SSH_CA_KEY_TYPE', 'expected an Ed25519 key');
  }
  const raw = reader.string('key');
  reader.end('Ed25519 key');
  if (raw.length !== 32) throw badKey('bad Ed25519 key length');
  return createPublicKey({
    key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') },
    format: 'jwk',
  });
}

/** Generates an Ed25519 key pair for a subject: an OpenSSH private key file and public key line. */
export function generateSubjectKey(comment = ''): { privateKey: string; publicKey: SshPublicKey } {
  const { privateKey } = generateKeyPairSync('ed25519');
  const blob = ed25519Blob(rawEd25519Public(privateKey));
  return {
    privateKey: formatOpenSshPrivateKey(privateKey, comment),
    publicKey: { type: SshKeyType.Ed25519, blob, comment },
  };
}
