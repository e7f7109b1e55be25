import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  type MintedUserCertificate,
  type MintUserCertificateInput,
  mintUserCertificate,
  verifyUserCertificate,
} from '../../../lib/ssh/certificate.ts';
import { isSshCaError, type SshCaErrorCode } from '../../../lib/ssh/errors.ts';
import { formatCaPublicKeyLine, generateCa } from '../../../lib/ssh/keys.ts';
import { buildKrl } from '../../../lib/ssh/krl.ts';
import { runSsh, type Sshd, startSshd, TEST_USER } from '../../helpers/sshd.ts';

const ca = generateCa('warden-test-ca');
const foreignCa = generateCa('someone-elses-ca');
const REVOKED_SERIAL = 666n;
const REVOKED_KEY_ID = 'warden:grant=revoked-by-id:user=eve@example.com';

function mint(overrides: Partial<MintUserCertificateInput> = {}) {
  const now = Date.now();
  return mintUserCertificate({
    ca,
    principals: [TEST_USER],
    validAfter: new Date(now),
    validBefore: new Date(now + 10 * 60_000),
    keyId: 'warden:grant=g-100:user=alice@example.com',
    serial: 100n,
    extensions: { permitPty: true },
    ...overrides,
  });
}

function tamper(certificate: string): string {
  const [type, body, ...rest] = certificate.split(' ');
  const blob = Buffer.from(body!, 'base64');
  blob[blob.length - 1]! ^= 0x01;
  return [type, blob.toString('base64'), ...rest].join(' ');
}

function assertVerifierRefuses(certificate: string, code: SshCaErrorCode, principal = TEST_USER): void {
  assert.throws(
    () =>
      verifyUserCertificate(certificate, {
        caPublicKeys: [formatCaPublicKeyLine(ca)],
        principal,
        now: new Date(),
      }),
    (e: unknown) => isSshCaError(e, code),
  );
}

describe('certificates against a real sshd', () => {
  let sshd: Sshd;
  before(async () => {
    sshd = await startSshd({
      trustedUserCaKeys: [formatCaPublicKeyLine(ca)],
      revokedKeys: buildKrl({
        ca,
        serials: [REVOKED_SERIAL],
        keyIds: [REVOKED_KEY_ID],
        generatedAt: new Date(),
      }),
    });
  });
  after(async () => {
    await sshd?.stop();
  });

  it('a minted certificate logs in, runs a command, and sshd logs its key id and serial', async () => {
    const cert = mint({ keyId: 'warden:grant=g-login:user=alice@example.com', serial: 4411n });
    const mark = sshd.logs().length;
    const result = await runSsh({
      port: sshd.port,
      privateKey: cert.privateKey!,
      certificate: cert.certificate,
      command: 'id -un',
    });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout.trim(), TEST_USER);
    await sshd.waitForLog(
      /Accepted certificate ID "warden:grant=g-login:user=alice@example\.com" \(serial 4411\)/,
      mark,
    );
    assert.match(sshd.logs(), new RegExp(`Accepted publickey for ${TEST_USER} .*ID warden:grant=g-login`));
  });

  it('force-command from the certificate replaces the requested command', async () => {
    const cert = mint({
      serial: 101n,
      criticalOptions: { forceCommand: 'echo forced', sourceAddress: ['127.0.0.1/32'] },
    });
    const result = await runSsh({
      port: sshd.port,
      privateKey: cert.privateKey!,
      certificate: cert.certificate,
      command: 'echo asked',
    });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout.trim(), 'forced');
  });

  it('source-address that excludes the client is refused', async () => {
    const cert = mint({ serial: 102n, criticalOptions: { sourceAddress: ['10.9.8.7/32'] } });
    const mark = sshd.logs().length;
    const result = await runSsh({
      port: sshd.port,
      privateKey: cert.privateKey!,
      certificate: cert.certificate,
      command: 'true',
    });
    assert.equal(result.code, 255);
    await sshd.waitForLog(/not from a permitted source address/, mark);
  });

  const refusals: { name: string; cert: () => MintedUserCertificate; code: SshCaErrorCode; log: RegExp }[] = [
    {
      name: 'a certificate from a foreign CA',
      cert: () => mint({ ca: foreignCa, serial: 200n }),
      code: 'ERR_SSH_CA_CERT_FOREIGN_CA',
      // sshd logs why only at DEBUG2; at VERBOSE it logs the failed attempt.
      log: /Failed publickey for warden-test .*ED25519-CERT/,
    },
    {
      name: 'a certificate for another principal',
      cert: () => mint({ principals: ['somebody-else'], serial: 201n }),
      code: 'ERR_SSH_CA_CERT_WRONG_PRINCIPAL',
      log: /not in principal list|name is not a listed principal/,
    },
    {
      name: 'a certificate with a tampered signature',
      cert: () => {
        const minted = mint({ serial: 202n });
        return { ...minted, certificate: tamper(minted.certificate) };
      },
      code: 'ERR_SSH_CA_CERT_SIGNATURE',
      // The client itself finds the signature broken and offers the bare key, which is not authorized.
      log: /Failed publickey for warden-test from \S+ port \d+ ssh2: ED25519 SHA256/,
    },
  ];
  for (const { name, cert, code, log } of refusals) {
    it(`refuses ${name}, in sshd and in the verifier (${code})`, async () => {
      const { certificate, privateKey } = cert();
      assertVerifierRefuses(certificate, code);
      const mark = sshd.logs().length;
      const result = await runSsh({ port: sshd.port, privateKey: privateKey!, certificate, command: 'true' });
      assert.equal(result.code, 255, `sshd accepted ${name}`);
      await sshd.waitForLog(log, mark);
    });
  }

  it('refuses certificates revoked by the KRL (serial and key id)', async () => {
    const mark = sshd.logs().length;
    for (const cert of [mint({ serial: REVOKED_SERIAL }), mint({ serial: 300n, keyId: REVOKED_KEY_ID })]) {
      const result = await runSsh({
        port: sshd.port,
        privateKey: cert.privateKey!,
        certificate: cert.certificate,
        command: 'true',
      });
      assert.equal(result.code, 255, 'sshd accepted a revoked certificate');
    }
    await sshd.waitForLog(/Authentication key ED25519-CERT SHA256:\S+ revoked by file/, mark);
  });

  it('refuses a certificate once its validity has ended', async () => {
    const end = new Date(Math.ceil((Date.now() + 3_000) / 1000) * 1000);
    const cert = mint({ serial: 400n, validAfter: new Date(), validBefore: end });
    const first = await runSsh({
      port: sshd.port,
      privateKey: cert.privateKey!,
      certificate: cert.certificate,
      command: 'true',
    });
    assert.equal(first.code, 0, first.stderr);
    await new Promise((resolve) => setTimeout(resolve, end.getTime() - Date.now() + 1_100));
    const mark = sshd.logs().length;
    const second = await runSsh({
      port: sshd.port,
      privateKey: cert.privateKey!,
      certificate: cert.certificate,
      command: 'true',
    });
    assert.equal(second.code, 255, 'sshd accepted an expired certificate');
    assertVerifierRefuses(cert.certificate, 'ERR_SSH_CA_CERT_EXPIRED');
    await sshd.waitForLog(/Certificate invalid: expired/, mark);
  });
});
