import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { SessionRecord } from '../../../broker/ports/proxy.ts';
import type { SqlStore } from '../../../broker/store/sql-store.ts';
import { replaySshSession } from '../../../cli/commands/ssh-replay.ts';
import { ExitCode } from '../../../cli/output.ts';
import { schedulePlayback } from '../../../proxy/ssh/recording/asciicast-player.ts';
import { parseAsciicast } from '../../../proxy/ssh/recording/asciicast-reader.ts';
import { encodeFrame, encodeHeaderFrame, FrameType } from '../../../proxy/ssh/recording/frames.ts';
import { waitFor } from '../../helpers/broker-fixture.ts';
import { captureIo, type SshCliFixture, startSshCliFixture } from '../../helpers/ssh-cli-fixture.ts';
import { clientOptions, run, writeIdentity } from '../../helpers/ssh-proxy-fixture.ts';
import { TEST_USER } from '../../helpers/sshd.ts';

/** Replays through the exported function with an instant sleep; returns what was written and slept. */
async function replay(cli: SshCliFixture, id: string, flags: Record<string, string> = {}) {
  const written: string[] = [];
  const slept: number[] = [];
  const io = captureIo(cli.env);
  const code = await replaySshSession(id, flags, io, {
    store: cli.fx.store,
    sleep: async (ms) => {
      slept.push(ms);
    },
    write: (chunk) => written.push(chunk),
  });
  return { code, output: written.join(''), slept, err: io.errText(), out: io.outText() };
}

const HEADER = JSON.stringify({ version: 2, width: 80, height: 24, timestamp: 1_700_000_000 });

describe('warden ssh replay', () => {
  let cli: SshCliFixture;
  /** A session recorded through the proxy, and what the client saw. */
  let recorded: { id: string; stdout: string; recording: string };

  /** Stores a session; `recording` is asciicast text as versions before frames stored it. */
  const insertSession = async (
    id: string,
    { recording, ...patch }: Partial<SessionRecord> & { recording?: string },
  ) => {
    const { grant } = await cli.fx.grant();
    await cli.fx.store.insertSession({
      id,
      protocol: 'ssh',
      grantId: grant.id,
      requester: 'alice',
      target: 'web-1',
      level: 'shell',
      login: TEST_USER,
      clientAddress: '127.0.0.1',
      startedAt: Date.now(),
      endedAt: Date.now(),
      endReason: 'ended',
      summary: {},
      ...patch,
    });
    if (recording !== undefined) {
      await (cli.fx.store as SqlStore).kysely
        .updateTable('warden_sessions')
        .set({ recording })
        .where('id', '=', id)
        .execute();
    }
  };

  before(async () => {
    cli = await startSshCliFixture();
    const { grant, credential } = await cli.fx.grant();
    const key = writeIdentity(cli.fx.dir, credential.privateKey!.reveal(), credential.certificate);
    const result = await run('ssh', [
      ...clientOptions(cli.fx.proxyPort, key),
      `${TEST_USER}+web-1@127.0.0.1`,
      "printf 'h\\303\\251llo\\r\\n'; sleep 0.3; printf '\\033[1mbold\\033[0m '; sleep 0.2; id -un",
    ]);
    assert.equal(result.code, 0, result.stderr);
    const session = await waitFor(async () => {
      const [first] = await cli.fx.store.listSessions({ grantId: grant.id });
      return first?.endedAt ? first : undefined;
    });
    const stored = await cli.fx.recordingOf(session!);
    recorded = { id: session!.id, stdout: result.stdout, recording: stored! };
  });
  after(async () => {
    await cli?.close();
  });

  it('plays a session recorded through the proxy back to the bytes the client saw, at its pace', async () => {
    assert.equal(recorded.stdout, `héllo\r\n\u001b[1mbold\u001b[0m ${TEST_USER}\n`);
    const played = await replay(cli, recorded.id);
    assert.equal(played.code, ExitCode.Ok, played.err);
    assert.equal(played.output, recorded.stdout);
    const schedule = schedulePlayback(parseAsciicast(recorded.recording));
    assert.deepEqual(
      played.slept,
      schedule.map((s) => s.delay).filter((d) => d > 0),
    );
    // The two sleeps in the command are in the recording.
    assert.ok(played.slept.filter((d) => d >= 150).length >= 2, JSON.stringify(played.slept));
    const faster = await replay(cli, recorded.id, { speed: '2' });
    assert.equal(faster.output, recorded.stdout);
    assert.deepEqual(
      faster.slept,
      schedulePlayback(parseAsciicast(recorded.recording), { speed: 2 })
        .map((s) => s.delay)
        .filter((d) => d > 0),
    );
  });

  it('--speed and --idle-limit shape the pauses; input, markers and resizes are not played', async () => {
    const recording = [
      HEADER,
      JSON.stringify([0.5, 'o', 'a']),
      JSON.stringify([1.0, 'i', 'typed']),
      JSON.stringify([4.5, 'o', 'b']),
      JSON.stringify([4.6, 'r', '100x30']),
      JSON.stringify([4.7, 'm', 'blocked: rm -rf /']),
      JSON.stringify([5.0, 'o', 'c']),
      '',
    ].join('\n');
    await insertSession('stimed000001', { recording });
    const cases: [Record<string, string>, number[]][] = [
      [{}, [500, 4000, 500]],
      [{ speed: '2' }, [250, 2000, 250]],
      [{ 'idle-limit': '1' }, [500, 1000, 500]],
      [{ speed: '2', 'idle-limit': '1' }, [250, 500, 250]],
      [{ speed: '0.5' }, [1000, 8000, 1000]],
    ];
    for (const [flags, delays] of cases) {
      const played = await replay(cli, 'stimed000001', flags);
      assert.equal(played.code, ExitCode.Ok, played.err);
      assert.equal(played.output, 'abc');
      assert.deepEqual(played.slept, delays, JSON.stringify(flags));
    }
  });

  it('--export writes the asciicast v2 file (0600), through the warden entry point', async () => {
    const file = join(cli.krlFile, '..', 'session.cast');
    const result = await cli.warden([
      'ssh',
      'replay',
      recorded.id,
      '--export',
      file,
      '--config',
      cli.configFile,
    ]);
    assert.equal(result.code, ExitCode.Ok, result.err);
    assert.match(result.out, /asciicast v2, \d+ events/);
    const text = readFileSync(file, 'utf8');
    assert.equal(text, recorded.recording);
    const cast = parseAsciicast(text);
    assert.equal(cast.header.version, 2);
    assert.equal(
      cast.events
        .filter((e) => e[1] === 'o')
        .map((e) => e[2])
        .join(''),
      recorded.stdout,
    );
    assert.equal(statSync(file).mode & 0o777, 0o600);
  });

  it('--format jsonl prints one event per line', async () => {
    const result = await cli.warden([
      'ssh',
      'replay',
      recorded.id,
      '--format',
      'jsonl',
      '--config',
      cli.configFile,
    ]);
    assert.equal(result.code, ExitCode.Ok, result.err);
    const events = result.out
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as { time: number; type: string; data: string });
    assert.deepEqual(
      events.map((e) => [e.time, e.type, e.data]),
      parseAsciicast(recorded.recording).events,
    );
  });

  it('a live session replays as far as it is stored, and says it is live', async () => {
    const startedAt = Date.now();
    await insertSession('slivepieces1', { startedAt, endedAt: null, endReason: null });
    // What a proxy has stored so far: the header and some output, no end frame yet.
    await cli.fx.store.appendSessionFrames(
      'slivepieces1',
      0,
      encodeHeaderFrame({ width: 80, height: 24 }, startedAt),
    );
    await cli.fx.store.appendSessionFrames(
      'slivepieces1',
      1,
      encodeFrame(FrameType.Output, startedAt + 10, Buffer.from('$ tail -f app.log\r\n')),
    );
    const result = await cli.warden([
      'ssh',
      'replay',
      'slivepieces1',
      '--format',
      'jsonl',
      '--config',
      cli.configFile,
    ]);
    assert.equal(result.code, ExitCode.Ok, result.err);
    assert.deepEqual(JSON.parse(result.out), { time: 0.01, type: 'o', data: '$ tail -f app.log\r\n' });
    assert.match(result.err, /session slivepieces1 is still live: this is its recording so far/);
  });

  it('refuses what it cannot replay, with a code', async () => {
    await insertSession('spostgres001', { protocol: 'postgres', recording: 'irrelevant' });
    await insertSession('slive0000001', { endedAt: null, endReason: null });
    await insertSession('stransfer001', {});
    await insertSession('sbroken00001', { recording: '{"version":1}\n' });
    await insertSession('sbrokenframe', {});
    await cli.fx.store.appendSessionFrames(
      'sbrokenframe',
      0,
      encodeFrame(FrameType.Output, 1, Buffer.from('x')),
    );
    await insertSession('sbackward001', {
      recording: `${HEADER}\n[2,"o","a"]\n[1,"o","b"]\n`,
    });
    const cases: [string, string[], number, RegExp][] = [
      ['an unknown session', ['snosuchthing'], ExitCode.Refused, /\(ERR_SSH_CLI_SESSION_NOT_FOUND\)/],
      ['a Postgres session', ['spostgres001'], ExitCode.Refused, /\(ERR_SSH_CLI_SESSION_NOT_SSH\)/],
      [
        'a live session with nothing stored yet',
        ['slive0000001'],
        ExitCode.Refused,
        /no recording yet .*\(ERR_SSH_CLI_NO_RECORDING\)/,
      ],
      ['a file transfer', ['stransfer001'], ExitCode.Refused, /not recorded \(ERR_SSH_CLI_NO_RECORDING\)/],
      ['a damaged recording', ['sbroken00001'], ExitCode.Refused, /\(ERR_RECORDING_HEADER\)/],
      ['damaged frames', ['sbrokenframe'], ExitCode.Refused, /no header frame first \(ERR_RECORDING_FRAME\)/],
      ['time going backwards', ['sbackward001'], ExitCode.Refused, /\(ERR_RECORDING_TIME\)/],
      ['no session id', [], ExitCode.Usage, /usage: warden ssh/],
      ['a zero speed', [recorded.id, '--speed', '0'], ExitCode.Usage, /--speed must be a positive number/],
      ['a speed that is no number', [recorded.id, '--speed', 'fast'], ExitCode.Usage, /--speed/],
      ['a negative idle limit', [recorded.id, '--idle-limit', '-1'], ExitCode.Usage, /--idle-limit/],
      ['an unknown format', [recorded.id, '--format', 'csv'], ExitCode.Usage, /only --format jsonl/],
      [
        'an export into a missing directory',
        [recorded.id, '--export', '/nonexistent-warden-dir/x.cast'],
        ExitCode.Refused,
        /\(ERR_SSH_CLI_WRITE_FAILED\)/,
      ],
    ];
    for (const [name, args, code, pattern] of cases) {
      const result = await cli.warden(['ssh', 'replay', ...args, '--config', cli.configFile]);
      assert.equal(result.code, code, `${name}: ${result.err}`);
      assert.match(result.err, pattern, name);
    }
  });
});
