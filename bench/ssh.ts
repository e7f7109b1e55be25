/**
 * SSH proxy benchmark: `cat` of a 100 MB file through the proxy versus straight to sshd (real
 * OpenSSH client both times), and the round trip of one echoed keystroke on a PTY through the
 * proxy minus straight to sshd (ssh2 client, 500 keystrokes each). Prints figures; with `json`, the
 * last line is `{"throughput_ratio":…,"echo_added_p99_ms":…}`.
 */
import { spawn } from 'node:child_process';
import ssh2 from 'ssh2';
import {
  clientOptions,
  run as runProgram,
  startSshProxyFixture,
  writeIdentity,
} from '../test/helpers/ssh-proxy-fixture.ts';
import { TEST_USER } from '../test/helpers/sshd.ts';

const FILE = '/tmp/warden-bench-100mb.bin';
const SIZE_MB = 100;
const KEYSTROKES = 500;

async function timeCat(args: string[]): Promise<number> {
  const started = process.hrtime.bigint();
  await new Promise<void>((resolve, reject) => {
    const child = spawn('ssh', [...args, `cat ${FILE}`], { stdio: ['ignore', 'pipe', 'inherit'] });
    let bytes = 0;
    child.stdout.on('data', (d: Buffer) => {
      bytes += d.length;
    });
    child.once('error', reject);
    child.once('close', (code) =>
      code === 0 && bytes === SIZE_MB * 1024 * 1024
        ? resolve()
        : reject(new Error(`cat failed: ${code}, ${bytes} bytes`)),
    );
  });
  return Number(process.hrtime.bigint() - started) / 1e6;
}

async function echoTimes(connect: ssh2.ConnectConfig): Promise<number[]> {
  const client = new ssh2.Client();
  await new Promise<void>((resolve, reject) => {
    client.once('ready', () => resolve()).once('error', reject);
    client.connect(connect);
  });
  const channel = await new Promise<ssh2.ClientChannel>((resolve, reject) =>
    client.exec('stty raw -echo; cat', { pty: { term: 'xterm', cols: 80, rows: 24 } }, (e, c) =>
      e ? reject(e) : resolve(c),
    ),
  );
  const times: number[] = [];
  let waiting: (() => void) | undefined;
  channel.on('data', () => waiting?.());
  await new Promise((r) => setTimeout(r, 300));
  for (let i = 0; i < KEYSTROKES + 20; i++) {
    const started = process.hrtime.bigint();
    await new Promise<void>((resolve) => {
      waiting = resolve;
      channel.write('x');
    });
    if (i >= 20) times.push(Number(process.hrtime.bigint() - started) / 1e6);
  }
  client.end();
  return times.sort((a, b) => a - b);
}

const p = (sorted: number[], q: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;

/** Runs the SSH benchmark; returns the figures. */
export async function run(args: { json: boolean }): Promise<Record<string, number>> {
  const fx = await startSshProxyFixture({ proxy: { maxRecordingBytes: 32 * 1024 * 1024 } });
  try {
    const { credential } = await fx.grant('shell', '2h');
    const key = writeIdentity(fx.dir, credential.privateKey!.reveal(), credential.certificate);
    const made = await runProgram('sh', [
      '-c',
      `head -c ${SIZE_MB}M /dev/urandom | base64 -w 0 | head -c ${SIZE_MB}M > ${FILE}; chmod 644 ${FILE}`,
    ]);
    if (made.code !== 0) throw new Error(made.stderr);
    const direct = [...clientOptions(fx.sshd.port, key), `${TEST_USER}@127.0.0.1`];
    const proxied = [...clientOptions(fx.proxyPort, key), `${TEST_USER}+web-1@127.0.0.1`];
    await timeCat(direct);
    await timeCat(proxied);
    const directMs = Math.min(await timeCat(direct), await timeCat(direct), await timeCat(direct));
    const proxyMs = Math.min(await timeCat(proxied), await timeCat(proxied), await timeCat(proxied));
    const upstreamKey = fx.upstreamKey;
    const directEcho = await echoTimes({
      host: '127.0.0.1',
      port: fx.sshd.port,
      username: TEST_USER,
      privateKey: upstreamKey,
    });
    const proxyEcho = await echoTimes({
      host: '127.0.0.1',
      port: fx.proxyPort,
      username: `${TEST_USER}+web-1`,
      password: credential.password.reveal(),
    });
    const figures = {
      throughput_ratio: Math.round((directMs / proxyMs) * 1000) / 1000,
      echo_added_p99_ms: Math.round((p(proxyEcho, 0.99) - p(directEcho, 0.99)) * 1000) / 1000,
      direct_mb_per_s: Math.round((SIZE_MB / directMs) * 1000 * 10) / 10,
      proxy_mb_per_s: Math.round((SIZE_MB / proxyMs) * 1000 * 10) / 10,
      echo_direct_p50_ms: Math.round(p(directEcho, 0.5) * 1000) / 1000,
      echo_proxy_p50_ms: Math.round(p(proxyEcho, 0.5) * 1000) / 1000,
      echo_direct_p99_ms: Math.round(p(directEcho, 0.99) * 1000) / 1000,
      echo_proxy_p99_ms: Math.round(p(proxyEcho, 0.99) * 1000) / 1000,
    };
    if (!args.json) for (const [name, value] of Object.entries(figures)) console.log(`${name}: ${value}`);
    console.log(
      JSON.stringify({
        throughput_ratio: figures.throughput_ratio,
        echo_added_p99_ms: figures.echo_added_p99_ms,
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
