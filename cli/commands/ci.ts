/**
 * `warden ci exchange`: a CI job trades its OIDC token for a short-lived database credential and
 * prints it as shell assignments, GitHub Actions environment entries, or JSON. The token never
 * goes on the command line; it comes from `--token-file`, GitHub Actions or a GitLab variable.
 */
import { appendFileSync, existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { BrokerApiError, BrokerClient } from '../../broker/api/client.ts';
import { CiCliError } from '../ci/errors.ts';
import {
  CI_SSL_MODES,
  type CiCredential,
  type CiOutputFormat,
  type CiSslMode,
  parseOutputFormat,
  renderCredential,
  withTls,
} from '../ci/format.ts';
import { readCiToken } from '../ci/token-source.ts';
import { UsageError } from '../errors.ts';
import type { Io } from '../output.ts';

type Flags = Record<string, string | boolean | undefined>;

/** Exit codes of `warden ci exchange`, stable for pipelines. */
export enum CiExitCode {
  Ok = 0,
  /** The broker refused (token, rule, duration, denied approval). Retrying will not help. */
  Refused = 1,
  Usage = 2,
  /** No CI token could be read (no `--token-file`, not in GitHub Actions or GitLab CI). */
  NoToken = 5,
  /** The broker could not be reached or is unavailable (5xx, JWKS down). Retrying may help. */
  Unavailable = 6,
  /** Rate limited. Retry after the time the broker said. */
  RateLimited = 7,
  /** An approval is needed and did not come within `--max-wait`. */
  StillPending = 8,
}

const USAGE =
  'usage: warden ci exchange --target <name> --level <level> [--ttl 15m] [--audience warden] ' +
  '[--token-file f] [--format env|github|json] [--url URL] [--max-wait 15m] [--sslmode verify-full] [--ca FILE]';

const DEFAULT_MAX_WAIT_MS = 15 * 60_000;

interface ExchangeAnswer {
  pending?: string;
  retry_after?: number;
  uri?: string;
  host?: string;
  port?: number;
  database?: string;
  user?: string;
  password?: string;
  expires_at?: string;
}

/** Dependencies a test may replace; the entry point passes none. */
export interface CiCommandDeps {
  readonly fetch?: typeof fetch;
  readonly sleep?: (ms: number) => Promise<void>;
}

const s = (v: string | boolean | undefined) => (typeof v === 'string' ? v : undefined);

/** Runs `warden ci <verb>`; returns a {@link CiExitCode}. */
export async function runCiCommand(
  positionals: string[],
  flags: Flags,
  io: Io,
  deps: CiCommandDeps = {},
): Promise<number> {
  if (positionals[0] !== 'exchange') throw new UsageError(USAGE);
  const target = s(flags.target);
  const level = s(flags.level);
  if (!target || !level) throw new UsageError(USAGE);
  const format = parseFormatFlag(s(flags.format) ?? 'env');
  const ttl = s(flags.ttl) ?? s(flags.duration);
  const maxWaitMs = parseMaxWait(s(flags['max-wait']));
  const tls = parseTlsFlags(s(flags.sslmode), s(flags.ca));
  const url = s(flags.url) ?? io.env.WARDEN_URL ?? 'http://127.0.0.1:8080';
  const githubEnv = io.env.GITHUB_ENV;
  if (format === 'github' && !githubEnv) {
    throw new UsageError('--format github needs $GITHUB_ENV (it is set inside GitHub Actions)');
  }
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const token = async () => {
    try {
      return await readCiToken({
        audience: s(flags.audience) ?? io.env.WARDEN_AUDIENCE ?? 'warden',
        tokenFile: s(flags['token-file']),
        env: io.env,
        ...(deps.fetch ? { fetch: deps.fetch } : {}),
      });
    } catch (error) {
      if (error instanceof CiCliError) {
        io.err(`warden: ${error.message} (${error.code})`);
        return undefined;
      }
      throw error;
    }
  };
  // The exchange may wait for an approval on the broker side: allow for it.
  const client = async () => {
    const got = await token();
    if (!got) return undefined;
    return new BrokerClient({
      url,
      token: got.token,
      timeoutMs: maxWaitMs + 60_000,
      ...(deps.fetch ? { fetch: deps.fetch } : {}),
    });
  };
  try {
    const first = await client();
    if (!first) return CiExitCode.NoToken;
    let answer = await first.call<ExchangeAnswer>('POST', '/v1/ci/exchange', {
      target,
      level,
      ...(ttl ? { ttl } : {}),
    });
    const deadline = Date.now() + maxWaitMs;
    while (answer.pending) {
      if (Date.now() >= deadline) {
        io.err(`warden: approval still pending for ${answer.pending}; giving up after --max-wait`);
        return CiExitCode.StillPending;
      }
      io.err(`warden: waiting for approval of ${answer.pending}`);
      await sleep(Math.max(1, answer.retry_after ?? 5) * 1000);
      // A fresh token where the platform gives one (GitHub), else the same one, which may poll.
      const again = await client();
      if (!again) return CiExitCode.NoToken;
      answer = await again.call<ExchangeAnswer>('GET', `/v1/ci/exchange/${answer.pending}`);
    }
    const credential = toCredential(answer);
    const rendered = renderCredential(
      tls ? withTls(credential, tls.sslmode, tls.sslrootcert) : credential,
      format,
    );
    if (rendered.githubEnv !== undefined) appendFileSync(githubEnv!, rendered.githubEnv, { mode: 0o600 });
    io.out(rendered.stdout.replace(/\n$/, ''));
    return CiExitCode.Ok;
  } catch (error) {
    if (!(error instanceof BrokerApiError)) throw error;
    io.err(`warden: ${error.message} (${error.code})`);
    if (error.status === 429) return CiExitCode.RateLimited;
    if (error.status === 0 || error.status >= 500) return CiExitCode.Unavailable;
    return CiExitCode.Refused;
  }
}

function parseFormatFlag(text: string): CiOutputFormat {
  try {
    return parseOutputFormat(text);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** `--sslmode` and `--ca` (which implies verify-full); the CA path is made absolute. */
function parseTlsFlags(
  mode: string | undefined,
  ca: string | undefined,
): { sslmode: CiSslMode; sslrootcert?: string } | undefined {
  if (mode === undefined && ca === undefined) return undefined;
  const sslmode = (mode ?? 'verify-full') as CiSslMode;
  if (!CI_SSL_MODES.includes(sslmode)) {
    throw new UsageError(
      `--sslmode is one of ${CI_SSL_MODES.join(', ')} (prefer and allow fall back to plaintext)`,
    );
  }
  if (ca === undefined) return { sslmode };
  if (sslmode !== 'verify-ca' && sslmode !== 'verify-full') {
    throw new UsageError(`--ca is only checked under --sslmode verify-ca or verify-full, not ${sslmode}`);
  }
  const path = resolve(ca);
  if (!existsSync(path)) throw new UsageError(`--ca: no file ${path}`);
  return { sslmode, sslrootcert: path };
}

function parseMaxWait(text: string | undefined): number {
  if (text === undefined) return DEFAULT_MAX_WAIT_MS;
  const match = /^(\d{1,5})(s|m|h)$/.exec(text);
  if (!match) throw new UsageError(`--max-wait "${text.slice(0, 16)}" is not a duration like 15m`);
  return Number(match[1]) * { s: 1_000, m: 60_000, h: 3_600_000 }[match[2] as 's' | 'm' | 'h'];
}

function toCredential(answer: ExchangeAnswer): CiCredential {
  const { uri, host, port, database, user, password, expires_at } = answer;
  if (
    typeof uri !== 'string' ||
    typeof host !== 'string' ||
    typeof port !== 'number' ||
    typeof database !== 'string' ||
    typeof user !== 'string' ||
    typeof password !== 'string' ||
    typeof expires_at !== 'string'
  ) {
    throw new BrokerApiError(502, 'ERR_API_BAD_REQUEST', 'the broker answered without a credential');
  }
  return { uri, host, port, database, user, password, expiresAt: expires_at };
}
