/**
 * One authenticated client connection of the SSH proxy: opens the upstream connection with
 * Warden's key, relays session channels (shell with PTY, exec, sftp/scp) with guardrails,
 * masking and recording, refuses forwarding the level does not allow, and ends everything with a
 * message when the grant expires or is revoked.
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

import { createId } from '../../broker/ids.ts';
import type { ProxyIdentity } from './authenticate.ts';
import type { SshProxyBackend } from './backend.ts';
import { ChannelRecorder } from './channel-recorder.ts';
import { SshProxyError } from './errors.ts';
import { checkInteractiveLine, LineEditor } from './guardrails/line-editor.ts';
import { checkCommand, type Guardrails } from './guardrails/rules.ts';
import { type HostKeyPolicy, isHostKeyAccepted } from './host-key.ts';
import { IDLE_FLUSH_MS, type OutputMasker, type OutputMaskerFactory } from './output-masker.ts';
import { RecordingSink } from './recording-sink.ts';

/** Exit status of a command refused by a guardrail (as a shell's "cannot execute"). */
export const BLOCKED_EXIT_STATUS = 126;

/** What a connection needs from its server. */
export interface ConnectionContext {
  backend: SshProxyBackend;
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

/** Ctrl-E, Ctrl-U, CR: end of line, kill the line, run the now empty line (a fresh prompt). */
const KILL_LINE = Buffer.from([0x05, 0x15, 0x0d]);
const FILE_TRANSFER = /^\s*(scp|rsync)\s/;
/** Longest wait (ms) for the client to close a channel before its recording is stored anyway. */
const STORE_DELAY_MS = 3_000;
/** setTimeout's longest delay; longer grants re-arm. */
const MAX_TIMER = 2 ** 31 - 1;

interface OpenChannel {
  channel: ServerChannel;
  pty: boolean;
  close(reason: string): void;
}

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
    return this.#identity.grant.id;
  }

  /** Re-reads the grant: ends the connection if it is over, re-arms the expiry timer if extended. */
  async refresh(): Promise<void> {
    const grant = await this.#ctx.backend.getGrant(this.grantId);
    const now = this.#ctx.clock();
    if (!grant || grant.state !== 'active' || grant.expiresAt === null || grant.expiresAt <= now) {
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
        reject(new SshProxyError('ERR_SSH_PROXY_UPSTREAM', 'cannot reach the target', {}, { cause: error }));
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
          channel.stderr.write(`warden: blocked by rule ${verdict.ruleId}: ${verdict.reason}\n`);
          channel.exit(BLOCKED_EXIT_STATUS);
          channel.end();
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
    return this.#ctx.backend
      .audit(this.#identity.grant.requester, action, this.grantId, {
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

interface ChannelRelayOptions {
  connection: ProxyConnection;
  ctx: ConnectionContext;
  identity: ProxyIdentity;
  clientAddress: string;
  channel: ServerChannel;
  up: ClientChannel;
  kind: 'shell' | 'exec' | 'subsystem';
  command: string | undefined;
  pty: PseudoTtyInfo | undefined;
}

/** Relays one session channel and records it as one Warden session. */
class ChannelRelay implements OpenChannel {
  readonly channel: ServerChannel;
  readonly pty: boolean;
  readonly #o: ChannelRelayOptions;
  readonly #id = createId('s');
  readonly #recorder: ChannelRecorder | undefined;
  readonly #sink: RecordingSink | undefined;
  /** Maskers of stdout and stderr: a value held back on one stream must come out on the same one. */
  readonly #maskers: readonly [OutputMasker, OutputMasker] | undefined;
  #idleTimer: NodeJS.Timeout | undefined;
  #lastOutputAt = 0;
  readonly #editor: LineEditor | undefined;
  readonly #closeListeners: (() => void)[] = [];
  readonly #startedAt: number;
  #blocked = 0;
  #commands = 0;
  #bytesIn = 0;
  #bytesOut = 0;
  #closed = false;
  #endReason = 'closed';
  #exitStatus: number | string | undefined;

  constructor(options: ChannelRelayOptions) {
    this.#o = options;
    this.channel = options.channel;
    this.pty = options.pty !== undefined;
    this.#startedAt = options.ctx.clock();
    const transfer = options.kind === 'subsystem' || FILE_TRANSFER.test(options.command ?? '');
    if (!transfer) {
      this.#recorder = new ChannelRecorder({
        width: options.pty?.cols || 80,
        height: options.pty?.rows || 24,
        startedAt: this.#startedAt,
        title: `${options.identity.grant.requester} ${options.identity.account}@${options.identity.targetName}${options.command ? `: ${options.command.slice(0, 200)}` : ''}`,
        ...(options.pty ? { env: { TERM: options.pty.term } } : {}),
        recordInput: options.identity.target.record_input,
        maxBytes: options.ctx.maxRecordingBytes,
      });
      this.#sink = new RecordingSink({
        recorder: this.#recorder,
        write: (seq, piece) => options.ctx.backend.appendRecording(this.#id, seq, piece),
        onError: (error) =>
          options.ctx.logger.error({ err: error, session: this.#id }, 'cannot store a recording piece'),
      });
      const context = { target: options.identity.targetName, level: options.identity.grant.level };
      this.#maskers = [options.ctx.maskers(context), options.ctx.maskers(context)];
    }
    if (options.kind === 'shell' && this.pty) this.#editor = new LineEditor();
  }

  onClose(listener: () => void): void {
    this.#closeListeners.push(listener);
  }

  start(): void {
    const { up, channel, ctx, identity } = this.#o;
    void ctx.backend
      .insertSession({
        id: this.#id,
        requestId: identity.grant.id,
        target: identity.targetName,
        kind: 'ssh',
        requester: identity.grant.requester,
        login: identity.account,
        client: this.#o.clientAddress,
        startedAt: this.#startedAt,
        endedAt: null,
        endReason: null,
        recording: null,
        meta: {
          channel: this.#o.kind,
          ...(this.#o.command ? { command: this.#o.command.slice(0, 500) } : {}),
        },
      })
      .catch((error) =>
        ctx.logger.error({ err: error, session: this.#id }, 'cannot record the session start'),
      );

    if (!this.#recorder) {
      // File transfer: bytes as they are, with backpressure both ways; only the fact is recorded.
      // The client's channel ends only in close(), after the exit status: ending it at the
      // upstream EOF raced the exit status, and a client without one exits 255 (scp then fails).
      channel.pipe(up);
      up.pipe(channel, { end: false });
      up.stderr.pipe(channel.stderr, { end: false });
    } else {
      up.on('data', (data: Buffer) => this.#output(data, false));
      up.stderr.on('data', (data: Buffer) => this.#output(data, true));
      channel.on('data', (data: Buffer) => this.#input(data));
      channel.on('end', () => up.end());
      channel.resume();
      up.on('end', () => this.#flushMaskers());
    }
    up.on('exit', (code: number | null, signalName?: string) => {
      this.#exitStatus = code ?? signalName;
      try {
        if (code !== null && code !== undefined) channel.exit(code);
        else if (signalName) channel.exit(signalName, false, '');
      } catch {
        // The client may be gone already.
      }
    });
    // Upstream is done once its output is all read ('end') and the channel is closed (after the exit
    // status); only then does the client's channel end.
    let upEnded = false;
    let upClosed = false;
    const done = () => {
      if (upEnded && upClosed) this.close('ended');
    };
    up.once('end', () => {
      upEnded = true;
      done();
    });
    up.once('close', () => {
      upClosed = true;
      done();
    });
    channel.on('close', () => this.close('client closed the channel'));
  }

  resize(info: { rows: number; cols: number; height: number; width: number }): void {
    this.#o.up.setWindow(info.rows, info.cols, info.height, info.width);
    if (info.cols > 0 && info.rows > 0) this.#recorder?.resize(info.cols, info.rows, this.#o.ctx.clock());
  }

  close(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#idleTimer);
    this.#endReason = reason;
    try {
      this.channel.end();
      // After a normal end, close only once every byte has left: closing at once would drop output
      // still waiting for the client's window.
      if (reason === 'ended') this.channel.once('finish', () => this.channel.close());
      else this.channel.close();
    } catch {
      // already closed
    }
    try {
      this.#o.up.close();
    } catch {
      // already closed
    }
    const now = this.#o.ctx.clock();
    // Encoding and storing the recording is the costly part: it waits until the client has the
    // channel's last byte (or a few seconds), so it never delays what the user sees.
    let stored = false;
    const store = () => {
      if (stored) return;
      stored = true;
      clearTimeout(fallback);
      setImmediate(() => this.#store(now));
    };
    const fallback = setTimeout(store, STORE_DELAY_MS);
    fallback.unref();
    this.channel.once('close', store);
    for (const listener of this.#closeListeners) listener();
  }

  #store(endedAt: number): void {
    // The recording is in the store's pieces (written during the session); this writes the rest.
    void (this.#sink?.finish(endedAt) ?? Promise.resolve())
      .catch((error) =>
        this.#o.ctx.logger.error({ err: error, session: this.#id }, 'cannot store the recording'),
      )
      .then(() => this.#finishSession(endedAt));
  }

  #finishSession(endedAt: number): Promise<void> {
    return this.#o.ctx.backend
      .finishSession(this.#id, {
        endedAt,
        endReason: this.#endReason,
        recording: null,
        meta: {
          channel: this.#o.kind,
          ...(this.#o.command ? { command: this.#o.command.slice(0, 500) } : {}),
          blocked: this.#blocked,
          commands: this.#commands,
          bytes_in: this.#bytesIn,
          bytes_out: this.#bytesOut,
          masked: this.#maskCounts(),
          truncated: this.#recorder?.truncated ?? false,
          ...(this.#sink?.failedWrites ? { recording_failed_writes: this.#sink.failedWrites } : {}),
          ...(this.#exitStatus !== undefined ? { exit: this.#exitStatus } : {}),
        },
      })
      .catch((error) =>
        this.#o.ctx.logger.error({ err: error, session: this.#id }, 'cannot store the session'),
      );
  }

  #output(data: Buffer, stderr: boolean): void {
    const shown = this.#maskers![stderr ? 1 : 0].push(data);
    if (shown.length > 0) this.#write(shown, stderr);
    this.#lastOutputAt = this.#o.ctx.clock();
    if (!this.#idleTimer && this.#maskers!.some((m) => m.pendingBytes > 0)) this.#armIdleFlush(IDLE_FLUSH_MS);
  }

  /** Releases held-back output once no output came for {@link IDLE_FLUSH_MS}. */
  #armIdleFlush(delay: number): void {
    this.#idleTimer = setTimeout(() => {
      this.#idleTimer = undefined;
      if (this.#closed) return;
      const idle = this.#o.ctx.clock() - this.#lastOutputAt;
      if (idle < IDLE_FLUSH_MS) this.#armIdleFlush(IDLE_FLUSH_MS - idle);
      else this.#flushMaskers();
    }, delay);
    this.#idleTimer.unref();
  }

  #flushMaskers(): void {
    clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    this.#maskers?.forEach((masker, i) => {
      const rest = masker.flush();
      if (rest.length > 0) this.#write(rest, i === 1);
    });
  }

  #maskCounts(): Record<string, number> {
    const total: Record<string, number> = {};
    for (const masker of this.#maskers ?? []) {
      for (const [label, n] of Object.entries(masker.counts)) total[label] = (total[label] ?? 0) + n;
    }
    return total;
  }

  #write(data: Buffer, stderr: boolean): void {
    this.#bytesOut += data.length;
    const stream = stderr ? this.channel.stderr : this.channel;
    // The client first: recording is bookkeeping and must not delay an echoed keystroke.
    const clientFull = !stream.write(data);
    this.#recorder!.output(data, this.#o.ctx.clock());
    this.#sink!.noteHeld();
    // Backpressure: stop reading upstream until the client caught up and the store wrote enough
    // of the recording.
    if (clientFull) {
      (stderr ? this.#o.up.stderr : this.#o.up).pause();
      stream.once('drain', () => this.#resumeOutput());
    }
    if (this.#sink!.full) {
      this.#o.up.pause();
      this.#o.up.stderr.pause();
      this.#sink!.onceDrained(() => this.#resumeOutput());
    }
  }

  /** Reads upstream output again where neither the client nor the store holds it back. */
  #resumeOutput(): void {
    if (this.#sink!.full) return;
    if (!this.channel.writableNeedDrain) this.#o.up.resume();
    if (!this.channel.stderr.writableNeedDrain) this.#o.up.stderr.resume();
  }

  #input(data: Buffer): void {
    this.#bytesIn += data.length;
    const now = this.#o.ctx.clock();
    if (!this.#editor) {
      this.#send(data);
      this.#recorder!.input(data, now);
      this.#sink!.noteHeld();
      return;
    }
    this.#recorder!.input(data, now);
    this.#sink!.noteHeld();
    // Split at Enter so a line is checked before its Enter reaches the shell.
    let start = 0;
    for (let i = 0; i < data.length; i++) {
      const byte = data[i]!;
      if (byte !== 0x0d && byte !== 0x0a) continue;
      const segment = data.subarray(start, i + 1);
      start = i + 1;
      const line = this.#editor.feed(segment).find((e) => e.type === 'line');
      if (!line || line.type !== 'line') {
        this.#send(segment);
        continue;
      }
      const verdict = checkInteractiveLine(line, this.#o.ctx.guardrails);
      if (verdict.allowed) {
        if (line.line.trim()) this.#commands++;
        this.#send(segment);
        continue;
      }
      this.#blocked++;
      this.#send(segment.subarray(0, segment.length - 1));
      this.#send(KILL_LINE);
      const message = `warden: blocked by rule ${verdict.ruleId}: ${verdict.reason}`;
      // Written through the recorder, so the replay shows what the user saw.
      this.#write(Buffer.from(`\r\n${message}\r\n`), false);
      this.#recorder!.marker(message, now);
      void this.#o.connection.auditChannel('ssh.command_blocked', {
        session: this.#id,
        command: line.line.slice(0, 500),
        rule: verdict.ruleId,
      });
    }
    if (start < data.length) {
      const rest = data.subarray(start);
      this.#editor.feed(rest);
      this.#send(rest);
    }
  }

  #send(data: Buffer): void {
    if (data.length > 0) this.#o.up.write(data);
  }
}
