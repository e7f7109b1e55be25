/** Writes files so that a reader (sshd, a player) sees either the old content or the new, never half. */
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { SshCliError } from './errors.ts';

/**
 * Writes `data` to a temporary file beside `path`, flushes it, then renames it over `path` (atomic
 * on one file system). The file gets `mode` even when it existed with another. Throws
 * `ERR_SSH_CLI_WRITE_FAILED` naming the path and the system error code.
 */
export function writeFileAtomically(path: string, data: string | Uint8Array, mode: number): void {
  const temp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const fd = openSync(temp, 'wx', mode);
    try {
      writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    // The umask may have narrowed the mode at creation; set it exactly.
    chmodSync(temp, mode);
    renameSync(temp, path);
  } catch (error) {
    rmSync(temp, { force: true });
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new SshCliError('ERR_SSH_CLI_WRITE_FAILED', `cannot write ${path} (${reason})`, { cause: error });
  }
}
