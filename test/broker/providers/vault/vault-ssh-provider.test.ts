/**
 * The vault provider on an SSH target: the Vault stand-in's SSH engine signs the key (with a real
 * Ed25519 CA), and a real sshd that trusts that CA accepts the certificate. No Vault server is used.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { parseConfig } from '../../../../broker/config/load.ts';
import type { AccessRequest } from '../../../../broker/model.ts';
import type { CredentialProvider } from '../../../../broker/providers/provider.ts';
import { createProviders } from '../../../../broker/providers/registry.ts';
import { SshCredential } from '../../../../broker/providers/ssh-ca/credential.ts';
import { parseCertificate } from '../../../../lib/ssh/certificate.ts';
import { ensureTestUser, runSsh, type Sshd, startSshd, TEST_USER } from '../../../helpers/sshd.ts';
import { startVaultStandin, type VaultStandin } from '../../../helpers/vault-standin.ts';

const grant = (id: string, meta: Record<string, unknown> = {}) =>
  ({ id, requester: 'alice', level: 'shell', target: 'web', meta }) as unknown as AccessRequest;

async function writeSshRole(vault: VaultStandin, name: string, allowedUsers: string): Promise<void> {
  const response = await fetch(`${vault.address}/v1/ssh/roles/${name}`, {
    method: 'POST',
    headers: { 'x-vault-token': vault.rootToken, 'content-type': 'application/json' },
    body: JSON.stringify({
      key_type: 'ca',
      allow_user_certificates: true,
      allowed_users: allowedUsers,
      allowed_extensions: 'permit-pty',
      max_ttl: '1h',
    }),
  });
  assert.equal(response.status, 204);
}

describe('vault provider: SSH certificates from the SSH secrets engine', () => {
  let vault: VaultStandin;
  let sshd: Sshd;
  let provider: CredentialProvider;

  before(async () => {
    ensureTestUser();
    vault = await startVaultStandin();
    sshd = await startSshd({ trustedUserCaKeys: [vault.caPublicKey] });
    await writeSshRole(vault, 'warden-shell', TEST_USER);
    await writeSshRole(vault, 'someone-else', 'deploy');
    const config = parseConfig(
      {
        targets: {
          web: {
            kind: 'ssh',
            provider: 'vault',
            host: '127.0.0.1',
            port: sshd.port,
            vault: { role: 'warden-shell' },
            levels: {
              shell: { principals: [TEST_USER] },
              other: { principals: [TEST_USER], vault_role: 'someone-else' },
            },
          },
        },
        vault: { address: vault.address, auth: { method: 'token', token: { env: 'VT' } } },
      },
      'test',
    );
    provider = (await createProviders(config, { env: { VT: vault.rootToken } })).get('web')!;
  });
  after(async () => {
    await provider?.close();
    await sshd?.stop();
    await vault?.close();
  });

  it('a certificate Vault signed logs in to a real sshd that trusts the Vault CA', async () => {
    const expiresAt = Date.now() + 10 * 60_000;
    const { credential, handle } = await provider.mint(grant('g-vault-ssh'), expiresAt);
    assert.ok(credential instanceof SshCredential);
    assert.ok(credential.privateKey, 'Warden made the key pair');
    assert.equal(credential.password, undefined, 'no proxy token without Warden CA');
    const cert = parseCertificate(credential.certificate);
    assert.deepEqual(cert.principals, [TEST_USER]);
    assert.equal(cert.keyId, credential.keyId);
    assert.match(cert.keyId, /g-vault-ssh/);
    assert.ok(Math.abs(Number(cert.validBefore) * 1000 - expiresAt) < 2000, 'valid until the grant ends');
    assert.equal(handle, `serial:${cert.serial}`);
    const mark = sshd.logs().length;
    const result = await runSsh({
      port: sshd.port,
      privateKey: credential.privateKey.reveal(),
      certificate: credential.certificate,
      command: 'id -un',
    });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout.trim(), TEST_USER);
    await sshd.waitForLog(/Accepted publickey/, mark);
  });

  it("signs the requester's own key when the request carries one", async () => {
    const first = await provider.mint(grant('g-own-key'), Date.now() + 60_000);
    const own = (first.credential as SshCredential).certificate;
    // Re-sign the public half of the key Warden made above, as if the requester had sent it.
    const subject = parseCertificate(own);
    const publicKey = `ssh-ed25519 ${subject.publicKeyBlob.toString('base64')}`;
    const { credential } = await provider.mint(
      grant('g-own-key-2', { ssh_public_key: publicKey }),
      Date.now() + 60_000,
    );
    assert.ok(credential instanceof SshCredential);
    assert.equal(credential.privateKey, undefined);
    assert.deepEqual(parseCertificate(credential.certificate).publicKeyBlob, subject.publicKeyBlob);
  });

  it("a principal outside the Vault role's allowed_users is refused with Vault's reason", async () => {
    await assert.rejects(provider.mint({ ...grant('g-refused'), level: 'other' }, Date.now() + 60_000), {
      code: 'ERR_VAULT_REFUSED',
      message: new RegExp(
        `signing the SSH key at ssh/sign/someone-else failed, .*answered 400: ${TEST_USER} is not a valid value for valid_principals`,
      ),
    });
  });

  it('doctor: reachable, logged in, may sign on both roles, both roles exist', async () => {
    const steps = await provider.selfTest!();
    assert.deepEqual(
      steps.map((s) => [s.step, s.ok]),
      [
        ['Vault reachable', true],
        ['Vault login', true],
        ['Vault token capabilities', true],
        ['Vault SSH role warden-shell', true],
        ['Vault SSH role someone-else', true],
      ],
    );
  });
});
