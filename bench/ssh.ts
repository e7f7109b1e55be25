/**
 * SSH proxy benchmark, measured so both paths are treated alike:
 *
 * - throughput: `cat` of a 100 MB file with the real OpenSSH client, straight to sshd and through
 *   the proxy (recording on, 32 MiB cap), in alternating pairs so machine load hits both; the time
 *   is taken by `bash`'s `time` in its own process, not by the proxy's event loop (which would add
 *   the proxy's own pauses to the proxied figure only). Ratio: median of the pairs' direct/proxy.
 * - echo: one keystroke's round trip on a PTY (`stty raw -echo; cat`), from a client in its own
 *   process (sharing neither the proxy's event loop nor its heap and GC threads). Both legs use the same client code, the same
 *   algorithms and TCP_NODELAY, so the client's own cost is the same on both and cancels out.
 *   Keystrokes alternate between the legs (which leg goes first alternates too), so load from
 *   elsewhere on the machine hits both alike. Added p99: in each of {@link ECHO_BLOCKS} blocks,
 *   proxy p99 − direct p99, and the median of the blocks. A difference of quantiles, not the p99 of
 *   paired differences: two keystrokes of a pair never run at the same instant, so a pair's
 *   difference carries the noise of both legs and its p99 measures the machine's jitter rather than
 *   the proxy. The median over blocks keeps one burst of load in one block from setting the figure.
 * - proxy_loop_max_block_ms: the longest the proxy's event loop was blocked during the proxied
 *   transfers, each of which stores a full 32 MiB recording; recorded_mib_per_transfer says what
 *   the store holds of the last one.
 * - session cut: how long after a grant's expiry a live session is closed (the client sees the
 *   message).
 *
 * With `json`, the last line is `{"throughput_ratio":…,"echo_added_p99_ms":…,"session_cut_ms":…}`.
 */
import { fork, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import {
  clientOptions,
  run as runProgram,
  startSshProxyFixture,
  writeIdentity,
} from '../test/helpers/ssh-proxy-fixture.ts';
import { TEST_USER } from '../test/helpers/sshd.ts';
import { note, percentile } from './_stats.ts';

const FILE = '/tmp/warden-bench-100mb.bin';
const SIZE_MB = 100;
const PAIRS = 5;
const ECHO_WARMUP = 100;
const ECHO_BLOCKS = 5;
/** Keystrokes per leg and block. */
const KEYSTROKES = 1_000;
/** One set of algorithms for both echo legs (OpenSSH and ssh2 both offer them). */
const ECHO_ALGORITHMS = {
  cipher: ['aes128-gcm@openssh.com'],
  kex: ['curve25519-sha256'],
  serverHostKey: ['ssh-ed25519'],
};

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** Wall time (ms) of `ssh … cat FILE`, taken by bash in its own process. */
async function timeCat(args: string[]): Promise<number> {
  const command = ['ssh', ...args, `cat ${FILE}`].map(quote).join(' ');
  const result = await runProgram('bash', [
    '-c',
    `set -o pipefail; TIMEFORMAT=%3R; { time ${command} | wc -c; } 2>&1`,
  ]);
  const [bytes, seconds] = result.stdout.trim().split(/\s+/);
  if (result.code !== 0 || Number(bytes) !== SIZE_MB * 1024 * 1024) {
    throw new Error(`cat failed (${result.code}): ${result.stdout} ${result.stderr}`);
  }
  return Number(seconds) * 1000;
}

/** The echo client, in plain JavaScript so its process needs no TypeScript loader. */
const ECHO_CLIENT = `
process.once('message', (job) => run(job).then((r) => process.send(r), (e) => process.send({ error: String(e) })));
async function run({ ssh2, legs, keystrokes, warmup, blocks, algorithms }) {
const { Client } = require(ssh2);
async function open(config) {
  const client = new Client();
  await new Promise((resolve, reject) => { client.once('ready', resolve).once('error', reject); client.connect({ ...config, algorithms }); client.setNoDelay(true); });
  const channel = await new Promise((resolve, reject) =>
    client.exec('stty raw -echo; cat', { pty: { term: 'xterm', cols: 80, rows: 24 } }, (e, c) => (e ? reject(e) : resolve(c))));
  const leg = { client, channel, received: 0, wanted: 0, wake: undefined };
  channel.on('data', (d) => { leg.received += d.length; if (leg.received >= leg.wanted && leg.wake) { const w = leg.wake; leg.wake = undefined; w(); } });
  return leg;
}
function keystroke(leg) {
  const started = process.hrtime.bigint();
  leg.wanted += 1;
  return new Promise((resolve) => {
    leg.wake = () => resolve(Number(process.hrtime.bigint() - started) / 1e6);
    leg.channel.write('x');
  });
}
  const opened = [];
  for (const config of legs) opened.push(await open(config));
  await new Promise((r) => setTimeout(r, 300));
  for (let i = 0; i < warmup; i++) for (const leg of opened) await keystroke(leg);
  const result = [];
  for (let b = 0; b < blocks; b++) {
    const times = legs.map(() => []);
    for (let i = 0; i < keystrokes; i++) {
      for (let k = 0; k < opened.length; k++) {
        const j = i % 2 === 0 ? k : opened.length - 1 - k;
        times[j].push(await keystroke(opened[j]));
      }
    }
    result.push(times);
  }
  for (const leg of opened) leg.client.end();
  return result;
}
`;

/** Round trips (ms) per block and leg, each sorted; the client runs in a process of its own. */
function echoTimes(dir: string, legs: object[]): Promise<number[][][]> {
  const script = join(dir, 'echo-client.cjs');
  writeFileSync(script, ECHO_CLIENT);
  return new Promise((resolve, reject) => {
    const child = fork(script, { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    child.send({
      ssh2: createRequire(import.meta.url).resolve('ssh2'),
      legs,
      keystrokes: KEYSTROKES,
      warmup: ECHO_WARMUP,
      blocks: ECHO_BLOCKS,
      algorithms: ECHO_ALGORITHMS,
    });
    child.once('message', (result: number[][][] | { error: string }) => {
      child.kill();
      if (Array.isArray(result)) resolve(result.map((block) => block.map((t) => t.sort((a, b) => a - b))));
      else reject(new Error(result.error));
    });
    child.once('error', reject);
  });
}

/** Milliseconds from a grant's expiry to the expiry message reaching a live client. */
async function sessionCut(args: string[], expiresAt: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn('ssh', [...args, 'echo started; sleep 30'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    let seen = 0;
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      if (!seen && stderr.includes('has expired')) seen = Date.now();
    });
    child.once('error', reject);
    child.once('close', () =>
      seen ? resolve(seen - expiresAt) : reject(new Error(`no expiry message: ${stderr}`)),
    );
  });
}

const round = (v: number) => Math.round(v * 1000) / 1000;

/** Runs the SSH benchmark; returns the figures. */
export async function run(args: { json: boolean }): Promise<Record<string, number>> {
  const fx = await startSshProxyFixture({ proxy: { maxRecordingBytes: 32 * 1024 * 1024 } });
  try {
    const { grant, credential } = await fx.grant('shell', '2h');
    const key = writeIdentity(fx.dir, credential.privateKey!.reveal(), credential.certificate);
    const made = await runProgram('sh', [
      '-c',
      `head -c ${SIZE_MB}M /dev/urandom | base64 -w 0 | head -c ${SIZE_MB}M > ${FILE}; chmod 644 ${FILE}`,
    ]);
    if (made.code !== 0) throw new Error(made.stderr);
    const direct = [...clientOptions(fx.sshd.port, key), `${TEST_USER}@127.0.0.1`];
    const proxied = [...clientOptions(fx.proxyPort, key), `${TEST_USER}+web-1@127.0.0.1`];
    note('throughput: warm-up');
    await timeCat(direct);
    await timeCat(proxied);
    const ratios: number[] = [];
    const directMs: number[] = [];
    const proxyMs: number[] = [];
    let loopMaxMs = 0;
    for (let i = 0; i < PAIRS; i++) {
      directMs.push(await timeCat(direct));
      // A fresh histogram each time: a re-enabled one counts the pause while it was off as a delay.
      const loop = monitorEventLoopDelay({ resolution: 1 });
      loop.enable();
      proxyMs.push(await timeCat(proxied));
      // The session's last recording piece is stored just after the client is gone.
      await new Promise((resolve) => setTimeout(resolve, 200));
      loop.disable();
      loopMaxMs = Math.max(loopMaxMs, loop.max / 1e6);
      ratios.push(directMs.at(-1)! / proxyMs.at(-1)!);
      note(`throughput pair ${i + 1}: direct ${directMs.at(-1)} ms, proxy ${proxyMs.at(-1)} ms`);
    }
    // What the store holds of the last transfer: proof the proxy recorded it, up to the cap.
    const [last] = await fx.store.listSessions({ grantId: grant.id, limit: 1 });
    const recorded = (await fx.store.readSessionFrames(last!.id)).reduce((n, piece) => n + piece.length, 0);
    ratios.sort((a, b) => a - b);
    directMs.sort((a, b) => a - b);
    proxyMs.sort((a, b) => a - b);
    note('echo');
    const blocks = await echoTimes(fx.dir, [
      { host: '127.0.0.1', port: fx.sshd.port, username: TEST_USER, privateKey: fx.upstreamKey },
      {
        host: '127.0.0.1',
        port: fx.proxyPort,
        username: `${TEST_USER}+web-1`,
        password: credential.password!.reveal(),
      },
    ]);
    const added = blocks.map(([d, p]) => percentile(p!, 99) - percentile(d!, 99)).sort((a, b) => a - b);
    const directEcho = blocks.flatMap(([d]) => d!).sort((a, b) => a - b);
    const proxyEcho = blocks.flatMap(([, p]) => p!).sort((a, b) => a - b);
    note(`echo added p99 per block (ms): ${added.map(round).join(', ')}`);
    note('session cut at expiry');
    const short = await fx.grant('shell', '3s');
    const shortKey = writeIdentity(
      fx.dir,
      short.credential.privateKey!.reveal(),
      short.credential.certificate,
    );
    const cut = await sessionCut(
      [...clientOptions(fx.proxyPort, shortKey), `${TEST_USER}+web-1@127.0.0.1`],
      short.grant.expiresAt!,
    );
    const figures = {
      throughput_ratio: round(percentile(ratios, 50)),
      echo_added_p99_ms: round(percentile(added, 50)),
      session_cut_ms: Math.round(cut),
      direct_mb_per_s: Math.round((SIZE_MB / percentile(directMs, 50)) * 10_000) / 10,
      proxy_mb_per_s: Math.round((SIZE_MB / percentile(proxyMs, 50)) * 10_000) / 10,
      echo_added_p50_ms: round(percentile(proxyEcho, 50) - percentile(directEcho, 50)),
      echo_direct_p50_ms: round(percentile(directEcho, 50)),
      echo_proxy_p50_ms: round(percentile(proxyEcho, 50)),
      echo_direct_p99_ms: round(percentile(directEcho, 99)),
      echo_proxy_p99_ms: round(percentile(proxyEcho, 99)),
      proxy_loop_max_block_ms: round(loopMaxMs),
      recorded_mib_per_transfer: Math.round((recorded / 1024 / 1024) * 10) / 10,
    };
    if (!args.json) for (const [name, value] of Object.entries(figures)) console.log(`${name}: ${value}`);
    console.log(
      JSON.stringify({
        throughput_ratio: figures.throughput_ratio,
        echo_added_p99_ms: figures.echo_added_p99_ms,
        session_cut_ms: figures.session_cut_ms,
      }),
    );
    return figures;
  } finally {
    await fx.close();
    await runProgram('rm', ['-f', FILE]);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await run({ json: process.argv.includes('--json') });
}
