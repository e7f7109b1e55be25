/**
 * OpenSSH key revocation lists (PROTOCOL.krl), for sshd's `RevokedKeys`. Pure: input in, bytes out.
 * Certificates are revoked by serial or key id under Warden's CA; plain keys by SHA-256 hash.
 */
import { createHash } from 'node:crypto';
import { parseCertificate } from './certificate.ts';
import { SshCertificateInputError } from './errors.ts';
import { parsePublicKeyLine, type SshCa } from './keys.ts';
import { SshWriter } from './ssh-wire.ts';

/** `SSHKRL\n\0`: the KRL magic number. */
const KRL_MAGIC = Buffer.from('SSHKRL\n\0', 'latin1');
const KRL_FORMAT_VERSION = 1;
const MAX_SERIAL = 0xffff_ffff_ffff_ffffn;

/** KRL section types (one byte each). */
export enum KrlSection {
  /** `1`: KRL_SECTION_CERTIFICATES */
  Certificates = 1,
  /** `2`: KRL_SECTION_EXPLICIT_KEY */
  ExplicitKey = 2,
  /** `3`: KRL_SECTION_FINGERPRINT_SHA1 */
  FingerprintSha1 = 3,
  /** `4`: KRL_SECTION_SIGNATURE */
  Signature = 4,
  /** `5`: KRL_SECTION_FINGERPRINT_SHA256 */
  FingerprintSha256 = 5,
}

/** Certificate subsection types (one byte each). */
export enum KrlCertSection {
  /** `0x20`: KRL_SECTION_CERT_SERIAL_LIST */
  SerialList = 0x20,
  /** `0x21`: KRL_SECTION_CERT_SERIAL_RANGE */
  SerialRange = 0x21,
  /** `0x22`: KRL_SECTION_CERT_SERIAL_BITMAP */
  SerialBitmap = 0x22,
  /** `0x23`: KRL_SECTION_CERT_KEY_ID */
  KeyId = 0x23,
}

/** Input of {@link buildKrl}. */
export interface BuildKrlInput {
  /** The CA whose certificates are revoked by serial, key id or certificate. */
  ca: SshCa;
  /** Certificate serials (1 to 2^64-1) to revoke. */
  serials?: readonly (bigint | number)[];
  /** Certificate key ids to revoke (every certificate of the CA with that id). */
  keyIds?: readonly string[];
  /** Certificate lines to revoke; each must be signed by `ca`; revoked by serial. */
  certificates?: readonly string[];
  /** Plain public key lines to revoke outright (also revokes any certificate of that key). */
  publicKeys?: readonly string[];
  /** Monotonic KRL version; sshd does not compare it, admins do. Default 1. */
  version?: bigint | number;
  /** Generation time written in the header. */
  generatedAt: Date;
  comment?: string;
}

const krlInput = (message: string, details: Record<string, unknown> = {}) =>
  new SshCertificateInputError('ERR_SSH_CA_KRL_INVALID', message, { details });

function toSerial(value: bigint | number): bigint {
  const serial = typeof value === 'number' && Number.isSafeInteger(value) ? BigInt(value) : value;
  // ssh-keygen refuses serial 0: it is what "no serial" certificates carry.
  if (typeof serial !== 'bigint' || serial < 1n || serial > MAX_SERIAL) {
    throw krlInput('a revoked serial must be an integer from 1 to 2^64-1', { serial: String(value) });
  }
  return serial;
}

/** Collapses sorted serials into runs, so long consecutive runs become one range record. */
function toRuns(serials: bigint[]): [bigint, bigint][] {
  const runs: [bigint, bigint][] = [];
  for (const serial of serials) {
    const last = runs.at(-1);
    if (last && serial === last[1] + 1n) last[1] = serial;
    else runs.push([serial, serial]);
  }
  return runs;
}

/**
 * Builds a binary KRL revoking certificates of `ca` (by serial, key id or certificate line) and
 * plain keys (by SHA-256 of the key blob). Throws `ERR_SSH_CA_KRL_INVALID` for a serial out of
 * range, an empty or non-ASCII key id, a certificate from another CA, or nothing to revoke.
 */
export function buildKrl(input: BuildKrlInput): Buffer {
  const serialSet = new Set<bigint>((input.serials ?? []).map(toSerial));
  for (const line of input.certificates ?? []) {
    const cert = parseCertificate(line);
    if (!cert.caKeyBlob.equals(input.ca.publicKeyBlob)) {
      throw krlInput('a revoked certificate is not signed by this CA', { keyId: cert.keyId.slice(0, 64) });
    }
    serialSet.add(toSerial(cert.serial));
  }
  const keyIds = [...new Set(input.keyIds ?? [])].sort();
  for (const keyId of keyIds) {
    if (!/^[\x20-\x7e]{1,256}$/.test(keyId))
      throw krlInput('a revoked key id must be 1-256 printable ASCII characters');
  }
  const hashes = (input.publicKeys ?? [])
    .map((line) => createHash('sha256').update(parsePublicKeyLine(line).blob).digest())
    .sort(Buffer.compare);
  if (serialSet.size === 0 && keyIds.length === 0 && hashes.length === 0) {
    throw krlInput('a KRL needs at least one serial, key id, certificate or key to revoke');
  }
  const version = input.version ?? 1;
  if (typeof version !== 'bigint' && !Number.isSafeInteger(version))
    throw krlInput('the KRL version must be an integer');
  const generated = Math.floor(input.generatedAt.getTime() / 1000);
  if (!Number.isFinite(generated) || generated < 0)
    throw krlInput('generatedAt must be a valid date after 1970');

  const out = new SshWriter()
    .raw(KRL_MAGIC)
    .uint32(KRL_FORMAT_VERSION)
    .uint64(BigInt(version))
    .uint64(BigInt(generated))
    .uint64(0n)
    .string('')
    .string(input.comment ?? '');

  if (serialSet.size > 0 || keyIds.length > 0) {
    const certs = new SshWriter().string(input.ca.publicKeyBlob).string('');
    const runs = toRuns([...serialSet].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
    const singles = runs.filter(([lo, hi]) => lo === hi).map(([lo]) => lo);
    if (singles.length > 0) {
      const list = new SshWriter();
      for (const serial of singles) list.uint64(serial);
      certs.byte(KrlCertSection.SerialList).string(list.toBuffer());
    }
    for (const [lo, hi] of runs.filter(([a, b]) => a !== b)) {
      certs.byte(KrlCertSection.SerialRange).string(new SshWriter().uint64(lo).uint64(hi).toBuffer());
    }
    if (keyIds.length > 0) {
      const list = new SshWriter();
      for (const keyId of keyIds) list.string(keyId);
      certs.byte(KrlCertSection.KeyId).string(list.toBuffer());
    }
    out.byte(KrlSection.Certificates).string(certs.toBuffer());
  }
  if (hashes.length > 0) {
    const list = new SshWriter();
    for (const hash of hashes) list.string(hash);
    out.byte(KrlSection.FingerprintSha256).string(list.toBuffer());
  }
  return out.toBuffer();
}
