/**
 * `warden sessions list` and `warden replay <session> [--format jsonl]`: read proxied sessions of
 * every protocol from the store directly (like `audit`). A Postgres session's timeline is shown in
 * the terminal or exported as JSON lines; an SSH session's recording is played (`warden ssh
 * replay`). Recordings are masked when written: nothing here unmasks.
 */
import { openConfiguredStore } from '../../broker/app.ts';
import type { Config } from '../../broker/config/load.ts';
import type { SessionEventRecord, SessionRecord } from '../../broker/store/store.ts';
import { UsageError } from '../errors.ts';
import { ExitCode, type Io } from '../output.ts';
import { replaySshSession } from './ssh-replay.ts';

type Flags = Record<string, string | boolean | undefined>;

function formatTime(at: number | null): string {
  return at === null
    ? '-'
    : new Date(at)
        .toISOString()
        .replace('T', ' ')
        .replace(/\.\d+Z$/, 'Z');
}

function formatCounts(counts: unknown): string {
  if (!counts || typeof counts !== 'object') return '';
  return Object.entries(counts as Record<string, number>)
    .map(([label, n]) => `${label}=${n}`)
    .join(' ');
}

/** What a session did, by protocol: statements of a Postgres session, the channel of an SSH one. */
function formatActivity(session: SessionRecord): string[] {
  if (session.protocol === 'ssh') {
    const s = session.summary as { channel?: string; command?: string; commands?: number; blocked?: number };
    return [
      s.command ? `${s.channel ?? 'exec'} ${JSON.stringify(s.command.slice(0, 80))}` : (s.channel ?? 'shell'),
      `${s.commands ?? 0} commands`,
      `${s.blocked ?? 0} blocked`,
    ];
  }
  const s = session.summary as { statements?: number; blocked?: number };
  return [`${s.statements ?? 0} statements`, `${s.blocked ?? 0} blocked`];
}

/** One line per session: id, protocol, who, where, when, how it ended, what it did, masking counts. */
export function formatSessionLine(session: SessionRecord): string {
  const masked = formatCounts((session.summary as { masked?: unknown }).masked);
  const ended =
    session.endedAt === null ? 'live' : `ended ${formatTime(session.endedAt)} (${session.endReason ?? '?'})`;
  return [
    session.id,
    session.protocol,
    session.requester,
    `${session.target}:${session.level}`,
    session.login && `as ${session.login}`,
    `grant ${session.grantId}`,
    `from ${session.clientAddress}`,
    `started ${formatTime(session.startedAt)}`,
    ended,
    ...formatActivity(session),
    masked && `masked ${masked}`,
  ]
    .filter(Boolean)
    .join('  ');
}

/** One line of a session's timeline, with the offset from the session's start. */
export function formatEventLine(session: SessionRecord, event: SessionEventRecord): string {
  const offset = `+${((event.at - session.startedAt) / 1000).toFixed(3)}s`.padEnd(10);
  const d = event.data as Record<string, unknown>;
  switch (event.kind) {
    case 'connect':
      return `${offset}connect    user=${d.user} database=${d.database} application=${d.application || '-'} tls=${d.tls ? 'yes' : 'no'}`;
    case 'statement':
    case 'blocked': {
      const verdict = d.verdict as { action?: string; rule?: string } | undefined;
      const head =
        event.kind === 'blocked'
          ? `BLOCKED    rule ${verdict?.rule ?? '?'}`
          : `statement  ${d.ms}ms ${d.rows} rows${d.error ? ` ERROR ${d.error}` : ''}${d.outcome ? ` (${d.outcome})` : ''}`;
      const masked = formatCounts(d.masked);
      const params =
        Array.isArray(d.params) && d.params.length > 0 ? `  params ${JSON.stringify(d.params)}` : '';
      const lines = [
        `${offset}${head}${masked ? `  masked ${masked}` : ''}  ${String(d.sql).replace(/\s+/g, ' ')}${params}`,
      ];
      if (Array.isArray(d.result)) {
        for (const row of d.result as unknown[][]) lines.push(`${' '.repeat(12)}| ${row.join(' | ')}`);
      }
      return lines.join('\n');
    }
    default:
      return `${offset}${event.kind.padEnd(11)}${JSON.stringify(d)}`;
  }
}

/** `warden sessions list [--user u] [--target t] [--json]`: sessions of every protocol, newest first. */
export async function runSessionsCommand(
  verb: string | undefined,
  flags: Flags,
  config: Config,
  io: Io,
): Promise<number> {
  if (verb !== 'list') throw new UsageError('usage: warden sessions list [--user u] [--target t] [--json]');
  const store = await openConfiguredStore(config, io.env, undefined, { mustExist: true });
  try {
    const sessions = await store.listSessions({
      ...(typeof flags.user === 'string' ? { requester: flags.user } : {}),
      ...(typeof flags.target === 'string' ? { target: flags.target } : {}),
      limit: 200,
    });
    if (flags.json) io.out(JSON.stringify(sessions));
    else if (sessions.length === 0) io.out('no recorded sessions');
    else for (const session of sessions) io.out(formatSessionLine(session));
    return ExitCode.Ok;
  } finally {
    await store.close();
  }
}

/** `warden replay <session> [--format text|jsonl]`. */
export async function runReplayCommand(
  id: string | undefined,
  flags: Flags,
  config: Config,
  io: Io,
): Promise<number> {
  if (!id) throw new UsageError('usage: warden replay <session> [--format jsonl]');
  const format = flags.format ?? 'text';
  if (format !== 'text' && format !== 'jsonl') throw new UsageError('--format is text or jsonl');
  const store = await openConfiguredStore(config, io.env, undefined, { mustExist: true });
  try {
    const session = await store.getSession(id);
    // SSH sessions are recorded as terminal casts: play them in the terminal.
    if (session?.protocol === 'ssh') return await replaySshSession(id, flags, io, { store });
    if (!session) {
      io.err(`warden: no recorded session ${id} (ERR_SESSION_NOT_FOUND)`);
      return ExitCode.Refused;
    }
    const events = await store.listSessionEvents(id);
    if (format === 'jsonl') {
      io.out(JSON.stringify({ type: 'session', ...session }));
      for (const event of events) io.out(JSON.stringify({ type: 'event', ...event }));
      return ExitCode.Ok;
    }
    io.out(formatSessionLine(session));
    for (const event of events) io.out(formatEventLine(session, event));
    return ExitCode.Ok;
  } finally {
    await store.close();
  }
}
