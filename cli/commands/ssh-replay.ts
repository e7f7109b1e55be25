/**
 * `warden ssh replay <session>`: plays an SSH session's recording to the terminal at its recorded
 * pace (`--speed`, `--idle-limit`), prints its events as JSON lines (`--format jsonl`), or exports
 * the asciicast v2 file (`--export`). Reads the store directly, like `warden audit`.
 */
import { openConfiguredStore } from '../../broker/app.ts';
import type { Store } from '../../broker/store/store.ts';
import { schedulePlayback } from '../../proxy/ssh/recording/asciicast-player.ts';
import { parseAsciicast } from '../../proxy/ssh/recording/asciicast-reader.ts';
import { readStoredRecording } from '../../proxy/ssh/recording/stored-recording.ts';
import { UsageError } from '../errors.ts';
import { ExitCode, type Io } from '../output.ts';
import { SshCliError } from '../ssh/errors.ts';
import { loadConfigOf } from '../ssh/load-config.ts';
import { writeFileAtomically } from '../ssh/write-file.ts';

type Flags = Record<string, string | boolean | undefined>;

/** Dependencies a test (or the `warden replay` dispatcher) may pass. */
export interface ReplayDeps {
  /** Use this store instead of opening the configured one. */
  readonly store?: Store;
  /** Pause between events, in ms; default a timer. */
  readonly sleep?: (ms: number) => Promise<void>;
  /** Where terminal output goes, byte for byte; default stdout. */
  readonly write?: (chunk: string) => void;
}

function positiveNumber(flags: Flags, name: string): number | undefined {
  const text = flags[name];
  if (text === undefined) return undefined;
  const value = typeof text === 'string' && /^\d{1,6}(\.\d{1,6})?$/.test(text) ? Number(text) : Number.NaN;
  if (!(value > 0)) throw new UsageError(`--${name} must be a positive number, like 2 or 0.5`);
  return value;
}

/**
 * Replays SSH session `id`: plays it through `deps.write`, or prints events (`--format jsonl`), or
 * writes `--export FILE` (0600: recordings hold what people typed). Throws
 * `ERR_SSH_CLI_SESSION_NOT_FOUND`, `ERR_SSH_CLI_SESSION_NOT_SSH`, `ERR_SSH_CLI_NO_RECORDING` (a file
 * transfer, or a live session with nothing stored yet) or a recording error for a damaged one. A
 * live session replays as far as it is stored.
 */
export async function replaySshSession(
  id: string,
  flags: Flags,
  io: Io,
  deps: ReplayDeps = {},
): Promise<number> {
  const speed = positiveNumber(flags, 'speed');
  const idleTimeLimit = positiveNumber(flags, 'idle-limit');
  const format = flags.format;
  if (format !== undefined && format !== 'jsonl') throw new UsageError('only --format jsonl is supported');
  const exportPath = typeof flags.export === 'string' ? flags.export : undefined;
  const store =
    deps.store ??
    (await openConfiguredStore(loadConfigOf(flags, io), io.env, undefined, { mustExist: true }));
  try {
    const session = await store.getSession(id);
    if (!session)
      throw new SshCliError('ERR_SSH_CLI_SESSION_NOT_FOUND', `session ${id.slice(0, 64)} does not exist`);
    if (session.protocol !== 'ssh') {
      throw new SshCliError(
        'ERR_SSH_CLI_SESSION_NOT_SSH',
        `session ${id} is a ${session.protocol} session, not SSH`,
      );
    }
    const live = session.endedAt === null;
    const recording = await readStoredRecording(store, session.id);
    if (recording === null) {
      throw new SshCliError(
        'ERR_SSH_CLI_NO_RECORDING',
        live
          ? `session ${id} is live and has no recording yet (file transfers are never recorded)`
          : `session ${id} has no recording: file transfers are not recorded`,
      );
    }
    // A live session's pieces reach the store while it runs, at most about a second late.
    if (live) io.err(`session ${id} is still live: this is its recording so far`);
    const cast = parseAsciicast(recording);
    if (exportPath) {
      writeFileAtomically(exportPath, recording, 0o600);
      io.out(`wrote ${exportPath}: asciicast v2, ${cast.events.length} events`);
      return ExitCode.Ok;
    }
    if (format === 'jsonl') {
      for (const [time, type, data] of cast.events) io.out(JSON.stringify({ time, type, data }));
      return ExitCode.Ok;
    }
    const steps = schedulePlayback(cast, {
      ...(speed !== undefined ? { speed } : {}),
      ...(idleTimeLimit !== undefined ? { idleTimeLimit } : {}),
    });
    const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
    const write = deps.write ?? ((chunk: string) => void process.stdout.write(chunk));
    for (const step of steps) {
      if (step.delay > 0) await sleep(step.delay);
      write(step.data);
    }
    return ExitCode.Ok;
  } finally {
    if (!deps.store) await store.close();
  }
}
