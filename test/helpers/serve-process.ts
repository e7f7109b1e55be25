/**
 * `warden serve` as a real child process for tests: started from a config file with the
 * environment a test gives, its output kept (tests assert no secret reached it), killed with
 * SIGKILL to play a crash; and calls to its HTTP API.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { waitForHealth } from './broker-fixture.ts';

/** The `warden` entry point. */
export const WARDEN = join(import.meta.dirname, '../../cli/warden.js');

/**
 * The `broker:` section of a `serve` test: the API on 127.0.0.1:`port`, the embedded store in
 * `dir`, a one-second sweep, and `tokens` (one admin token from WARDEN_ADMIN_TOKEN by default).
 */
export function serveBroker(
  dir: string,
  port: number,
  tokens: unknown[] = [{ name: 'admin', role: 'admin', secret: { env: 'WARDEN_ADMIN_TOKEN' } }],
): Record<string, unknown> {
  return {
    listen: `127.0.0.1:${port}`,
    store: { kind: 'embedded', path: join(dir, 'warden.db') },
    sweep_interval: '1s',
    tokens,
  };
}

/** One `warden serve` process at a time, restartable. */
export class ServeProcess {
  child: ChildProcess | undefined;
  /** Everything the processes wrote (stdout and stderr, every start). */
  output = '';

  constructor(
    private readonly configFile: string,
    private readonly url: string,
    private readonly env: () => NodeJS.ProcessEnv,
  ) {}

  /** Starts the process and waits until `/v1/health` answers. */
  async start(): Promise<void> {
    const child = spawn(process.execPath, [WARDEN, 'serve', '--config', this.configFile], {
      env: this.env(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    child.stdout!.on('data', (d) => {
      this.output += d;
    });
    child.stderr!.on('data', (d) => {
      this.output += d;
    });
    await waitForHealth(this.url);
  }

  /** SIGKILL, as a crash; resolves once the process is gone. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }
}

/** The answer of an API call, its body read loosely. */
export interface ApiReply {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: response bodies are read loosely in these tests
  body: Record<string, any>;
}

/**
 * Calls the broker API at `url` with a bearer `token` (none when null); `raw` is sent as the body
 * as it is (malformed JSON tests), otherwise `body` as JSON.
 */
export async function callApi(
  url: string,
  token: string | null,
  method: string,
  path: string,
  body?: unknown,
  raw?: string,
): Promise<ApiReply> {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), 'content-type': 'application/json' },
    ...(raw !== undefined ? { body: raw } : body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, body: (await res.json()) as ApiReply['body'] };
}
