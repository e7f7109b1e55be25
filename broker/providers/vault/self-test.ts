/**
 * The Vault half of `warden doctor` for a `provider: vault` target: Vault answers, is unsealed,
 * Warden logs in, and the token holds the capabilities every path the target uses needs
 * (`sys/capabilities-self`). Each failing step says what to fix.
 */
import type { VaultClient } from '../../vault/client.ts';
import type { SelfTestStep } from '../provider.ts';

/** A path the target uses and the capabilities it needs there (any one of `needs`). */
export interface VaultPathNeed {
  path: string;
  needs: readonly string[];
}

/** Reachability, seal status, login and capabilities; stops at the first step that fails. */
export async function checkVaultReachable(
  vault: VaultClient,
  targetName: string,
  paths: readonly VaultPathNeed[],
): Promise<SelfTestStep[]> {
  const steps: SelfTestStep[] = [];
  const failed = (step: string, error: unknown, fix: string): SelfTestStep[] => {
    steps.push({ step, ok: false, detail: (error as Error).message, fix });
    return steps;
  };
  try {
    const status = await vault.sealStatus();
    if (status.sealed) {
      return failed(
        'Vault seal',
        new Error(`Vault at ${vault.address} is sealed`),
        'unseal it (vault operator unseal)',
      );
    }
    steps.push({
      step: 'Vault reachable',
      ok: true,
      detail: `${vault.address} answers, unsealed (version ${status.version})`,
    });
  } catch (error) {
    return failed(
      'Vault reachable',
      error,
      'check vault.address, the network to Vault, and vault.ca for its TLS certificate',
    );
  }
  try {
    await vault.login();
    steps.push({ step: 'Vault login', ok: true, detail: `logged in (${vault.method})` });
  } catch (error) {
    return failed(
      'Vault login',
      error,
      `check vault.auth (${vault.method}): the secrets it names and the Vault role`,
    );
  }
  let capabilities: Map<string, string[]>;
  try {
    capabilities = await vault.capabilities(paths.map((p) => p.path));
  } catch (error) {
    return failed(
      'Vault token capabilities',
      error,
      'the token needs the default policy (sys/capabilities-self)',
    );
  }
  const lacking = paths.filter(({ path, needs }) => {
    const held = capabilities.get(path) ?? [];
    return !held.includes('root') && !needs.some((n) => held.includes(n));
  });
  if (lacking.length > 0) {
    steps.push({
      step: 'Vault token capabilities',
      ok: false,
      detail: `for target ${targetName} the token lacks ${lacking.map((l) => `${l.needs.join(' or ')} on ${l.path} (has ${(capabilities.get(l.path) ?? []).join(', ') || 'nothing'})`).join('; ')}`,
      fix: `add to the token's policy: ${lacking.map((l) => `path "${l.path}" { capabilities = [${l.needs.map((n) => `"${n}"`).join(', ')}] }`).join(' ')}`,
    });
    return steps;
  }
  steps.push({
    step: 'Vault token capabilities',
    ok: true,
    detail: `the token may use all ${paths.length} paths of ${targetName}`,
  });
  return steps;
}
