import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { mintUserCertificate } from '../../../lib/ssh/certificate.ts';
import { isSshCaError } from '../../../lib/ssh/errors.ts';
import { generateCa } from '../../../lib/ssh/keys.ts';
import { type BuildKrlInput, buildKrl } from '../../../lib/ssh/krl.ts';

const dir = mkdtempSync(join(tmpdir(), 'warden-krl-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const ca = generateCa('krl-ca');
const generatedAt = new Date('2030-01-01T00:00:00Z');

function mint(serial: bigint, keyId = `warden:grant=g-${serial}:user=a@example.com`) {
  return mintUserCertificate({
    ca,
    principals: ['alice'],
    validAfter: new Date(),
    validBefore: new Date(Date.now() + 3_600_000),
    keyId,
    serial,
  });
}

/** Runs `ssh-keygen -Q -f krl cert` and returns true when it reports REVOKED. */
function revokedByKeygen(krl: Buffer, certificate: string): boolean {
  writeFileSync(join(dir, 'krl'), krl);
  writeFileSync(join(dir, 'cert.pub'), certificate + '\n');
  const result = spawnSync('ssh-keygen', ['-Q', '-f', join(dir, 'krl'), join(dir, 'cert.pub')]);
  const out = result.stdout.toString();
  assert.match(out, /: (REVOKED|ok)$/m, result.stderr.toString());
  return /REVOKED/.test(out);
}

describe('buildKrl', () => {
  const a = mint(5n);
  const b = mint(6n);
  const c = mint(7n);
  const far = mint(1000n);
  const named = mint(50n, 'warden:grant=g-bad:user=mallory@example.com');

  const cases: [string, Omit<BuildKrlInput, 'ca' | 'generatedAt'>, string, boolean][] = [
    ['a listed serial', { serials: [5n] }, a.certificate, true],
    ['a serial not listed', { serials: [5n] }, b.certificate, false],
    ['a serial inside a range', { serials: [5n, 6n, 7n, 1000n] }, b.certificate, true],
    ['a lone serial after a range', { serials: [7n, 5n, 6n, 1000n] }, far.certificate, true],
    ['a number serial', { serials: [7] }, c.certificate, true],
    ['a key id', { keyIds: ['warden:grant=g-bad:user=mallory@example.com'] }, named.certificate, true],
    ['another key id', { keyIds: ['warden:grant=g-bad:user=mallory@example.com'] }, a.certificate, false],
    ['a certificate line', { certificates: [c.certificate] }, c.certificate, true],
    ['a plain key, revoking its certificates too', { publicKeys: [b.publicKey] }, b.certificate, true],
  ];
  for (const [name, input, certificate, revoked] of cases) {
    it(`${revoked ? 'revokes' : 'does not revoke'} ${name} (ssh-keygen -Q)`, () => {
      assert.equal(revokedByKeygen(buildKrl({ ca, generatedAt, ...input }), certificate), revoked);
    });
  }

  it('does not revoke the same serial from another CA', () => {
    const other = generateCa();
    const foreign = mintUserCertificate({
      ca: other,
      principals: ['alice'],
      validAfter: new Date(),
      validBefore: new Date(Date.now() + 60_000),
      keyId: 'x',
      serial: 5n,
    });
    assert.equal(revokedByKeygen(buildKrl({ ca, generatedAt, serials: [5n] }), foreign.certificate), false);
  });

  it('ssh-keygen lists version, comment, CA and serials', () => {
    writeFileSync(
      join(dir, 'listed.krl'),
      buildKrl({ ca, generatedAt, serials: [3n, 4n, 9n], version: 12, comment: 'warden revocations' }),
    );
    const listing = execFileSync('ssh-keygen', ['-Q', '-l', '-f', join(dir, 'listed.krl')]).toString();
    assert.match(listing, /KRL version 12/);
    assert.match(listing, /warden revocations/);
    assert.match(listing, new RegExp(`CA key ssh-ed25519 ${ca.fingerprint.replace(/[+/]/g, '\\$&')}`));
    assert.match(listing, /serial: 3-4\nserial: 9/);
  });

  const bad: [string, Omit<BuildKrlInput, 'ca' | 'generatedAt'>][] = [
    ['nothing to revoke', {}],
    ['serial 0', { serials: [0n] }],
    ['a negative serial', { serials: [-3] }],
    ['a serial over 2^64-1', { serials: [2n ** 64n] }],
    ['an empty key id', { keyIds: [''] }],
    ['a key id with a newline', { keyIds: ['a\nb'] }],
    ['a certificate from another CA', { certificates: [mintFromOtherCa()] }],
    ['a version that is not an integer', { serials: [1n], version: 1.5 }],
  ];
  for (const [name, input] of bad) {
    it(`refuses ${name} (ERR_SSH_CA_KRL_INVALID)`, () =>
      assert.throws(
        () => buildKrl({ ca, generatedAt, ...input }),
        (e: unknown) => isSshCaError(e, 'ERR_SSH_CA_KRL_INVALID'),
      ));
  }
});

function mintFromOtherCa(): string {
  return mintUserCertificate({
    ca: generateCa(),
    principals: ['alice'],
    validAfter: new Date(),
    validBefore: new Date(Date.now() + 60_000),
    keyId: 'x',
    serial: 1n,
  }).certificate;
}
