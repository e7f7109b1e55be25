/**
 * Drives `npm start` (`warden serve --demo`) as a newcomer would: a child process whose console is
 * typed into through stdin and read from stdout.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { waitFor } from './broker-fixture.ts';
import { type PsqlLogin, parseLoginFromDm } from './psql.ts';

const WARDEN = join(import.meta.dirname, '../../cli/warden.js');

/** A running demo process and what it printed so far. */
export class DemoProcess {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  exitCode: number | null | undefined;
  readonly exited: Promise<number | null>;

  constructor(args: string[], env: Record<string, string | undefined> = {}) {
    this.child = spawn(process.execPath, [WARDEN, 'serve', '--demo', ...args], {
      env: { ...process.env, WARDEN_LOG_LEVEL: 'warn', ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      this.stdout += d;
    });
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      this.stderr += d;
    });
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code) => {
        this.exitCode = code;
        resolve(code);
      }),
    );
  }

  /** Types one line into the console. */
  type(line: string): void {
    this.child.stdin!.write(`${line}\n`);
  }

  /** Waits until stdout after `from` matches; returns the match. Generous: the machine may be loaded. */
  async waitOut(pattern: RegExp, from = 0, timeoutMs = 60_000): Promise<RegExpExecArray> {
    return waitFor<RegExpExecArray | null>(
      () =>
        pattern.exec(this.stdout.slice(from)) ?? (this.exitCode !== undefined ? this.fail(pattern) : null),
      timeoutMs,
      `${pattern} in the demo's output:\n${this.stdout}\n--- stderr ---\n${this.stderr}`,
    ) as Promise<RegExpExecArray>;
  }

  private fail(pattern: RegExp): never {
    throw new Error(
      `the demo exited (${this.exitCode}) before printing ${pattern}:\n${this.stdout}\n${this.stderr}`,
    );
  }

  /**
   * The console steps of the README: alice asks, maria approves, alice reads her DM.
   * Returns the login the DM gives (the proxy's host and port, the proxy password).
   */
  async requestAndApprove(duration: string): Promise<PsqlLogin> {
    const start = this.stdout.length;
    this.type(`/access demo-db ${duration} trying warden`);
    const id = (await this.waitOut(/#\S+ \[([a-z0-9]+)\]/, start))[1]!;
    this.type('as maria');
    await this.waitOut(/You are now @maria\./, start);
    this.type(`approve ${id}`);
    await this.waitOut(/a DM for @alice is waiting/, start);
    const before = this.stdout.length;
    this.type('as alice');
    await this.waitOut(/\[DM to alice\]\s+psql /, before);
    const dm = this.stdout
      .slice(before)
      .split('\n')
      .filter((l) => l.startsWith('[DM to alice]'))
      .join('\n');
    return parseLoginFromDm(dm);
  }

  /** Ends the process for good (test clean-up). */
  kill(): void {
    if (this.exitCode === undefined) this.child.kill('SIGKILL');
  }
}
