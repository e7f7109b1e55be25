import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import type { ProxyPorts } from '../../../broker/ports/proxy.ts';
import { PIECE_BYTES } from '../../../proxy/ssh/channel-recorder.ts';
import { parseAsciicast } from '../../../proxy/ssh/recording/asciicast-reader.ts';
import { waitFor } from '../../helpers/broker-fixture.ts';
import {
  clientOptions,
  type SshProxyFixture,
  startSshProxyFixture,
  writeIdentity,
} from '../../helpers/ssh-proxy-fixture.ts';
import { TEST_USER } from '../../helpers/sshd.ts';

/** `base64 -w 0` of 3 000 000 zero bytes: 4 000 000 `A`s. */
const BIG_OUTPUT = 'head -c 3000000 /dev/zero | base64 -w 0';

/** Watches the recording writes, and delays each by `delayMs`. */
function watchPorts(ports: ProxyPorts) {
  const watch = {
    pieces: [] as { id: string; seq: number; length: number }[],
    finished: new Set<string>(),
    inFlight: 0,
    maxInFlight: 0,
    delayMs: 0,
  };
  const sessions = ports.sessions;
  const wrapped: ProxyPorts = {
    ...ports,
    sessions: {
      ...sessions,
      async appendSessionFrames(id, seq, piece) {
        watch.inFlight++;
        watch.maxInFlight = Math.max(watch.maxInFlight, watch.inFlight);
        if (watch.delayMs) await new Promise((resolve) => setTimeout(resolve, watch.delayMs));
        await sessions.appendSessionFrames(id, seq, piece);
        watch.pieces.push({ id, seq, length: piece.length });
        watch.inFlight--;
      },
      async endSession(id, end) {
        await sessions.endSession(id, end);
        watch.finished.add(id);
      },
    },
  };
  return { watch, wrapped };
}

describe('SSH proxy: recordings are stored in pieces during the session', () => {
  let fx: SshProxyFixture;
  let watch: ReturnType<typeof watchPorts>['watch'];
  before(async () => {
    fx = await startSshProxyFixture({
      wrapPorts: (ports) => {
        const watched = watchPorts(ports);
        watch = watched.watch;
        return watched.wrapped;
      },
    });
  });
  after(async () => {
    await fx?.close();
  });

  /** Runs `command` through the proxy; its stdin stays open until `whileOpen` resolves. */
  async function exec(command: string, whileOpen: () => Promise<void> = async () => {}) {
    const { grant, credential } = await fx.grant('shell', '30m');
    const key = writeIdentity(fx.dir, credential.privateKey!.reveal(), credential.certificate);
    const child = spawn('ssh', [
      ...clientOptions(fx.proxyPort, key),
      `${TEST_USER}+web-1@127.0.0.1`,
      command,
    ]);
    let bytes = 0;
    child.stdout.on('data', (d: Buffer) => {
      bytes += d.length;
    });
    const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
    await whileOpen();
    child.stdin.end();
    const code = await exited;
    const listed = await waitFor(async () => {
      const list = await fx.store.listSessions({ grantId: grant.id });
      return list.length === 1 && watch.finished.has(list[0]!.id) ? list[0] : undefined;
    });
    const session = (await fx.store.getSession(listed!.id))!;
    return { code, bytes, session };
  }

  const outputOf = (recording: string) =>
    parseAsciicast(recording)
      .events.filter((e) => e[1] === 'o')
      .map((e) => e[2])
      .join('');

  it('regression: a long session is written in bounded pieces while it runs, not in one write at its end', async () => {
    watch.pieces.length = 0;
    const { code, bytes, session } = await exec(`${BIG_OUTPUT}; cat > /dev/null`, async () => {
      // The command waits for stdin: the session is live while its pieces reach the store.
      await waitFor(() => watch.pieces.length >= 10, 30_000, 'recording pieces of a live session');
      assert.equal(watch.finished.size, 0);
    });
    assert.equal(code, 0);
    assert.equal(bytes, 4_000_000);
    const pieces = watch.pieces.filter((p) => p.id === session.id);
    assert.deepEqual(
      pieces.map((p) => p.seq),
      pieces.map((_, i) => i),
    );
    for (const piece of pieces) assert.ok(piece.length <= PIECE_BYTES, `a piece of ${piece.length} bytes`);
    assert.equal(outputOf(await fx.recordingOf(session)), 'A'.repeat(4_000_000));
    assert.equal(session.summary.truncated, false);
  });

  it('a slow store holds output back (one write at a time) and the recording is still complete', async () => {
    watch.pieces.length = 0;
    watch.maxInFlight = 0;
    watch.delayMs = 20;
    try {
      const { code, bytes, session } = await exec(BIG_OUTPUT);
      assert.equal(code, 0);
      assert.equal(bytes, 4_000_000);
      assert.equal(watch.maxInFlight, 1);
      assert.equal(outputOf(await fx.recordingOf(session)), 'A'.repeat(4_000_000));
    } finally {
      watch.delayMs = 0;
    }
  });
});
