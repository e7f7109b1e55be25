/**
 * SSH certificates signed by Vault's SSH secrets engine (`provider: vault` on an SSH target):
 * `<mount>/sign/<role>` signs the requester's public key (or a key pair Warden makes for them),
 * with the level's principals, options and extensions, valid for the grant's duration. As with
 * Warden's own CA ({@link SshCertificateProvider}), revocation leaves nothing on the target: the
 * SSH proxy ends live sessions, and direct logins stop at the certificate's expiry.
 */
import { formatKeyId, parseCertificate } from '../../../lib/ssh/certificate.ts';
import type { SshCa } from '../../../lib/ssh/keys.ts';
import { formatPublicKeyLine, generateSubjectKey } from '../../../lib/ssh/keys.ts';
import { createProxyToken } from '../../../lib/ssh/proxy-token.ts';
import type { SshTargetConfig } from '../../config/schema.ts';
import { Secret } from '../../config/secrets.ts';
import { ConfigError, ProviderError } from '../../errors.ts';
import type { AccessRequest } from '../../model.ts';
import type { VaultClient } from '../../vault/client.ts';
import { badResponse } from '../../vault/client.ts';
import type { MintResult, SelfTestStep } from '../provider.ts';
import { SshCredential } from '../ssh-ca/credential.ts';
import { SSH_PUBLIC_KEY_META, SshCertificateProvider } from '../ssh-ca/ssh-ca-provider.ts';
import { secondsUntil } from './lease.ts';
import { checkVaultReachable } from './self-test.ts';

/** Options of {@link VaultSshProvider}. */
export interface VaultSshProviderOptions {
  targetName: string;
  target: SshTargetConfig;
  vault: VaultClient;
  /** Warden's own CA, when configured (`ssh.ca_key`): it signs the SSH proxy's per-grant token. */
  proxyCa?: SshCa | undefined;
  clock?: () => number;
}

/** The signing role of a level: `levels.<name>.vault_role`, else `vault.role`. */
export function vaultSshRoleOf(target: SshTargetConfig, level: string): string | undefined {
  return target.levels[level]?.vault_role ?? target.vault?.role;
}

export class VaultSshProvider extends SshCertificateProvider {
  readonly name = 'vault';
  readonly #options: VaultSshProviderOptions;

  constructor(options: VaultSshProviderOptions) {
    super();
    this.#options = options;
  }

  get #mount(): string {
    return this.#options.target.vault?.mount ?? 'ssh';
  }

  async mint(grant: AccessRequest, expiresAt: number): Promise<MintResult> {
    const { target, targetName, vault } = this.#options;
    const level = target.levels[grant.level];
    const role = vaultSshRoleOf(target, grant.level);
    if (!level || !role)
      throw new ProviderError(`target ${targetName} has no level ${grant.level} with a Vault role`);
    const given = grant.meta[SSH_PUBLIC_KEY_META];
    const generated =
      typeof given === 'string' ? undefined : generateSubjectKey(formatKeyId(grant.id, grant.requester));
    const publicKey =
      typeof given === 'string'
        ? given
        : formatPublicKeyLine(generated!.publicKey.blob, generated!.publicKey.comment);
    const path = `${this.#mount}/sign/${role}`;
    const what = `signing the SSH key at ${path}`;
    const extensions: Record<string, string> = {};
    if (level.permit_pty) extensions['permit-pty'] = '';
    if (level.permit_agent_forwarding) extensions['permit-agent-forwarding'] = '';
    if (level.permit_port_forwarding) extensions['permit-port-forwarding'] = '';
    if (level.permit_x11_forwarding) extensions['permit-X11-forwarding'] = '';
    const critical: Record<string, string> = {};
    if (level.force_command) critical['force-command'] = level.force_command;
    if (level.source_address) critical['source-address'] = level.source_address.join(',');
    const answer = await vault.write(
      path,
      {
        public_key: publicKey,
        valid_principals: level.principals.join(','),
        ttl: `${secondsUntil(expiresAt, (this.#options.clock ?? Date.now)())}s`,
        cert_type: 'user',
        key_id: formatKeyId(grant.id, grant.requester),
        extensions,
        ...(Object.keys(critical).length ? { critical_options: critical } : {}),
      },
      what,
    );
    const data = answer.data as { signed_key?: unknown; serial_number?: unknown } | null | undefined;
    const certificate = typeof data?.signed_key === 'string' ? data.signed_key.trim() : '';
    let parsed: ReturnType<typeof parseCertificate>;
    try {
      parsed = parseCertificate(certificate);
    } catch {
      throw badResponse(vault.address, what, 'without a readable certificate in data.signed_key');
    }
    const missing = level.principals.filter((p) => !parsed.principals.includes(p));
    if (missing.length) {
      throw new ProviderError(
        `Vault signed a certificate at ${path} without the principals ${missing.join(', ')}: check the role's allowed_users`,
      );
    }
    const proxyCa = this.#options.proxyCa;
    return {
      handle: `serial:${parsed.serial}`,
      credential: new SshCredential({
        host: target.host,
        port: target.port,
        principals: [...level.principals],
        certificate,
        ...(generated ? { privateKey: new Secret(generated.privateKey) } : {}),
        ...(proxyCa ? { password: new Secret(createProxyToken(proxyCa, grant.id)) } : {}),
        keyId: parsed.keyId,
        serial: String(parsed.serial),
        expiresAt,
      }),
    };
  }

  override async check(): Promise<void> {
    await this.#options.vault.login();
  }

  /** Reachability, seal, login, `update` on each signing path, and each role's existence. */
  async selfTest(): Promise<SelfTestStep[]> {
    const { target, targetName, vault } = this.#options;
    const roles = [...new Set(Object.keys(target.levels).map((l) => vaultSshRoleOf(target, l)!))];
    const steps = await checkVaultReachable(
      vault,
      targetName,
      roles.map((r) => ({ path: `${this.#mount}/sign/${r}`, needs: ['update', 'create'] })),
    );
    if (steps.some((s) => !s.ok)) return steps;
    for (const role of roles) {
      const path = `${this.#mount}/roles/${role}`;
      try {
        await vault.read(path, `reading the Vault SSH role ${path}`);
        steps.push({ step: `Vault SSH role ${role}`, ok: true, detail: `${path} exists` });
      } catch (error) {
        steps.push({
          step: `Vault SSH role ${role}`,
          ok: false,
          detail: (error as Error).message,
          fix: `create it: vault write ${path} key_type=ca allow_user_certificates=true allowed_users=...`,
        });
      }
    }
    return steps;
  }

  override async close(): Promise<void> {
    this.#options.vault.close();
  }
}

/** `ConfigError` when a level of a `provider: vault` SSH target has no signing role. */
export function validateVaultSshTarget(target: SshTargetConfig, path: string): void {
  for (const name of Object.keys(target.levels)) {
    if (!vaultSshRoleOf(target, name)) {
      throw new ConfigError(
        `${path}.levels.${name}.vault_role`,
        'name the Vault SSH role that signs this level (or vault.role for every level)',
      );
    }
  }
}
