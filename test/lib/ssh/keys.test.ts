import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { isSshCaError, type SshCaErrorCode } from '../../../lib/ssh/errors.ts';
import {
  formatCaPublicKeyLine,
  formatOpenSshPrivateKey,
  generateCa,
  loadCa,
  parsePublicKeyLine,
} from '../../../lib/ssh/keys.ts';
import { loadCaFile } from '../../../lib/ssh/load-ca-file.ts';

const dir = mkdtempSync(join(tmpdir(), 'warden-ssh-keys-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function sshKeygen(name: string, type: string, passphrase = ''): { priv: string; pub: string } {
  const file = join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-t', type, '-N', passphrase, '-C', `c-${name}`, '-f', file]);
  return { priv: readFileSync(file, 'utf8'), pub: readFileSync(`${file}.pub`, 'utf8') };
}

const expectCode = (code: SshCaErrorCode) => (e: unknown) => isSshCaError(e, code);

describe('loadCa', () => {
  it('reads an ssh-keygen Ed25519 key and yields the same public key line', () => {
    const { priv, pub } = sshKeygen('ca', 'ed25519');
    const ca = loadCa(priv);
    assert.equal(formatCaPublicKeyLine(ca), pub.trim());
    assert.equal(ca.comment, 'c-ca');
  });

  it('reads a PKCS#8 PEM Ed25519 key', () => {
    const { privateKey } = generateKeyPairSync('ed25519');
    const pem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    assert.equal(loadCa(pem).publicKeyBlob.length, 51);
  });

  it('writes keys ssh-keygen reads back (same fingerprint)', () => {
    const ca = generateCa('round-trip');
    const file = join(dir, 'written');
    writeFileSync(file, formatOpenSshPrivateKey(ca.privateKey, 'round-trip'), { mode: 0o600 });
    const listed = execFileSync('ssh-keygen', ['-l', '-f', file]).toString();
    assert.match(listed, new RegExp(ca.fingerprint.replace(/[+/]/g, '\\$&')));
    assert.equal(loadCa(readFileSync(file, 'utf8')).fingerprint, ca.fingerprint);
  });

  it('does not print the private key', () => {
    const ca = generateCa();
    const seed = ca.privateKey.export({ format: 'jwk' }).d!;
    assert.ok(!JSON.stringify(ca).includes(seed));
  });

  const bad: [string, () => string, SshCaErrorCode][] = [
    ['an RSA OpenSSH key', () => sshKeygen('rsa', 'rsa').priv, 'ERR_SSH_CA_KEY_TYPE'],
    ['an ECDSA OpenSSH key', () => sshKeygen('ecdsa', 'ecdsa').priv, 'ERR_SSH_CA_KEY_TYPE'],
    [
      'an RSA PEM key',
      () =>
        generateKeyPairSync('rsa', { modulusLength: 1024 })
          .privateKey.export({ format: 'pem', type: 'pkcs8' })
          .toString(),
      'ERR_SSH_CA_KEY_TYPE',
    ],
    [
      'a passphrase-protected key',
      () => sshKeygen('enc', 'ed25519', 'secret-pass').priv,
      'ERR_SSH_CA_KEY_ENCRYPTED',
    ],
    ['garbage', () => 'not a key', 'ERR_SSH_CA_KEY_INVALID'],
    ['a public key', () => sshKeygen('pubonly', 'ed25519').pub, 'ERR_SSH_CA_KEY_INVALID'],
    [
      'a truncated OpenSSH key',
      () => {
        const body = sshKeygen('trunc', 'ed25519').priv.split('\n').slice(1, -2).join('');
        const cut = Buffer.from(body, 'base64').subarray(0, 120).toString('base64');
        return `-----BEGIN OPENSSH PRIVATE KEY-----\n${cut}\n-----END OPENSSH PRIVATE KEY-----\n`;
      },
      'ERR_SSH_CA_KEY_INVALID',
    ],
    [
      'an OpenSSH key with a flipped private byte',
      () => {
        const text = sshKeygen('flip', 'ed25519').priv;
        const body = Buffer.from(text.split('\n').slice(1, -2).join(''), 'base64');
        body[body.length - 40]! ^= 0xff;
        return `-----BEGIN OPENSSH PRIVATE KEY-----\n${body.toString('base64')}\n-----END OPENSSH PRIVATE KEY-----\n`;
      },
      'ERR_SSH_CA_KEY_INVALID',
    ],
    ['a huge input', () => 'A'.repeat(100_000), 'ERR_SSH_CA_KEY_INVALID'],
  ];
  for (const [name, text, code] of bad) {
    it(`refuses ${name} (${code})`, () => assert.throws(() => loadCa(text()), expectCode(code)));
  }
});

describe('parsePublicKeyLine', () => {
  it('reads ed25519, rsa and ecdsa lines from ssh-keygen', () => {
    for (const type of ['ed25519', 'rsa', 'ecdsa']) {
      const { pub } = sshKeygen(`pub-${type}`, type);
      const key = parsePublicKeyLine(pub);
      assert.equal(key.comment, `c-pub-${type}`);
    }
  });
  const bad: [string, string, SshCaErrorCode][] = [
    ['empty', '', 'ERR_SSH_CA_KEY_INVALID'],
    ['a DSA type', 'ssh-dss AAAAB3NzaC1kc3MAAAA=', 'ERR_SSH_CA_KEY_TYPE'],
    ['a type mismatching its blob', `ssh-rsa ${parseEd25519Body()}`, 'ERR_SSH_CA_KEY_INVALID'],
    ['a truncated blob', 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA==', 'ERR_SSH_CA_KEY_INVALID'],
    ['trailing bytes in the blob', `ssh-ed25519 ${withTrailingByte()}`, 'ERR_SSH_CA_KEY_INVALID'],
  ];
  for (const [name, line, code] of bad) {
    it(`refuses ${name} (${code})`, () => assert.throws(() => parsePublicKeyLine(line), expectCode(code)));
  }
});

function parseEd25519Body(): string {
  return formatCaPublicKeyLine(generateCa()).split(' ')[1]!;
}

function withTrailingByte(): string {
  return Buffer.concat([Buffer.from(parseEd25519Body(), 'base64'), Buffer.from([0])]).toString('base64');
}

describe('loadCaFile', () => {
  it('reads a key file written by ssh-keygen', async () => {
    const { pub } = sshKeygen('file-ca', 'ed25519');
    assert.equal(formatCaPublicKeyLine(await loadCaFile(join(dir, 'file-ca'))), pub.trim());
  });
  it('refuses a missing file (ERR_SSH_CA_KEY_INVALID)', async () => {
    await assert.rejects(loadCaFile(join(dir, 'missing')), expectCode('ERR_SSH_CA_KEY_INVALID'));
  });
});
