/**
 * Host key pinning of SSH targets: the proxy only talks to an upstream that proves it holds a key
 * the configuration names (`host_key`, an OpenSSH public key line, or the target's entries in a
 * `known_hosts` file). Pure apart from the injected file reader.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { SshProxyTargetConfig } from './config.ts';
import { SshProxyConfigError } from './errors.ts';

const KEY_TYPE =
  /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com)$/;

/** What the proxy accepts from one target: pinned key blobs, or anything (insecure). */
export type HostKeyPolicy = { kind: 'pinned'; keys: readonly Buffer[] } | { kind: 'insecure' };

/** Decodes the key blob of an OpenSSH public key line (`<type> <base64> [comment]`), or `undefined`. */
export function parsePublicKeyBlob(line: string): Buffer | undefined {
  const [type, data] = line.trim().split(/\s+/);
  if (!type || !data || !KEY_TYPE.test(type) || !/^[A-Za-z0-9+/]+={0,2}$/.test(data)) return undefined;
  const blob = Buffer.from(data, 'base64');
  // The blob starts with its own type name: a line whose two disagree is not a key.
  if (blob.length < 4 + type.length) return undefined;
  const length = blob.readUInt32BE(0);
  return length === type.length && blob.subarray(4, 4 + length).toString('latin1') === type
    ? blob
    : undefined;
}

/** Whether a known_hosts host pattern field (comma-separated, maybe hashed) names `host`/`port`. */
function matchesHost(field: string, host: string, port: number): boolean {
  const name = port === 22 ? host : `[${host}]:${port}`;
  if (field.startsWith('|1|')) {
    const [, , salt, hash] = field.split('|');
    if (!salt || !hash) return false;
    const mac = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest();
    const expected = Buffer.from(hash, 'base64');
    return expected.length === mac.length && timingSafeEqual(mac, expected);
  }
  const patterns = field.split(',');
  // Negated patterns and wildcards are left out on purpose: a pin names the host exactly.
  return patterns.includes(name);
}

/** The key blobs a known_hosts text lists for `host`:`port` (markers such as @revoked are skipped). */
export function findKnownHostKeys(text: string, host: string, port: number): Buffer[] {
  const keys: Buffer[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith('@')) continue;
    const [hosts, ...rest] = line.split(/\s+/);
    if (!hosts || !matchesHost(hosts, host, port)) continue;
    const blob = parsePublicKeyBlob(rest.join(' '));
    if (blob) keys.push(blob);
  }
  return keys;
}

/**
 * The host key policy of one target, at start-up. Without `host_key` or `known_hosts` the target
 * is refused unless `insecure_skip_host_key_check: true`.
 *
 * @throws SshProxyConfigError (`ERR_SSH_PROXY_CONFIG`), naming the config path.
 */
export function resolveHostKeyPolicy(
  name: string,
  target: SshProxyTargetConfig,
  readFile: (path: string) => string,
): HostKeyPolicy {
  const path = `targets.${name}`;
  const fail = (message: string) => new SshProxyConfigError(path, message);
  const keys: Buffer[] = [];
  if (target.host_key !== undefined) {
    const blob = parsePublicKeyBlob(target.host_key);
    if (!blob) throw fail('host_key is not an OpenSSH public key line (ssh-ed25519 AAAA...)');
    keys.push(blob);
  }
  if (target.known_hosts !== undefined) {
    let text: string;
    try {
      text = readFile(target.known_hosts);
    } catch (error) {
      throw fail(`cannot read known_hosts ${target.known_hosts} (${(error as NodeJS.ErrnoException).code})`);
    }
    const found = findKnownHostKeys(text, target.host, target.port);
    if (found.length === 0)
      throw fail(`known_hosts ${target.known_hosts} has no key for ${target.host}:${target.port}`);
    keys.push(...found);
  }
  if (keys.length > 0) return { kind: 'pinned', keys };
  if (target.insecure_skip_host_key_check) return { kind: 'insecure' };
  throw fail('pin the host key with host_key or known_hosts (or set insecure_skip_host_key_check: true)');
}

/** Whether the upstream's key blob is acceptable under `policy`. */
export function isHostKeyAccepted(policy: HostKeyPolicy, key: Buffer): boolean {
  if (policy.kind === 'insecure') return true;
  return policy.keys.some((pinned) => pinned.length === key.length && timingSafeEqual(pinned, key));
}
