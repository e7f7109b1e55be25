/**
 * An exec request a guardrail refused, recorded as a session of its own: nothing reaches the
 * target, but the recording (what the client was shown, and a marker naming the rule) and the
 * session's summary say what was asked and why it was refused, as for a line refused in a shell.
 */
import { createId } from '../../lib/ids.ts';
import type { ProxyIdentity } from './authenticate.ts';
import { ChannelRecorder } from './channel-recorder.ts';
import { RecordingSink } from './recording-sink.ts';
import type { ConnectionContext } from './session.ts';

/** What was refused and how the client was told. */
export interface RefusedExec {
  command: string;
  rule: string;
  /** The line written to the client's stderr. */
  message: string;
}

/** Stores the session and recording of a refused exec request; logs (never throws) on failure. */
export async function recordRefusedExec(
  ctx: ConnectionContext,
  identity: ProxyIdentity,
  clientAddress: string,
  refused: RefusedExec,
): Promise<void> {
  const id = createId('s');
  const at = ctx.clock();
  const command = refused.command.slice(0, 500);
  try {
    await ctx.ports.sessions.insertSession({
      id,
      protocol: 'ssh',
      grantId: identity.grant.grantId,
      requester: identity.grant.requester,
      target: identity.targetName,
      level: identity.grant.level,
      login: identity.account,
      clientAddress,
      startedAt: at,
      endedAt: null,
      endReason: null,
      summary: { channel: 'exec', command },
    });
    const recorder = new ChannelRecorder({
      width: 80,
      height: 24,
      startedAt: at,
      title: `${identity.grant.requester} ${identity.account}@${identity.targetName}: ${refused.command.slice(0, 200)}`,
      recordInput: identity.target.record_input,
      maxBytes: ctx.maxRecordingBytes,
    });
    const sink = new RecordingSink({
      recorder,
      write: (seq, piece) => ctx.ports.sessions.appendSessionFrames(id, seq, piece),
      onError: (error) => ctx.logger.error({ err: error, session: id }, 'cannot store a recording piece'),
    });
    recorder.marker(`refused by rule ${refused.rule}: ${command}`, at);
    recorder.output(Buffer.from(`${refused.message}\r\n`), at);
    sink.noteHeld();
    await sink.finish(at);
    await ctx.ports.sessions.endSession(id, {
      endedAt: at,
      endReason: 'refused by a guardrail',
      summary: { channel: 'exec', command, blocked: 1, commands: 0, refused: { rule: refused.rule } },
    });
  } catch (error) {
    ctx.logger.error({ err: error, session: id }, 'cannot record a refused command');
  }
}
