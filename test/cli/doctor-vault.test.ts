/**
 * `warden doctor` with Vault, against the Vault stand-in: reachability, the seal, the token's
 * capabilities on every path the configuration uses, each secret field, and each Vault role.
 * No Vault server is used.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Config, parseConfig } from '../../broker/config/load.ts';
import { type DoctorCheck, runDoctorChecks } from '../../cli/commands/doctor.ts';
import { startVaultStandin, type VaultStandin } from '../helpers/vault-standin.ts';

describe('warden doctor with Vault', () => {
  let vault: VaultStandin;
  let dir: string;

  before(async () => {
    vault = await startVaultStandin();
    dir = mkdtempSync(join(tmpdir(), 'warden-doctor-vault-'));
    vault.kvPut('warden', { api_token: 'a-long-random-token-from-vault-0123456789' });
    vault.addPolicy('warden', {
      'kv/data/warden': ['read'],
      'ssh/sign/*': ['update'],
      'ssh/roles/*': ['read'],
    });
    await fetch(`${vault.address}/v1/ssh/roles/shell`, {
      method: 'POST',
      headers: { 'x-vault-token': vault.rootToken, 'content-type': 'application/json' },
      body: JSON.stringify({ key_type: 'ca', allow_user_certificates: true, allowed_users: 'deploy' }),
    });
  });
  after(async () => {
    await vault?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const configOf = (tokenRef: string, sshRole: string): Config =>
    parseConfig(
      {
        broker: {
          store: { kind: 'embedded', path: join(dir, 'w.db') },
          tokens: [{ name: 'ops', role: 'admin', secret: { vault: tokenRef } }],
        },
        targets: {
          web: {
            kind: 'ssh',
            provider: 'vault',
            host: '127.0.0.1',
            port: 1,
            vault: { role: sshRole },
            levels: { shell: { principals: ['deploy'] } },
          },
        },
        vault: { address: vault.address, auth: { method: 'token', token: { env: 'VT' } }, timeout: '2s' },
      },
      'test',
    );
  const byName = (checks: DoctorCheck[]) => new Map(checks.map((c) => [c.name, c]));

  it('all good: reachable, unsealed, capabilities held, the field there, the SSH role there', async () => {
    const token = vault.addToken(['warden']);
    const checks = byName(
      await runDoctorChecks(configOf('kv/data/warden#api_token', 'shell'), { VT: token }),
    );
    for (const name of [
      'vault: Vault reachable',
      'vault: Vault login',
      'vault: Vault token capabilities',
      'vault secret broker.tokens[0].secret',
      'target web: Vault token capabilities',
      'target web: Vault SSH role shell',
    ]) {
      assert.equal(checks.get(name)?.ok, true, `${name}: ${checks.get(name)?.detail}`);
    }
  });

  it('names what to fix: a missing field, a missing role, a capability the token lacks, a sealed Vault', async () => {
    const token = vault.addToken(['warden']);
    let checks = byName(await runDoctorChecks(configOf('kv/data/warden#nope', 'absent'), { VT: token }));
    const field = checks.get('vault secret broker.tokens[0].secret')!;
    assert.equal(field.ok, false);
    assert.equal(field.configuration, true);
    assert.match(field.detail, /has no field "nope"/);
    assert.match(field.fix ?? '', /vault kv patch kv\/warden nope=/);
    const role = checks.get('target web: Vault SSH role absent')!;
    assert.equal(role.ok, false);
    assert.match(role.fix ?? '', /vault write ssh\/roles\/absent key_type=ca/);

    checks = byName(await runDoctorChecks(configOf('kv/data/other#x', 'shell'), { VT: token }));
    const caps = checks.get('vault: Vault token capabilities')!;
    assert.equal(caps.ok, false);
    assert.match(caps.detail, /lacks read on kv\/data\/other \(has deny\)/);
    assert.match(caps.fix ?? '', /path "kv\/data\/other" \{ capabilities = \["read"\] \}/);

    vault.sealed = true;
    try {
      checks = byName(await runDoctorChecks(configOf('kv/data/warden#api_token', 'shell'), { VT: token }));
      assert.equal(checks.get('vault: Vault seal')?.ok, false);
      assert.match(checks.get('vault: Vault seal')?.fix ?? '', /vault operator unseal/);
      assert.equal(checks.get('target web: Vault seal')?.ok, false);
    } finally {
      vault.sealed = false;
    }
  });
});
