/** Where CLI commands write, injectable so tests capture it. */
export interface Io {
  out(line: string): void;
  err(line: string): void;
  env: Record<string, string | undefined>;
}

export const processIo: Io = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
  env: process.env,
};

/** Exit codes, stable for scripts. */
export enum ExitCode {
  Ok = 0,
  /** The broker or policy refused, or a check failed. */
  Refused = 1,
  /** Wrong usage: unknown command or flag. */
  Usage = 2,
  /** The configuration is invalid. */
  Config = 3,
  /** The audit log was tampered with. */
  Tampered = 4,
}
