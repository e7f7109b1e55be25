/**
 * Warden's Vault client (`node-vault` underneath) against the Vault stand-in: the three logins,
 * the token renewed before it expires, and every failure a clear `ERR_VAULT_*` naming what to fix.
 * No Vault server is used.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { VaultConfig } from '../../../broker/config/schema.ts';
import { Secret, type SecretRef } from '../../../broker/config/secrets.ts';
import { VaultClient } from '../../../broker/vault/client.ts';
import { createSelfSignedCertificate } from '../../../cli/demo/tls.ts';
import { startVaultStandin, type VaultStandin } from '../../helpers/vault-standin.ts';

function clientFor(
  vault: VaultStandin,
  auth: VaultConfig['auth'],
  secrets: Record<string, string>,
  options: { readJwt?: (file: string) => Promise<string>; address?: string; ca?: { env: string } } = {},
): VaultClient {
  return new VaultClient({
    settings: {
      address: options.address ?? vault.address,
      auth,
      timeout: 2000,
      ...(options.ca ? { ca: options.ca } : {}),
    },
    resolveSecret: async (ref: SecretRef) => {
      const name = 'env' in ref ? ref.env : '';
      const value = secrets[name];
      if (value === undefined) throw new Error(`no ${name}`);
      return new Secret(value);
    },
    ...(options.readJwt ? { readJwt: options.readJwt } : {}),
  });
}

describe('Vault client', () => {
  let vault: VaultStandin;

  before(async () => {
    vault = await startVaultStandin();
    vault.kvPut('warden', { value: 'v1' });
    vault.addPolicy('reader', { 'kv/data/*': ['read'] });
  });
  after(async () => {
    await vault?.close();
  });

  it('logs in with a token', async () => {
    const token = vault.addToken(['reader']);
    const client = clientFor(vault, { method: 'token', token: { env: 'T' } }, { T: token });
    try {
      const answer = await client.read('kv/data/warden');
      assert.deepEqual((answer.data as { data: unknown }).data, { value: 'v1' });
    } finally {
      client.close();
    }
  });

  it('logs in with AppRole and renews the token before it expires', async () => {
    const { roleId, secretId } = vault.addAppRole('warden', { policies: ['reader'], tokenTtl: 2 });
    const client = clientFor(
      vault,
      { method: 'approle', role_id: { env: 'R' }, secret_id: { env: 'S' }, mount: 'approle' },
      { R: roleId, S: secretId },
    );
    try {
      const logins = vault.count(/^auth\/approle\/login$/);
      await client.read('kv/data/warden');
      await new Promise((r) => setTimeout(r, 3500));
      // Past the first TTL: the token was renewed in time, not replaced by a second login.
      await client.read('kv/data/warden');
      assert.equal(vault.count(/^auth\/approle\/login$/), logins + 1);
      assert.ok(vault.count(/^auth\/token\/renew-self$/) >= 2);
    } finally {
      client.close();
    }
  });

  it('a wrong AppRole secret is refused naming the login', async () => {
    const { roleId } = vault.addAppRole('other', { policies: ['reader'] });
    const client = clientFor(
      vault,
      { method: 'approle', role_id: { env: 'R' }, secret_id: { env: 'S' }, mount: 'approle' },
      { R: roleId, S: 'wrong' },
    );
    await assert.rejects(client.read('kv/data/warden'), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'ERR_VAULT_REFUSED');
      assert.match(
        error.message,
        /logging in to Vault \(approle, auth\/approle\/login\) failed, .* answered 400: invalid role or secret ID/,
      );
      assert.doesNotMatch(error.message, /wrong/);
      return true;
    });
  });

  it("logs in with Kubernetes auth (the pod's service-account JWT); a wrong JWT is permission denied", async () => {
    vault.addKubernetesRole('warden', { jwt: 'eyJ.good.jwt', policies: ['reader'] });
    const good = clientFor(
      vault,
      { method: 'kubernetes', role: 'warden', jwt_file: '/sa/token', mount: 'kubernetes' },
      {},
      { readJwt: async (file) => (file === '/sa/token' ? 'eyJ.good.jwt\n' : '') },
    );
    const bad = clientFor(
      vault,
      { method: 'kubernetes', role: 'warden', jwt_file: '/sa/token', mount: 'kubernetes' },
      {},
      { readJwt: async () => 'eyJ.bad.jwt' },
    );
    const missing = clientFor(
      vault,
      { method: 'kubernetes', role: 'warden', jwt_file: '/nowhere/token', mount: 'kubernetes' },
      {},
    );
    try {
      await good.read('kv/data/warden');
      await assert.rejects(bad.read('kv/data/warden'), { code: 'ERR_VAULT_DENIED' });
      await assert.rejects(
        missing.read('kv/data/warden'),
        /cannot read the service-account token \/nowhere\/token \(ENOENT\): set vault.auth.jwt_file/,
      );
    } finally {
      good.close();
      bad.close();
      missing.close();
    }
  });

  it('sealed (503), permission denied (403), not found (404) and unreachable each say what to fix', async () => {
    const token = vault.addToken(['reader']);
    const client = clientFor(vault, { method: 'token', token: { env: 'T' } }, { T: token });
    try {
      await assert.rejects(client.read('database/creds/none'), (error: Error & { code?: string }) => {
        assert.equal(error.code, 'ERR_VAULT_DENIED');
        assert.match(
          error.message,
          /answered 403: permission denied; permission denied: the token's policy must allow this on database\/creds\/none/,
        );
        return true;
      });
      await assert.rejects(client.read('kv/data/absent'), {
        code: 'ERR_VAULT_NOT_FOUND',
        message: /kv\/data\/absent does not exist: check the mount path and the role or secret name/,
      });
      vault.sealed = true;
      await assert.rejects(client.read('kv/data/warden'), {
        code: 'ERR_VAULT_SEALED',
        message: /answered 503: Vault is sealed; Vault is sealed or in standby: unseal it/,
      });
      assert.deepEqual((await client.sealStatus()).sealed, true);
    } finally {
      vault.sealed = false;
      client.close();
    }
    const nowhere = clientFor(
      vault,
      { method: 'token', token: { env: 'T' } },
      { T: token },
      { address: 'http://127.0.0.1:1' },
    );
    await assert.rejects(nowhere.read('kv/data/warden'), {
      code: 'ERR_VAULT_UNREACHABLE',
      message: /Vault at http:\/\/127\.0\.0\.1:1 is unreachable \(ECONNREFUSED\); check vault.address/,
    });
    nowhere.close();
  });

  it('malformed answers are ERR_VAULT_BAD_RESPONSE, never a crash', async () => {
    const token = vault.addToken(['reader']);
    const client = clientFor(vault, { method: 'token', token: { env: 'T' } }, { T: token });
    try {
      await client.login();
      for (const mode of ['not-json', 'truncated'] as const) {
        vault.misbehave(/^kv\/data\/warden$/, mode);
        await assert.rejects(client.read('kv/data/warden'), { code: 'ERR_VAULT_BAD_RESPONSE' }, mode);
      }
      vault.misbehave(/^sys\/leases\/lookup\//, 'wrong-shape');
      await assert.rejects(client.list('sys/leases/lookup/database/creds/x/'), {
        code: 'ERR_VAULT_BAD_RESPONSE',
        message: /without data.keys/,
      });
      vault.misbehave(/^sys\/seal-status$/, 'wrong-shape');
      await assert.rejects(client.sealStatus(), { code: 'ERR_VAULT_BAD_RESPONSE' });
      vault.misbehave(/^kv\/data\/warden$/, 'hang');
      await assert.rejects(client.read('kv/data/warden'), {
        code: 'ERR_VAULT_UNREACHABLE',
        message: /ECONNABORTED/,
      });
    } finally {
      client.close();
    }
  });

  it('lists with GET ?list=1, which the stand-in (a Node HTTP server, like some proxies) accepts and LIST it would not', async () => {
    const client = clientFor(vault, { method: 'token', token: { env: 'T' } }, { T: vault.rootToken });
    try {
      assert.deepEqual(await client.list('sys/leases/lookup/nothing/'), []);
      const raw = await fetch(`${vault.address}/v1/sys/leases/lookup/nothing/`, {
        method: 'LIST',
        headers: { 'x-vault-token': vault.rootToken },
      }).catch((error: Error) => error);
      assert.ok(raw instanceof Error || raw.status >= 400, 'LIST is not served');
    } finally {
      client.close();
    }
  });
});

describe('Vault over TLS (vault.ca)', () => {
  let vault: VaultStandin;
  let dir: string;
  let ca: string;
  let otherCa: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-vault-tls-'));
    mkdirSync(join(dir, 'other'));
    const files = createSelfSignedCertificate(dir);
    const other = createSelfSignedCertificate(join(dir, 'other'));
    if (!files || !other) throw new Error('openssl is needed to make a test certificate');
    ca = readFileSync(files.cert, 'utf8');
    otherCa = readFileSync(other.cert, 'utf8');
    vault = await startVaultStandin({ tls: { cert: ca, key: readFileSync(files.key, 'utf8') } });
    vault.kvPut('warden', { value: 'over-tls' });
  });
  after(async () => {
    await vault?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('reads over HTTPS when vault.ca is the certificate Vault presents', async () => {
    assert.match(vault.address, /^https:/);
    const client = clientFor(
      vault,
      { method: 'token', token: { env: 'T' } },
      { T: vault.rootToken, CA: ca },
      { ca: { env: 'CA' } },
    );
    try {
      const answer = await client.read('kv/data/warden');
      assert.deepEqual((answer.data as { data: unknown }).data, { value: 'over-tls' });
    } finally {
      client.close();
    }
  });

  for (const [label, caSecret] of [
    ['without vault.ca (a self-signed certificate)', undefined],
    ['with vault.ca of another authority', 'other'],
  ] as const) {
    it(`refuses a certificate it cannot verify, ${label}: ERR_VAULT_UNREACHABLE naming vault.ca, no token sent`, async () => {
      const before = vault.count(/./);
      const client = clientFor(
        vault,
        { method: 'token', token: { env: 'T' } },
        { T: vault.rootToken, CA: otherCa },
        caSecret ? { ca: { env: 'CA' } } : {},
      );
      try {
        await assert.rejects(client.read('kv/data/warden'), (error: Error & { code?: string }) => {
          assert.equal(error.code, 'ERR_VAULT_UNREACHABLE');
          assert.match(error.message, /presented a TLS certificate Warden does not trust .*set vault\.ca/);
          assert.ok(!error.message.includes(vault.rootToken));
          return true;
        });
        assert.equal(vault.count(/./), before, 'no request got past the handshake');
      } finally {
        client.close();
      }
    });
  }
});
