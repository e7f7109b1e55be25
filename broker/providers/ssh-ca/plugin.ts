/** The SSH certificate authority provider as a plugin: one CA (`ssh.ca_key`) signs for every SSH target. */
import { loadCa, type SshCa } from '../../../lib/ssh/keys.ts';
import type { Config } from '../../config/load.ts';
import type { SshTargetConfig } from '../../config/schema.ts';
import type { Secret, SecretRef } from '../../config/secrets.ts';
import { ConfigError } from '../../errors.ts';
import type { ProviderPlugin } from '../plugin.ts';
import { SshCaProvider } from './ssh-ca-provider.ts';

/** The reference of the CA key (`ssh.ca_key`); fails naming the path when there is no `ssh` section. */
export function sshCaKeyRef(config: Config): SecretRef {
  if (!config.ssh) throw new ConfigError('ssh', 'SSH targets need an ssh section with ca_key');
  return config.ssh.ca_key;
}

/** Reads the CA from its key's text; fails naming `ssh.ca_key` when unusable. */
export function parseSshCa(text: Secret): SshCa {
  try {
    return loadCa(text.reveal());
  } catch (error) {
    throw new ConfigError('ssh.ca_key', (error as Error).message);
  }
}

/** Loads the SSH CA named by `ssh.ca_key`; fails with the config path when missing or unusable. */
export async function loadConfiguredSshCa(
  config: Config,
  resolveSecret: (ref: SecretRef, path: string) => Promise<Secret>,
): Promise<SshCa> {
  return parseSshCa(await resolveSecret(sshCaKeyRef(config), 'ssh.ca_key'));
}

export const sshCaPlugin: ProviderPlugin<SshTargetConfig> = {
  name: 'ssh-ca',
  targetKinds: ['ssh'],
  validate() {},
  async create({ targetName, target, config, resolveSecret, once }) {
    const ca = await once('ssh-ca', () => loadConfiguredSshCa(config, resolveSecret));
    return new SshCaProvider({ targetName, target, ca });
  },
};
