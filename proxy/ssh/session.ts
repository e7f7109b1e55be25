/**
 * One authenticated client connection of the SSH proxy: opens the upstream connection with
 * Warden's key, relays session channels (shell with PTY, exec, sftp/scp; each one a
 * {@link ChannelRelay} with guardrails, masking and recording), refuses forwarding the level does
 * not allow, and ends everything with a message when the grant expires or is revoked.
 */
import type { Logger } from 'pino';
import ssh2, {
  type AcceptConnection,
  type ClientChannel,
  type Connection,
  type PseudoTtyInfo,
  type RejectConnection,
  type ServerChannel,
  type Session,
} from 'ssh2';

type SshClient = ssh2.Client;

import type { ProxyPorts } from '../../broker/ports/proxy.ts';
import type { ProxyIdentity } from './authenticate.ts';
import { ChannelRelay, type OpenChannel } from './channel-relay.ts';
import { SshProxyError } from './errors.ts';
import { checkCommand, type Guardrails } from './guardrails/rules.ts';
import { type HostKeyPolicy, isHostKeyAccepted } from './host-key.ts';
import type { OutputMaskerFactory } from './output-masker.ts';
import { recordRefusedExec } from './refused-exec.ts';

/** Exit status of a command refused by a guardrail (as a shell's "cannot execute"). */
export const BLOCKED_EXIT_STATUS = 126;

/** What a connection needs from its server. */
export interface ConnectionContext {
  ports: ProxyPorts;
  logger: Logger;
  clock: () => number;
  upstreamKey: string;
  guardrails: Guardrails;
  /** Which host keys the target may present. */
  hostKey: HostKeyPolicy;
  maskers: OutputMaskerFactory;
  maxRecordingBytes: number;
  upstreamTimeoutMs: number;
}

/** setTimeout's longest delay; longer grants re-arm. */
const MAX_TIMER = 2 ** 31 - 1;

/** The relay of one client connection. */
export class ProxyConnection {
  readonly #client: Connection;
  readonly #identity: ProxyIdentity;
  readonly #clientAddress: string;
  readonly #ctx: ConnectionContext;
  readonly #channels = new Set<OpenChannel>();
  #upstream: Promise<SshClient> | undefined;
  #upstreamClient: SshClient | undefined;
  #timer: NodeJS.Timeout | undefined;
  #ended = false;
  #expiresAt: number;

  constructor(client: Connection, identity: ProxyIdentity, clientAddress: string, ctx: ConnectionContext) {
    this.#client = client;
    this.#identity = identity;
    this.#clientAddress = clientAddress;
    this.#ctx = ctx;
    this.#expiresAt = identity.grant.expiresAt!;
    this.#arm();
    client.on('session', (accept) => this.#onSession(accept()));
    client.on('tcpip', (accept, reject, info) => this.#onDirectTcpip(accept, reject, info));
    client.on('request', (_accept, reject) => reject?.());
    client.on('close', () => this.#cleanup());
  }

  get grantId(): string {
    return this.#identity.grant.grantId;
  }

  /** Re-reads the grant: ends the connection if it is over, re-arms the expiry timer if extended. */
  async refresh(): Promise<void> {
    const grant = await this.#ctx.ports.grants.getGrant(this.grantId);
    const now = this.#ctx.clock();
    if (grant?.state !== 'active' || grant.expiresAt === null || grant.expiresAt <= now) {
      const why = grant?.endState === 'revoked' ? 'was revoked' : 'has expired';
      this.end(`warden: grant ${this.grantId} ${why}; the session is closed.`);
      return;
    }
    this.#expiresAt = grant.expiresAt;
    this.#arm();
  }

  /** Tells every channel `message`, then closes them and the connection. */
  end(message: string): void {
    if (this.#ended) return;
    this.#ended = true;
    clearTimeout(this.#timer);
    for (const open of [...this.#channels]) {
      try {
        if (open.pty) open.channel.write(`\r\n${message}\r\n`);
        else open.channel.stderr.write(`${message}\n`);
      } catch {
        // The channel may already be half closed; closing it below is what matters.
      }
      open.close(message);
    }
    // Give the messages a moment to leave before the transport goes.
    setTimeout(() => {
      this.#client.end();
      this.#upstreamClient?.end();
    }, 50).unref();
  }

  #arm(): void {
    clearTimeout(this.#timer);
    const delay = Math.min(Math.max(0, this.#expiresAt - this.#ctx.clock()), MAX_TIMER);
    this.#timer = setTimeout(
      () => void this.refresh().catch(() => this.end('warden: session closed.')),
      delay,
    );
    this.#timer.unref();
  }

  #cleanup(): void {
    this.#ended = true;
    clearTimeout(this.#timer);
    for (const open of [...this.#channels]) open.close('client disconnected');
    this.#upstreamClient?.end();
  }

  #connectUpstream(): Promise<SshClient> {
    this.#upstream ??= new Promise<SshClient>((resolve, reject) => {
      const { target, account } = this.#identity;
      const upstream = new ssh2.Client();
      this.#upstreamClient = upstream;
      upstream.once('ready', () => resolve(upstream));
      let wrongHostKey = false;
      upstream.on('error', (error) => {
        if (wrongHostKey) {
          this.#ctx.logger.error(
            { target: this.#identity.targetName },
            'upstream host key differs from the pinned key',
          );
          void this.#audit('ssh.host_key_mismatch', { host: target.host, port: target.port });
          reject(new SshProxyError('ERR_SSH_PROXY_HOST_KEY', 'the target presented an unknown host key'));
          return;
        }
        this.#ctx.logger.warn({ err: error, target: this.#identity.targetName }, 'upstream SSH error');
        reject(new SshProxyError('ERR_SSH_PROXY_UPSTREAM', 'cannot reach the target', { cause: error }));
      });
      upstream.on('close', () => {
        if (!this.#ended) this.end('warden: the target closed the connection.');
      });
      upstream.connect({
        host: target.host,
        port: target.port,
        username: account,
        privateKey: this.#ctx.upstreamKey,
        readyTimeout: this.#ctx.upstreamTimeoutMs,
        keepaliveInterval: 15_000,
        hostVerifier: (key: Buffer) => {
          wrongHostKey = !isHostKeyAccepted(this.#ctx.hostKey, key);
          return !wrongHostKey;
        },
      });
      // Keystrokes are single small packets: Nagle would hold one back behind an unacknowledged one.
      upstream.setNoDelay(true);
    });
    return this.#upstream;
  }

  #onDirectTcpip(
    accept: AcceptConnection<ServerChannel>,
    reject: RejectConnection,
    info: { srcIP: string; srcPort: number; destIP: string; destPort: number },
  ): void {
    if (!this.#identity.level.permit_port_forwarding || this.#ended) {
      void this.#audit('ssh.forwarding_refused', { dest: `${info.destIP}:${info.destPort}` });
      reject();
      return;
    }
    this.#connectUpstream()
      .then((upstream) =>
        upstream.forwardOut(info.srcIP, info.srcPort, info.destIP, info.destPort, (error, up) => {
          if (error) return reject();
          const down = accept();
          down.pipe(up).pipe(down);
        }),
      )
      .catch(() => reject());
  }

  #onSession(session: Session): void {
    let pty: PseudoTtyInfo | undefined;
    const pending: { rows: number; cols: number; height: number; width: number }[] = [];
    let resize: ((info: { rows: number; cols: number; height: number; width: number }) => void) | undefined;
    let signal: ((name: string) => void) | undefined;
    let started = false;
    const level = this.#identity.level;

    session.on('pty', (accept, reject, info) => {
      if (!level.permit_pty) return reject?.();
      pty = info;
      accept?.();
    });
    session.on('window-change', (accept, _reject, info) => {
      if (resize) resize(info);
      else pending.push(info);
      accept?.();
    });
    session.on('signal', (accept, _reject, info) => {
      signal?.(info.name);
      accept?.();
    });
    session.on('env', (_accept, reject) => reject?.());
    session.on('auth-agent', (accept, reject) => {
      void this.#audit('ssh.agent_forwarding_refused', {});
      // Agent forwarding is never relayed: the upstream login uses Warden's key, not the user's agent.
      (level.permit_agent_forwarding ? accept : reject)?.();
    });
    session.on('x11', (_accept, reject) => reject?.());

    const begin = (
      kind: 'shell' | 'exec' | 'subsystem',
      command: string | undefined,
      accept: () => ServerChannel,
      reject: (() => void) | undefined,
    ) => {
      if (started || this.#ended) return reject?.();
      started = true;
      const forced = level.force_command;
      const effective = forced ?? command;
      const runKind = forced && kind !== 'subsystem' ? 'exec' : kind;
      if (runKind === 'exec' && effective !== undefined) {
        const verdict = checkCommand(effective, this.#ctx.guardrails);
        if (!verdict.allowed) {
          const channel = accept();
          void this.#audit('ssh.command_blocked', {
            command: effective.slice(0, 500),
            rule: verdict.ruleId,
          });
          const message = `warden: blocked by rule ${verdict.ruleId}: ${verdict.reason}`;
          channel.stderr.write(`${message}\n`);
          channel.exit(BLOCKED_EXIT_STATUS);
          channel.end();
          void recordRefusedExec(this.#ctx, this.#identity, this.#clientAddress, {
            command: effective,
            rule: verdict.ruleId,
            message,
          });
          return;
        }
      }
      // Accept at once: a client may send EOF right after its request (`ssh host cmd < /dev/null`),
      // and ssh2 drops a session that ends before it was accepted. Input waits, paused, for upstream.
      const channel = accept();
      channel.pause();
      const fail = (message: string) => {
        try {
          channel.stderr.write(`warden: ${message}\n`);
          channel.exit(255);
          channel.end();
        } catch {
          // The client is gone.
        }
      };
      this.#connectUpstream()
        .then((upstream) => {
          const onUp = (error: Error | undefined, up: ClientChannel) => {
            if (error) {
              fail('the target refused the channel');
              return;
            }
            const relay = new ChannelRelay({
              connection: this,
              ctx: this.#ctx,
              identity: this.#identity,
              clientAddress: this.#clientAddress,
              channel,
              up,
              kind: runKind,
              command: effective,
              pty,
            });
            this.#channels.add(relay);
            relay.onClose(() => this.#channels.delete(relay));
            resize = (info) => relay.resize(info);
            signal = (name) => up.signal(name);
            for (const info of pending.splice(0)) relay.resize(info);
            relay.start();
          };
          const window = pty
            ? { term: pty.term, cols: pty.cols, rows: pty.rows, width: pty.width, height: pty.height }
            : undefined;
          if (runKind === 'shell') upstream.shell(window ?? false, onUp);
          else if (runKind === 'exec') upstream.exec(effective!, window ? { pty: window } : {}, onUp);
          else upstream.subsys(command!, onUp);
        })
        .catch((error) => {
          this.#ctx.logger.warn({ err: error, grant: this.grantId }, 'cannot open the upstream channel');
          fail(
            (error as SshProxyError).code === 'ERR_SSH_PROXY_HOST_KEY'
              ? 'the target presented an unknown host key; refusing to connect'
              : 'cannot reach the target',
          );
        });
    };

    session.on('shell', (accept, reject) => begin('shell', undefined, accept, reject));
    session.on('exec', (accept, reject, info) => begin('exec', info.command, accept, reject));
    session.on('subsystem', (accept, reject, info) => {
      if (info.name !== 'sftp') return reject?.();
      begin('subsystem', info.name, accept, reject);
    });
  }

  /** Appends an audit entry about this connection's grant. */
  #audit(action: string, data: Record<string, unknown>): Promise<void> {
    return this.#ctx.ports.audit
      .record(this.#identity.grant.requester, action, this.grantId, {
        target: this.#identity.targetName,
        account: this.#identity.account,
        ...data,
      })
      .catch((error) => this.#ctx.logger.error({ err: error }, 'audit failed'));
  }

  /** Audits on behalf of a channel. */
  auditChannel(action: string, data: Record<string, unknown>): Promise<void> {
    return this.#audit(action, data);
  }
}
