/** Runs the real `psql` client with connection details a person received, as they would. */
import { execFile } from 'node:child_process';

export interface PsqlLogin {
  host: string;
  port: number;
  database: string;
  user: string;
  password: string;
}

export interface PsqlResult {
  ok: boolean;
  stdout: string;
  stderr: string;
}

const PSQL = process.env.WARDEN_PSQL ?? '/usr/bin/psql';

/** Runs one query; never throws (a refused login is `ok: false` with psql's message). */
export function runPsql(login: PsqlLogin, sql: string): Promise<PsqlResult> {
  return new Promise((resolve) => {
    execFile(
      PSQL,
      [
        '-h',
        login.host,
        '-p',
        String(login.port),
        '-U',
        login.user,
        '-d',
        login.database,
        '-w',
        '-tA',
        '-c',
        sql,
      ],
      {
        env: { PATH: process.env.PATH ?? '', PGPASSWORD: login.password, PGCONNECT_TIMEOUT: '5' },
        timeout: 20_000,
      },
      (error, stdout, stderr) => resolve({ ok: !error, stdout: stdout.trim(), stderr: stderr.trim() }),
    );
  });
}

/** Reads the connection details out of a DM text (`host: … port: … database: …`, `user: …`, `password: …`). */
export function parseLoginFromDm(text: string): PsqlLogin {
  const pick = (key: string) => {
    const match = new RegExp(`${key}: (\\S+)`).exec(text);
    if (!match) throw new Error(`no ${key} in the DM`);
    return match[1]!;
  };
  return {
    host: pick('host'),
    port: Number(pick('port')),
    database: pick('database'),
    user: pick('user'),
    password: pick('password'),
  };
}
