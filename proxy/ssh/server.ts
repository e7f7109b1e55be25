/**
 * The SSH proxy's listener: accepts OpenSSH clients (`ssh -p 2222 deploy+web-1@proxy`),
 * authenticates them with a Warden certificate or the grant token, and hands each authenticated
 * connection to a {@link ProxyConnection}. Handshakes are time-limited, authentication attempts are
 * counted, and a client that misbehaves only ever loses its own connection.
 */
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import ssh2, { type AuthContext, type Connection } from 'ssh2';
import type { ProxyPorts } from '../../broker/ports/proxy.ts';
import { formatCaPublicKeyLine, type SshCa } from '../../lib/ssh/keys.ts';
import { authenticateProxyLogin, type ProxyAuthAttempt, type ProxyIdentity } from './authenticate.ts';
import type { SshProxyTargetConfig } from './config.ts';
import { isSshProxyError, SshProxyError } from './errors.ts';
import { compileGuardrails, type GuardrailRulesInput, type Guardrails } from './guardrails/rules.ts';
import { type HostKeyPolicy, resolveHostKeyPolicy } from './host-key.ts';
import { parseProxyLoginName } from './login-name.ts';
import { type OutputMaskerFactory, passThroughMaskerFactory } from './output-masker.ts';
import { type ConnectionContext, ProxyConnection } from './session.ts';

/** Options of {@link SshProxyServer}. Times in milliseconds. */
export interface SshProxyOptions {
  /** The broker: grants, sessions, audit (see `broker/ports/proxy.ts`). */
  ports: ProxyPorts;
  /** The SSH targets by name. */
  targets: Readonly<Record<string, SshProxyTargetConfig>>;
  ca: SshCa;
  /** The proxy's host private key (OpenSSH or PEM text). */
  hostKey: string;
  /** Private key the proxy logs in to targets with (OpenSSH or PEM text). */
  upstreamKey: string;
  logger: Logger;
  clock?: () => number;
  /** Output masking (default: pass-through until the shared masker is plugged in). */
  maskers?: OutputMaskerFactory;
  /** Time a client has from TCP connect to successful login. Default 20 000. */
  handshakeTimeoutMs?: number;
  /** Failed authentication attempts before the connection is closed. Default 6. */
  maxAuthAttempts?: number;
  /** Most bytes one channel's recording keeps in the store (frame headers included). Default 32 MiB. */
  maxRecordingBytes?: number;
  /** Time to connect and log in upstream. Default 10 000. */
  upstreamTimeoutMs?: number;
  /** How often live sessions re-check their grant (revocation by another replica). Default 5 000. */
  recheckIntervalMs?: number;
}

export class SshProxyServer {
  readonly #options: SshProxyOptions;
  readonly #server: ssh2.Server;
  readonly #caLine: string;
  readonly #guardrails = new Map<string, Guardrails>();
  readonly #hostKeys = new Map<string, HostKeyPolicy>();
  readonly #connections = new Set<ProxyConnection>();
  readonly #clients = new Set<Connection>();
  readonly #unwatch: () => void;
  readonly #recheck: NodeJS.Timeout;

  constructor(options: SshProxyOptions) {
    this.#options = options;
    this.#caLine = formatCaPublicKeyLine(options.ca);
    for (const [name, target] of Object.entries(options.targets)) {
      if (target.kind !== 'ssh') continue;
      this.#guardrails.set(
        name,
        compileGuardrails((target.guardrails ?? {}) as GuardrailRulesInput, `targets.${name}.guardrails`),
      );
      this.#hostKeys.set(
        name,
        resolveHostKeyPolicy(name, target, (path) => readFileSync(path, 'utf8')),
      );
    }
    this.#server = new ssh2.Server({ hostKeys: [options.hostKey], ident: 'Warden' }, (client, info) =>
      this.#onClient(client, info.ip),
    );
    this.#server.on('error', (error: Error) =>
      options.logger.error({ err: error }, 'SSH proxy listener error'),
    );
    // An ended or extended grant: its connections re-read it (and end, or move their deadline).
    this.#unwatch = options.ports.grants.watch((change) => {
      for (const connection of this.#connections) {
        if (connection.grantId === change.grantId) void connection.refresh().catch(() => {});
      }
    });
    this.#recheck = setInterval(() => {
      for (const connection of this.#connections) void connection.refresh().catch(() => {});
    }, options.recheckIntervalMs ?? 5_000);
    this.#recheck.unref();
  }

  /** Where the proxy listens, once {@link listen} resolved. */
  get address(): AddressInfo | undefined {
    return (this.#server.address() as AddressInfo | null) ?? undefined;
  }

  /** Live authenticated connections. */
  get connectionCount(): number {
    return this.#connections.size;
  }

  async listen(port: number, host = '127.0.0.1'): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, host, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    return this.#server.address() as AddressInfo;
  }

  /** Ends every session with a message and stops listening. */
  async close(): Promise<void> {
    this.#unwatch();
    clearInterval(this.#recheck);
    for (const connection of this.#connections) connection.end('warden: the proxy is shutting down.');
    for (const client of this.#clients) client.end();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #clock(): number {
    return (this.#options.clock ?? Date.now)();
  }

  #onClient(client: Connection, address: string): void {
    const { logger } = this.#options;
    this.#clients.add(client);
    // Keystrokes are single small packets: Nagle would hold one back behind an unacknowledged one.
    (client as Connection & { setNoDelay(noDelay: boolean): unknown }).setNoDelay(true);
    let failures = 0;
    let identity: ProxyIdentity | undefined;
    const deadline = setTimeout(() => {
      if (!identity) client.end();
    }, this.#options.handshakeTimeoutMs ?? 20_000);
    deadline.unref();
    client.on('error', (error: Error) => logger.debug({ err: error, client: address }, 'SSH client error'));
    client.on('close', () => {
      clearTimeout(deadline);
      this.#clients.delete(client);
    });
    client.on('authentication', (ctx) => {
      void this.#authenticate(ctx, address).then(
        (result) => {
          if (result.proven) identity = result;
          ctx.accept();
        },
        (error) => {
          failures++;
          const code = (error as { code?: string }).code ?? 'ERR_INTERNAL';
          if (code !== 'ERR_SSH_PROXY_AUTH_METHOD') {
            logger.debug({ code, client: address, user: ctx.username.slice(0, 128) }, 'SSH login refused');
          }
          if (!isSshProxyError(error) && !code.startsWith('ERR_SSH_')) {
            logger.error({ err: error }, 'SSH authentication failed unexpectedly');
          }
          if (failures >= (this.#options.maxAuthAttempts ?? 6)) {
            ctx.reject();
            client.end();
            return;
          }
          ctx.reject(['publickey', 'password']);
        },
      );
    });
    client.on('ready', () => {
      clearTimeout(deadline);
      if (!identity) {
        client.end();
        return;
      }
      const connection = new ProxyConnection(client, identity, address, this.#connectionContext(identity));
      this.#connections.add(connection);
      client.on('close', () => {
        this.#connections.delete(connection);
        void this.#audit(identity!, 'ssh.logout', { client: address });
      });
      void this.#audit(identity, 'ssh.login', {
        client: address,
        via: identity.via,
        ...(identity.keyId ? { key_id: identity.keyId, serial: identity.serial } : {}),
      });
    });
  }

  #connectionContext(identity: ProxyIdentity): ConnectionContext {
    return {
      ports: this.#options.ports,
      logger: this.#options.logger,
      clock: () => this.#clock(),
      upstreamKey: this.#options.upstreamKey,
      guardrails: this.#guardrails.get(identity.targetName)!,
      hostKey: this.#hostKeys.get(identity.targetName)!,
      maskers: this.#options.maskers ?? passThroughMaskerFactory,
      maxRecordingBytes: this.#options.maxRecordingBytes ?? 32 * 1024 * 1024,
      upstreamTimeoutMs: this.#options.upstreamTimeoutMs ?? 10_000,
    };
  }

  async #authenticate(ctx: AuthContext, address: string): Promise<ProxyIdentity> {
    const login = parseProxyLoginName(ctx.username);
    let attempt: ProxyAuthAttempt;
    if (ctx.method === 'publickey') {
      attempt = {
        method: 'publickey',
        keyAlgo: ctx.key.algo,
        key: ctx.key.data,
        signature: ctx.signature,
        signed: ctx.blob,
      };
    } else if (ctx.method === 'password') {
      attempt = { method: 'password', password: ctx.password };
    } else {
      throw new SshProxyError('ERR_SSH_PROXY_AUTH_METHOD', 'use a Warden certificate or the grant token');
    }
    return authenticateProxyLogin(attempt, {
      ca: this.#options.ca,
      caPublicKey: this.#caLine,
      login,
      clientAddress: address,
      now: this.#clock(),
      targets: this.#options.targets,
      getGrant: (id) => this.#options.ports.grants.getGrant(id),
    });
  }

  #audit(identity: ProxyIdentity, action: string, data: Record<string, unknown>): Promise<void> {
    return this.#options.ports.audit
      .record(identity.grant.requester, action, identity.grant.grantId, {
        target: identity.targetName,
        account: identity.account,
        ...data,
      })
      .catch((error) => this.#options.logger.error({ err: error }, 'audit failed'));
  }
}
