/**
 * One session channel of the SSH proxy (a shell, a command, a file transfer), relayed between the
 * client and the target and recorded as one Warden session: output is masked before the client
 * sees it and recorded as shown, interactive lines are checked against the guardrails before
 * their Enter reaches the shell, and backpressure from the client or the store pauses the target.
 * A file transfer's bytes pass as they are; only the fact is recorded.
 */
import type { ClientChannel, PseudoTtyInfo, ServerChannel } from 'ssh2';
import { createId } from '../../lib/ids.ts';
import type { ProxyIdentity } from './authenticate.ts';
import { ChannelRecorder } from './channel-recorder.ts';
import { checkInteractiveLine, LineEditor } from './guardrails/line-editor.ts';
import { IDLE_FLUSH_MS, type OutputMasker } from './output-masker.ts';
import { RecordingSink } from './recording-sink.ts';
import type { ConnectionContext, ProxyConnection } from './session.ts';

/** Ctrl-E, Ctrl-U, CR: end of line, kill the line, run the now empty line (a fresh prompt). */
const KILL_LINE = Buffer.from([0x05, 0x15, 0x0d]);
const FILE_TRANSFER = /^\s*(scp|rsync)\s/;
/** Longest wait (ms) for the client to close a channel before its recording is stored anyway. */
const STORE_DELAY_MS = 3_000;

/** What a connection keeps of each open channel, to end it with a message. */
export interface OpenChannel {
  channel: ServerChannel;
  pty: boolean;
  close(reason: string): void;
}

/** What a channel relay runs with. */
export interface ChannelRelayOptions {
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
export class ChannelRelay implements OpenChannel {
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
        write: (seq, piece) => options.ctx.ports.sessions.appendSessionFrames(this.#id, seq, piece),
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
    void ctx.ports.sessions
      .insertSession({
        id: this.#id,
        protocol: 'ssh',
        grantId: identity.grant.grantId,
        requester: identity.grant.requester,
        target: identity.targetName,
        level: identity.grant.level,
        login: identity.account,
        clientAddress: this.#o.clientAddress,
        startedAt: this.#startedAt,
        endedAt: null,
        endReason: null,
        summary: {
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
    return this.#o.ctx.ports.sessions
      .endSession(this.#id, {
        endedAt,
        endReason: this.#endReason,
        summary: {
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
      if (line?.type !== 'line') {
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
