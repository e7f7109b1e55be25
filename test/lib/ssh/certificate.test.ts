import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  CLOCK_SKEW_SECONDS,
  formatKeyId,
  type MintUserCertificateInput,
  mintUserCertificate,
  parseCertificate,
  verifyUserCertificate,
} from '../../../lib/ssh/certificate.ts';
import { isSshCaError, type SshCaErrorCode } from '../../../lib/ssh/errors.ts';
import { formatCaPublicKeyLine, generateCa } from '../../../lib/ssh/keys.ts';

const dir = mkdtempSync(join(tmpdir(), 'warden-ssh-cert-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const ca = generateCa('unit-ca');
const T0 = new Date('2030-01-01T00:00:00Z');
const T1 = new Date('2030-01-01T00:30:00Z');

const base = (overrides: Partial<MintUserCertificateInput> = {}): MintUserCertificateInput => ({
  ca,
  principals: ['alice'],
  validAfter: T0,
  validBefore: T1,
  keyId: formatKeyId('g-1', 'alice@example.com'),
  serial: 7n,
  ...overrides,
});

function keygenList(certificate: string): string {
  const file = join(dir, 'c-cert.pub');
  writeFileSync(file, certificate + '\n');
  return execFileSync('ssh-keygen', ['-L', '-f', file]).toString();
}

const expectCode = (code: SshCaErrorCode) => (e: unknown) => isSshCaError(e, code);

describe('mintUserCertificate', () => {
  it('ssh-keygen -L shows the principals, options, extensions, key id, serial and backdated validity', () => {
    const minted = mintUserCertificate(
      base({
        principals: ['alice', 'deploy'],
        serial: 123456789012n,
        criticalOptions: {
          forceCommand: '/usr/bin/warden-shell --grant g-1',
          sourceAddress: ['10.0.0.0/8', '::1'],
        },
        extensions: { permitPty: true, permitPortForwarding: true, permitUserRc: false },
      }),
    );
    const listing = keygenList(minted.certificate);
    assert.match(listing, /Key ID: "warden:grant=g-1:user=alice@example.com"/);
    assert.match(listing, /Serial: 123456789012/);
    assert.match(listing, /Valid: from 2029-12-31T23:59:30 to 2030-01-01T00:30:00/);
    assert.match(listing, /Principals: \n\s+alice\n\s+deploy\n/);
    assert.match(listing, /force-command \/usr\/bin\/warden-shell --grant g-1/);
    assert.match(listing, /source-address 10\.0\.0\.0\/8,::1/);
    const extensions = listing.split('Extensions:')[1]!.trim().split(/\s+/);
    assert.deepEqual(extensions, ['permit-port-forwarding', 'permit-pty']);
    assert.equal(minted.validAfter.getTime(), T0.getTime() - CLOCK_SKEW_SECONDS * 1000);
  });

  it('with no extensions and no options, ssh-keygen shows none', () => {
    const listing = keygenList(mintUserCertificate(base()).certificate);
    assert.match(listing, /Critical Options: \(none\)/);
    assert.match(listing, /Extensions: \(none\)/);
  });

  it('certifies a given RSA public key and returns no private key', () => {
    const file = join(dir, 'rsa');
    execFileSync('ssh-keygen', ['-q', '-t', 'rsa', '-b', '2048', '-N', '', '-f', file]);
    const publicKey = readFileSync(`${file}.pub`, 'utf8');
    const minted = mintUserCertificate(base({ publicKey }));
    assert.equal(minted.privateKey, undefined);
    assert.match(minted.certificate, /^ssh-rsa-cert-v01@openssh.com /);
    const fingerprint = execFileSync('ssh-keygen', ['-l', '-f', `${file}.pub`])
      .toString()
      .split(' ')[1];
    assert.equal(minted.fingerprint, fingerprint);
    assert.match(keygenList(minted.certificate), /Type: ssh-rsa-cert-v01@openssh.com user certificate/);
  });

  it('generates a fresh key pair when no public key is given, each time a different one', () => {
    const a = mintUserCertificate(base());
    const b = mintUserCertificate(base());
    assert.match(a.privateKey!, /^-----BEGIN OPENSSH PRIVATE KEY-----/);
    assert.notEqual(a.fingerprint, b.fingerprint);
    const file = join(dir, 'fresh');
    writeFileSync(file, a.privateKey!, { mode: 0o600 });
    const derived = execFileSync('ssh-keygen', ['-y', '-f', file]).toString().trim().split(' ').slice(0, 2);
    assert.deepEqual(derived, a.publicKey.split(' ').slice(0, 2));
  });

  const bad: [string, Partial<MintUserCertificateInput>, SshCaErrorCode][] = [
    ['no principals', { principals: [] }, 'ERR_SSH_CA_PRINCIPAL_INVALID'],
    ['a principal with a comma', { principals: ['alice,root'] }, 'ERR_SSH_CA_PRINCIPAL_INVALID'],
    ['a principal with a space', { principals: ['alice root'] }, 'ERR_SSH_CA_PRINCIPAL_INVALID'],
    ['a wildcard principal', { principals: ['*'] }, 'ERR_SSH_CA_PRINCIPAL_INVALID'],
    ['a principal with a newline', { principals: ['alice\n'] }, 'ERR_SSH_CA_PRINCIPAL_INVALID'],
    ['a principal starting with -', { principals: ['-oProxy'] }, 'ERR_SSH_CA_PRINCIPAL_INVALID'],
    ['validity inverted', { validAfter: T1, validBefore: T0 }, 'ERR_SSH_CA_VALIDITY_INVERTED'],
    ['validity empty', { validAfter: T0, validBefore: T0 }, 'ERR_SSH_CA_VALIDITY_INVERTED'],
    ['an invalid date', { validAfter: new Date('nope') }, 'ERR_SSH_CA_INPUT_INVALID'],
    ['serial 0', { serial: 0n }, 'ERR_SSH_CA_INPUT_INVALID'],
    ['a negative serial', { serial: -1 }, 'ERR_SSH_CA_INPUT_INVALID'],
    ['a serial over 2^64-1', { serial: 2n ** 64n }, 'ERR_SSH_CA_INPUT_INVALID'],
    ['a fractional serial', { serial: 1.5 }, 'ERR_SSH_CA_INPUT_INVALID'],
    ['an empty key id', { keyId: '' }, 'ERR_SSH_CA_INPUT_INVALID'],
    ['a key id with a newline', { keyId: 'a\nAccepted publickey for root' }, 'ERR_SSH_CA_INPUT_INVALID'],
    [
      'a bad source address',
      { criticalOptions: { sourceAddress: ['10.0.0.0/33'] } },
      'ERR_SSH_CA_INPUT_INVALID',
    ],
    [
      'a host name source address',
      { criticalOptions: { sourceAddress: ['example.com'] } },
      'ERR_SSH_CA_INPUT_INVALID',
    ],
    ['an empty source address list', { criticalOptions: { sourceAddress: [] } }, 'ERR_SSH_CA_INPUT_INVALID'],
    ['an empty force-command', { criticalOptions: { forceCommand: '' } }, 'ERR_SSH_CA_INPUT_INVALID'],
    ['a malformed public key', { publicKey: 'ssh-ed25519 !!!' }, 'ERR_SSH_CA_KEY_INVALID'],
    ['a DSA public key', { publicKey: 'ssh-dss AAAAB3NzaC1kc3MAAAA=' }, 'ERR_SSH_CA_KEY_TYPE'],
  ];
  for (const [name, overrides, code] of bad) {
    it(`refuses ${name} (${code})`, () =>
      assert.throws(() => mintUserCertificate(base(overrides)), expectCode(code)));
  }
});

describe('formatKeyId', () => {
  it('names the grant and the person', () => {
    assert.equal(formatKeyId('g-42', 'bob@example.com'), 'warden:grant=g-42:user=bob@example.com');
  });
  for (const [grant, user] of [
    ['g:1', 'bob@example.com'],
    ['g 1', 'bob@example.com'],
    ['g1', ''],
    ['g1', 'bob\n@example.com'],
  ] as const) {
    it(`refuses ${JSON.stringify([grant, user])}`, () =>
      assert.throws(() => formatKeyId(grant, user), expectCode('ERR_SSH_CA_INPUT_INVALID')));
  }
});

describe('verifyUserCertificate', () => {
  const caPublicKeys = [formatCaPublicKeyLine(ca)];
  const during = new Date('2030-01-01T00:10:00Z');
  const minted = mintUserCertificate(
    base({
      principals: ['alice', 'ops'],
      criticalOptions: { forceCommand: 'true' },
      extensions: { permitPty: true },
    }),
  );

  it('accepts a valid certificate and returns what it says', () => {
    const verified = verifyUserCertificate(minted.certificate, {
      caPublicKeys,
      principal: 'ops',
      now: during,
    });
    assert.equal(verified.keyId, 'warden:grant=g-1:user=alice@example.com');
    assert.equal(verified.serial, 7n);
    assert.deepEqual(verified.principals, ['alice', 'ops']);
    assert.deepEqual(verified.criticalOptions, { forceCommand: 'true' });
    assert.deepEqual(verified.extensions, ['permit-pty']);
    assert.equal(verified.fingerprint, minted.fingerprint);
    assert.equal(verified.caFingerprint, ca.fingerprint);
  });

  it('accepts the raw blob, as an SSH server receives it', () => {
    const blob = Buffer.from(minted.certificate.split(' ')[1]!, 'base64');
    assert.equal(verifyUserCertificate(blob, { caPublicKeys, principal: 'alice', now: during }).serial, 7n);
  });

  it('accepts within the clock-skew window before validAfter, and refuses before it', () => {
    const early = new Date(T0.getTime() - 20_000);
    assert.equal(
      verifyUserCertificate(minted.certificate, { caPublicKeys, principal: 'alice', now: early }).serial,
      7n,
    );
    assert.throws(
      () =>
        verifyUserCertificate(minted.certificate, {
          caPublicKeys,
          principal: 'alice',
          now: new Date(T0.getTime() - 31_000),
        }),
      expectCode('ERR_SSH_CA_CERT_NOT_YET_VALID'),
    );
  });

  const blob = Buffer.from(minted.certificate.split(' ')[1]!, 'base64');
  const flip = (offset: number) => {
    const copy = Buffer.from(blob);
    copy[offset]! ^= 0x01;
    return `ssh-ed25519-cert-v01@openssh.com ${copy.toString('base64')}`;
  };
  const keyIdOffset = blob.indexOf(Buffer.from('warden:grant'));
  const refused: [
    string,
    string | Uint8Array,
    Partial<{ principal: string; now: Date; caPublicKeys: string[] }>,
    SshCaErrorCode,
  ][] = [
    ['the valid-before instant (exclusive)', minted.certificate, { now: T1 }, 'ERR_SSH_CA_CERT_EXPIRED'],
    ['after expiry', minted.certificate, { now: new Date('2031-01-01Z') }, 'ERR_SSH_CA_CERT_EXPIRED'],
    ['another principal', minted.certificate, { principal: 'root' }, 'ERR_SSH_CA_CERT_WRONG_PRINCIPAL'],
    ['a prefix of a principal', minted.certificate, { principal: 'al' }, 'ERR_SSH_CA_CERT_WRONG_PRINCIPAL'],
    [
      'a foreign CA',
      minted.certificate,
      { caPublicKeys: [formatCaPublicKeyLine(generateCa())] },
      'ERR_SSH_CA_CERT_FOREIGN_CA',
    ],
    ['no trusted CA', minted.certificate, { caPublicKeys: [] }, 'ERR_SSH_CA_CERT_FOREIGN_CA'],
    ['a changed key id', flip(keyIdOffset), {}, 'ERR_SSH_CA_CERT_SIGNATURE'],
    ['a changed signature', flip(blob.length - 1), {}, 'ERR_SSH_CA_CERT_SIGNATURE'],
    ['a truncated blob', blob.subarray(0, blob.length - 10), {}, 'ERR_SSH_CA_CERT_MALFORMED'],
    ['trailing bytes', Buffer.concat([blob, Buffer.from([0])]), {}, 'ERR_SSH_CA_CERT_MALFORMED'],
    ['a plain public key', minted.publicKey, {}, 'ERR_SSH_CA_CERT_MALFORMED'],
    ['garbage', 'hello', {}, 'ERR_SSH_CA_CERT_MALFORMED'],
    ['a huge line', 'x '.repeat(50_000), {}, 'ERR_SSH_CA_CERT_MALFORMED'],
    [
      'a lying type',
      `ssh-rsa-cert-v01@openssh.com ${blob.toString('base64')}`,
      {},
      'ERR_SSH_CA_CERT_MALFORMED',
    ],
  ];
  for (const [name, certificate, overrides, code] of refused) {
    it(`refuses ${name} (${code})`, () =>
      assert.throws(
        () =>
          verifyUserCertificate(certificate, { caPublicKeys, principal: 'alice', now: during, ...overrides }),
        expectCode(code),
      ));
  }

  it('refuses revoked serials and key ids (ERR_SSH_CA_CERT_REVOKED)', () => {
    for (const revoked of [{ revokedSerials: new Set([7n]) }, { revokedKeyIds: new Set([minted.keyId]) }]) {
      assert.throws(
        () =>
          verifyUserCertificate(minted.certificate, {
            caPublicKeys,
            principal: 'alice',
            now: during,
            ...revoked,
          }),
        expectCode('ERR_SSH_CA_CERT_REVOKED'),
      );
    }
  });

  /** Signs a fresh key with a fresh CA using ssh-keygen itself; returns the certificate and the CA line. */
  function signWithKeygen(name: string, options: string[]): { cert: string; caLine: string } {
    const caFile = join(dir, `${name}-ca`);
    const key = join(dir, name);
    for (const file of [caFile, key])
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', file]);
    execFileSync('ssh-keygen', ['-q', '-s', caFile, '-n', 'alice', ...options, `${key}.pub`]);
    return { cert: readFileSync(`${key}-cert.pub`, 'utf8'), caLine: readFileSync(`${caFile}.pub`, 'utf8') };
  }

  const keygenCases: [string, string[], SshCaErrorCode][] = [
    ['a host certificate', ['-h', '-I', 'host-1', '-z', '9'], 'ERR_SSH_CA_CERT_TYPE'],
    [
      'an unknown critical option',
      ['-I', 'u', '-O', 'critical:made-up@example.com=1'],
      'ERR_SSH_CA_CERT_CRITICAL_OPTION',
    ],
  ];
  for (const [name, options, code] of keygenCases) {
    it(`parses what ssh-keygen signs and refuses ${name} (${code})`, () => {
      const { cert, caLine } = signWithKeygen(name.replace(/\W+/g, '-'), options);
      assert.equal(parseCertificate(cert).principals[0], 'alice');
      assert.throws(
        () => verifyUserCertificate(cert, { caPublicKeys: [caLine], principal: 'alice', now: new Date() }),
        expectCode(code),
      );
    });
  }
});
