/**
 * What the SSH proxy is configured with: its listener and keys (`ssh.proxy`), the CA, and its SSH
 * targets. The target and level types are the fragments of `warden.yaml` the proxy reads, as the
 * broker's config schema outputs them (checked where `warden serve` passes them on); secrets come
 * resolved, or through the resolver the settings carry.
 */
import type { SecretResolver } from '../../lib/secret.ts';
import type { SshCa } from '../../lib/ssh/keys.ts';

/** One access level of an SSH target, as the proxy enforces it. */
export interface SshProxyLevelConfig {
  /** Accounts on the target; the proxy logs in upstream as one of them. */
  principals: readonly string[];
  /** The only command the level may run. */
  force_command?: string | undefined;
  permit_pty: boolean;
  permit_agent_forwarding: boolean;
  permit_port_forwarding: boolean;
}

/** An SSH target (`targets.<name>` with `kind: ssh`), as the proxy reads it. */
export interface SshProxyTargetConfig {
  kind: 'ssh';
  host: string;
  port: number;
  levels: Readonly<Record<string, SshProxyLevelConfig>>;
  /** Command guardrails (see `guardrails/rules.ts`); every built-in rule is on by default. */
  guardrails?: Record<string, unknown> | undefined;
  /** Record what users type (never while the terminal has echo off). */
  record_input: boolean;
  /** Output masking (the shared `masking:` fragment); its `key` is a secret reference. */
  masking?: Record<string, unknown> | undefined;
  /** The pinned host key: an OpenSSH public key line. */
  host_key?: string | undefined;
  /** A known_hosts file whose keys for the target are pinned. */
  known_hosts?: string | undefined;
  insecure_skip_host_key_check: boolean;
}

/** The settings the SSH proxy starts from (the protocol part of its `ProxyOptions`). */
export interface SshProxySettings {
  /** `host:port` to listen on (`ssh.proxy.listen`). */
  listen: string;
  /** The proxy's host private key (OpenSSH or PEM text). */
  hostKey: string;
  /** The private key the proxy logs in to targets with (OpenSSH or PEM text). */
  upstreamKey: string;
  /** Warden's SSH CA: certificates are checked against it, grant tokens derived from it. */
  ca: SshCa;
  /** The SSH targets by name. */
  targets: Readonly<Record<string, SshProxyTargetConfig>>;
  /** Reads the masking keys the targets reference. */
  secrets: SecretResolver;
}
