/**
 * The audit log's keys. The chain alone proves nothing to someone who can write the store: they
 * can rewrite an entry and recompute every hash after it. So every append signs the head it
 * writes with an Ed25519 key the store never holds (`audit.signing_key`, a secret reference), and
 * periodic checkpoints (signed heads) leave the store for a file and the log. A signature over an
 * entry's hash covers every entry before it, because each hash covers its predecessor's.
 *
 * Ed25519 rather than an HMAC: verifying needs only the public key, so an auditor (or a SIEM job)
 * can check the log without holding anything that could forge it.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
  verify,
} from 'node:crypto';
import { canonicalJson } from './chain.ts';

/** What the signatures are made over: domain-separated so one can never pass for the other. */
const ENTRY_DOMAIN = 'warden-audit-entry:v1:';
const CHECKPOINT_DOMAIN = 'warden-audit-checkpoint:v1:';

/** `ed25519:` and the first 16 hex digits of the SHA-256 of the public key (SPKI DER). */
export function keyIdOf(publicKey: KeyObject): string {
  const der = publicKey.export({ type: 'spki', format: 'der' });
  return `ed25519:${createHash('sha256').update(der).digest('hex').slice(0, 16)}`;
}

/** Signs heads and checkpoints; built from the private key only where Warden writes the log. */
export interface AuditSigner {
  readonly keyId: string;
  readonly publicKey: KeyObject;
  /** Base64 signature over an entry's hash. */
  signEntry(hash: string): string;
  /** Base64 signature over a checkpoint's signed fields. */
  signCheckpoint(fields: CheckpointFields): string;
}

/** The fields a checkpoint signs: the head's position and hash, and when it was seen. */
export interface CheckpointFields {
  seq: number;
  hash: string;
  /** Milliseconds since the epoch. */
  at: number;
}

/** The public keys signatures are checked against, by key id. */
export interface AuditKeyring {
  readonly keys: ReadonlyMap<string, KeyObject>;
  /** Whether `sig` is a signature of `keyId` over the entry hash. False for unknown keys. */
  verifyEntry(hash: string, keyId: string, sig: string): boolean;
  verifyCheckpoint(fields: CheckpointFields, keyId: string, sig: string): boolean;
}

function checkpointMessage(fields: CheckpointFields): Buffer {
  return Buffer.from(
    CHECKPOINT_DOMAIN + canonicalJson({ seq: fields.seq, hash: fields.hash, at: fields.at }),
    'utf8',
  );
}

function isEd25519(key: KeyObject): boolean {
  return key.asymmetricKeyType === 'ed25519';
}

/**
 * Reads an Ed25519 private key (PKCS#8 PEM, as `openssl genpkey -algorithm ed25519` or
 * `warden audit keygen` writes it). Throws an Error whose message names what is wrong (never the key).
 */
export function loadAuditSigner(pem: string): AuditSigner {
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: pem, format: 'pem' });
  } catch {
    throw new Error('not a PEM private key (make one with `warden audit keygen`)');
  }
  if (!isEd25519(privateKey))
    throw new Error(`an ${privateKey.asymmetricKeyType} key; the audit key is Ed25519`);
  const publicKey = createPublicKey(privateKey);
  const keyId = keyIdOf(publicKey);
  return {
    keyId,
    publicKey,
    signEntry: (hash) => sign(null, Buffer.from(ENTRY_DOMAIN + hash, 'utf8'), privateKey).toString('base64'),
    signCheckpoint: (fields) => sign(null, checkpointMessage(fields), privateKey).toString('base64'),
  };
}

/** Reads an Ed25519 public key (SPKI PEM, as `warden audit keygen` prints it). */
export function loadAuditPublicKey(pem: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: pem, format: 'pem' });
  } catch {
    throw new Error('not a PEM public key');
  }
  if (!isEd25519(key)) throw new Error(`an ${key.asymmetricKeyType} key; the audit key is Ed25519`);
  return key;
}

function verifySignature(message: Buffer, key: KeyObject | undefined, sig: string): boolean {
  if (!key || !/^[A-Za-z0-9+/]{86}==$/.test(sig)) return false;
  try {
    return verify(null, message, key, Buffer.from(sig, 'base64'));
  } catch {
    return false;
  }
}

/** A keyring over public keys (the signer's own, and older ones kept for entries they signed). */
export function createAuditKeyring(publicKeys: Iterable<KeyObject>): AuditKeyring {
  const keys = new Map<string, KeyObject>();
  for (const key of publicKeys) keys.set(keyIdOf(key), key);
  return {
    keys,
    verifyEntry: (hash, keyId, sig) =>
      verifySignature(Buffer.from(ENTRY_DOMAIN + hash, 'utf8'), keys.get(keyId), sig),
    verifyCheckpoint: (fields, keyId, sig) =>
      verifySignature(checkpointMessage(fields), keys.get(keyId), sig),
  };
}

/** A new audit key pair as PEM texts (private PKCS#8, public SPKI) and its key id. */
export function generateAuditKey(): { privateKey: string; publicKey: string; keyId: string } {
  const pair = generateKeyPairSync('ed25519');
  return {
    privateKey: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKey: pair.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    keyId: keyIdOf(pair.publicKey),
  };
}
