/**
 * Starts a real OpenSSH sshd for tests, on 127.0.0.1 and a free port, in a temporary directory
 * with its own host key. It trusts the given user CA keys (`TrustedUserCAKeys`) and, with no
 * `AuthorizedPrincipalsFile`, accepts a certificate when one of its principals equals the login
 * name (sshd's default). Passwords and authorized_keys are off, so only certificates log in.
 *
 * Tests run as root; they log in as the local account `warden-test` (see {@link ensureTestUser}),
 * never as root. Also runs the real `ssh` client non-interactively ({@link runSsh}).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './pg-cluster.ts';

const SSHD = '/usr/sbin/sshd';
/** Local account the sshd tests log in as. */
export const TEST_USER = 'warden-test';
const MAX_LOG = 1_000_000;

export interface SshdOptions {
  /** CA public key lines written to `TrustedUserCAKeys`. */
  trustedUserCaKeys: readonly string[];
  /** KRL bytes written to a file named by `RevokedKeys`. */
  revokedKeys?: Uint8Array;
  /** A KRL file sshd reads as it is on each connection (`RevokedKeys`), instead of `revokedKeys`. */
  revokedKeysFile?: string;
  /** Public key lines every account accepts (`AuthorizedKeysFile`); default none. */
  authorizedKeys?: readonly string[];
}

export interface Sshd {
  port: number;
  /** sshd's host public key line (`ssh-ed25519 AAAA... warden-test-host`). */
  hostKey: string;
  /** Everything sshd wrote to stderr (`-e`, `LogLevel VERBOSE`) so far. */
  logs(): string;
  /**
   * Resolves once the log, from character `from` on (a earlier `logs().length`; default 0),
   * contains `pattern`; rejects after `timeoutMs` (default 10 s) or if sshd exits.
   */
  waitForLog(pattern: RegExp, from?: number, timeoutMs?: number): Promise<string>;
  stop(): Promise<void>;
}

/**
 * Creates the `warden-test` account if missing. Its password field is set to `*` (no password,
 * but not "locked": sshd without PAM refuses accounts whose password starts with `!`).
 */
export function ensureTestUser(): void {
  try {
    execFileSync('id', ['-u', TEST_USER], { stdio: 'pipe' });
  } catch {
    execFileSync('useradd', ['--create-home', '--shell', '/bin/sh', TEST_USER], { stdio: 'pipe' });
  }
  execFileSync('usermod', ['-p', '*', TEST_USER], { stdio: 'pipe' });
}

/** Starts sshd and resolves once it listens. */
export async function startSshd(options: SshdOptions): Promise<Sshd> {
  ensureTestUser();
  // sshd's privilege separation needs this directory to exist, owned by root.
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const dir = mkdtempSync(join(tmpdir(), 'warden-sshd-'));
  chmodSync(dir, 0o755);
  const hostKey = join(dir, 'host_ed25519');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'warden-test-host', '-f', hostKey]);
  const caFile = join(dir, 'trusted_user_ca_keys');
  writeFileSync(caFile, options.trustedUserCaKeys.map((line) => line + '\n').join(''));
  const lines = [
    'ListenAddress 127.0.0.1',
    `HostKey ${hostKey}`,
    `PidFile ${join(dir, 'sshd.pid')}`,
    `TrustedUserCAKeys ${caFile}`,
    `AuthorizedKeysFile ${options.authorizedKeys ? join(dir, 'authorized_keys') : 'none'}`,
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'PubkeyAuthentication yes',
    'PermitRootLogin no',
    'UsePAM no',
    'StrictModes no',
    'LogLevel VERBOSE',
    'MaxStartups 50',
    'Subsystem sftp internal-sftp',
  ];
  if (options.authorizedKeys) {
    writeFileSync(join(dir, 'authorized_keys'), options.authorizedKeys.map((line) => line + '\n').join(''));
  }
  if (options.revokedKeys) {
    const krl = join(dir, 'revoked_keys');
    writeFileSync(krl, options.revokedKeys);
    lines.push(`RevokedKeys ${krl}`);
  } else if (options.revokedKeysFile) {
    lines.push(`RevokedKeys ${options.revokedKeysFile}`);
  }
  const config = join(dir, 'sshd_config');
  writeFileSync(config, lines.join('\n') + '\n');
  const port = await freePort();
  const child: ChildProcess = spawn(SSHD, ['-D', '-e', '-f', config, '-p', String(port)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  const waiters = new Set<() => void>();
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => {
    if (log.length < MAX_LOG) log += chunk;
    for (const wake of waiters) wake();
  });
  let exited = false;
  const exitPromise = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exited = true;
      for (const wake of waiters) wake();
      resolve();
    }),
  );
  const waitForLog = (pattern: RegExp, from = 0, timeoutMs = 10_000) =>
    new Promise<string>((resolve, reject) => {
      const check = () => {
        const match = pattern.exec(log.slice(from));
        if (match) {
          cleanup();
          resolve(match[0]);
        } else if (exited) {
          cleanup();
          reject(new Error(`sshd exited before logging ${pattern}:\n${log}`));
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`sshd did not log ${pattern} in ${timeoutMs} ms:\n${log}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });
  const stop = async () => {
    if (!exited) {
      child.kill('SIGTERM');
      await exitPromise;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitForLog(/Server listening on 127\.0\.0\.1 port \d+/);
  } catch (error) {
    await stop();
    throw error;
  }
  const hostPublicKey = readFileSync(`${hostKey}.pub`, 'utf8').trim();
  return { port, hostKey: hostPublicKey, logs: () => log, waitForLog, stop };
}

export interface SshResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunSshOptions {
  port: number;
  /** OpenSSH private key text. */
  privateKey: string;
  /** Certificate line. */
  certificate: string;
  user?: string;
  command: string;
}

/**
 * Common OpenSSH client options for tests (no config, no agent, no known_hosts). With `key`, the
 * certificate is expected beside it as `<key>-cert.pub`.
 */
export function clientOptions(port: number, key?: string): string[] {
  return [
    '-F',
    '/dev/null',
    '-o',
    'BatchMode=yes',
    '-o',
    'StrictHostKeyChecking=no',
    '-o',
    'UserKnownHostsFile=/dev/null',
    '-o',
    'IdentitiesOnly=yes',
    '-o',
    'IdentityAgent=none',
    '-o',
    'LogLevel=ERROR',
    '-o',
    'ConnectTimeout=10',
    ...(key ? ['-i', key, '-o', `CertificateFile=${key}-cert.pub`] : []),
    ...(port ? ['-o', `Port=${port}`] : []),
  ];
}

/**
 * Runs the real `ssh` client once, non-interactively, with the key and certificate written to a
 * temporary directory. Never throws on a refused login: the exit code says it (255).
 */
export function runSsh(options: RunSshOptions): Promise<SshResult> {
  const dir = mkdtempSync(join(tmpdir(), 'warden-ssh-'));
  const key = join(dir, 'id');
  writeFileSync(key, options.privateKey, { mode: 0o600 });
  writeFileSync(join(dir, 'id-cert.pub'), options.certificate + '\n');
  const args = [
    ...clientOptions(0, key),
    '-p',
    String(options.port),
    `${options.user ?? TEST_USER}@127.0.0.1`,
    options.command,
  ];
  return new Promise((resolve, reject) => {
    const child = spawn('ssh', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    child.once('error', reject);
    child.once('close', (code) => {
      rmSync(dir, { recursive: true, force: true });
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}
