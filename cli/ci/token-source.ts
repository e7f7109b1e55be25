/**
 * Where a CI job's OIDC token comes from: a `--token-file`, GitHub Actions' token endpoint, or a
 * GitLab `id_tokens:` variable. The environment, fetch and file reading are injected: only the
 * CLI entry point passes `process.env`.
 */
import { readFile } from 'node:fs/promises';
import { CiCliError } from './errors.ts';

/** Environment variables GitHub Actions sets when the job has `permissions: id-token: write`. */
enum GitHubEnv {
  /** `ACTIONS_ID_TOKEN_REQUEST_URL` */
  RequestUrl = 'ACTIONS_ID_TOKEN_REQUEST_URL',
  /** `ACTIONS_ID_TOKEN_REQUEST_TOKEN` */
  RequestToken = 'ACTIONS_ID_TOKEN_REQUEST_TOKEN',
}

/** Default variable named under GitLab `id_tokens:`. */
export const DEFAULT_GITLAB_TOKEN_VAR = 'WARDEN_ID_TOKEN';

const MAX_TOKEN_BYTES = 16 * 1024;
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/** Options of {@link readCiToken}. */
export interface CiTokenSourceOptions {
  /** `aud` to request from GitHub Actions (the broker's configured audience). */
  readonly audience: string;
  /** Read the token from this file instead of the environment. */
  readonly tokenFile?: string | undefined;
  /** Variable holding a GitLab ID token; default `WARDEN_ID_TOKEN`. */
  readonly gitlabTokenVar?: string | undefined;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Default: the global `fetch`. */
  readonly fetch?: (url: string, init: RequestInit) => Promise<Response>;
  /** Default: `fs.readFile` as UTF-8. */
  readonly readFile?: (path: string) => Promise<string>;
  /** Milliseconds allowed for the GitHub request; default 10 s. */
  readonly timeoutMs?: number;
}

/** Which source the token came from, for logs. */
export type CiTokenSourceKind = 'file' | 'github' | 'gitlab';

/**
 * Returns the job's token and its source. Order: `tokenFile`, then GitHub Actions (both request
 * variables set), then the GitLab variable. Throws `ERR_CI_TOKEN_SOURCE_MISSING` when none is
 * available, `ERR_CI_TOKEN_SOURCE_FAILED` when one is but yields no token.
 */
export async function readCiToken(
  options: CiTokenSourceOptions,
): Promise<{ token: string; source: CiTokenSourceKind }> {
  if (options.tokenFile) {
    const read = options.readFile ?? ((path: string) => readFile(path, 'utf8'));
    let text: string;
    try {
      text = await read(options.tokenFile);
    } catch (error) {
      throw new CiCliError('ERR_CI_TOKEN_SOURCE_FAILED', `cannot read token file ${options.tokenFile}`, {
        cause: error,
      });
    }
    return { token: checkToken(text, 'token file'), source: 'file' };
  }
  const url = options.env[GitHubEnv.RequestUrl];
  const bearer = options.env[GitHubEnv.RequestToken];
  if (url && bearer) return { token: await requestGitHubToken(url, bearer, options), source: 'github' };
  const variable = options.gitlabTokenVar ?? DEFAULT_GITLAB_TOKEN_VAR;
  const gitlab = options.env[variable];
  if (gitlab) return { token: checkToken(gitlab, `$${variable}`), source: 'gitlab' };
  throw new CiCliError(
    'ERR_CI_TOKEN_SOURCE_MISSING',
    `no CI token: give --token-file, run in GitHub Actions with "permissions: id-token: write", ` +
      `or set ${variable} with GitLab "id_tokens:"`,
  );
}

async function requestGitHubToken(
  url: string,
  bearer: string,
  options: CiTokenSourceOptions,
): Promise<string> {
  const doFetch = options.fetch ?? ((u: string, init: RequestInit) => fetch(u, init));
  const full = `${url}${url.includes('?') ? '&' : '?'}audience=${encodeURIComponent(options.audience)}`;
  let body: unknown;
  try {
    const response = await doFetch(full, {
      headers: { authorization: `bearer ${bearer}`, accept: 'application/json; api-version=2.0' },
      signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
    });
    if (!response.ok) {
      await response.body?.cancel();
      throw new CiCliError(
        'ERR_CI_TOKEN_SOURCE_FAILED',
        `GitHub token request failed: HTTP ${response.status}`,
      );
    }
    const text = await response.text();
    if (text.length > MAX_TOKEN_BYTES * 2)
      throw new CiCliError('ERR_CI_TOKEN_SOURCE_FAILED', 'GitHub token response too large');
    body = JSON.parse(text);
  } catch (error) {
    if (error instanceof CiCliError) throw error;
    throw new CiCliError('ERR_CI_TOKEN_SOURCE_FAILED', 'GitHub token request failed', { cause: error });
  }
  const value = (body as { value?: unknown } | null)?.value;
  if (typeof value !== 'string')
    throw new CiCliError('ERR_CI_TOKEN_SOURCE_FAILED', 'GitHub token response has no value');
  return checkToken(value, 'GitHub token response');
}

function checkToken(text: string, where: string): string {
  const token = text.trim();
  if (token.length > MAX_TOKEN_BYTES || !COMPACT_JWS.test(token)) {
    throw new CiCliError('ERR_CI_TOKEN_SOURCE_FAILED', `${where} does not hold a JWT`);
  }
  return token;
}
