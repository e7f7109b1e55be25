import { readFileSync } from 'node:fs';
import { BrokerClient } from '../../broker/api/client.ts';
import { UsageError } from '../errors.ts';
import type { Io } from '../output.ts';

/** The broker client from `--url`/`--token-file` or `WARDEN_URL`/`WARDEN_TOKEN`/`WARDEN_TOKEN_FILE`. */
export function createClientFromFlags(
  flags: { url?: string | undefined; 'token-file'?: string | undefined },
  io: Io,
): BrokerClient {
  const url = flags.url ?? io.env.WARDEN_URL ?? 'http://127.0.0.1:8080';
  const tokenFile = flags['token-file'] ?? io.env.WARDEN_TOKEN_FILE;
  let token = io.env.WARDEN_TOKEN;
  if (tokenFile) token = readFileSync(tokenFile, 'utf8').trim();
  if (!token) {
    throw new UsageError(
      'no API token: set WARDEN_TOKEN or WARDEN_TOKEN_FILE, or pass --token-file (never put tokens on the command line)',
    );
  }
  return new BrokerClient({ url, token });
}
