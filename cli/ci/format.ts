/**
 * Rendering of a CI credential for the job: shell assignments (`--format env`), GitHub Actions
 * environment file entries plus mask commands (`--format github`), or JSON (`--format json`).
 * Pure: the caller writes `stdout` to standard output and appends `githubEnv` to `$GITHUB_ENV`.
 */
import { randomBytes } from 'node:crypto';
import { CiCliError } from './errors.ts';

/** What the broker returns for a CI exchange. */
export interface CiCredential {
  /** `postgresql://user:password@host:port/database`. */
  readonly uri: string;
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;
  readonly password: string;
  /** ISO 8601 instant or a Date. */
  readonly expiresAt: string | Date;
  /** libpq `sslmode` the job connects with (`--sslmode`, or verify-full with `--ca`). */
  readonly sslmode?: CiSslMode;
  /** Absolute path of the CA file that verifies the server (`--ca`). */
  readonly sslrootcert?: string;
}

/** libpq `sslmode` values `warden ci exchange` offers (no silent plaintext fallback). */
export const CI_SSL_MODES = ['disable', 'require', 'verify-ca', 'verify-full'] as const;
export type CiSslMode = (typeof CI_SSL_MODES)[number];

/**
 * Puts `sslmode` (and `sslrootcert`) into the credential's URI, so `psql "$DATABASE_URL"` checks
 * the server the way the job asked instead of libpq's default `prefer` (plaintext when TLS fails).
 */
export function withTls(credential: CiCredential, sslmode: CiSslMode, sslrootcert?: string): CiCredential {
  const query = new URLSearchParams({ sslmode, ...(sslrootcert ? { sslrootcert } : {}) });
  const base = credential.uri.split('?')[0]!;
  return { ...credential, uri: `${base}?${query}`, sslmode, ...(sslrootcert ? { sslrootcert } : {}) };
}

/** Output formats of `warden ci exchange`. */
export type CiOutputFormat = 'env' | 'github' | 'json';

const FORMATS: readonly CiOutputFormat[] = ['env', 'github', 'json'];

/** What to print and, for `github`, what to append to `$GITHUB_ENV`. */
export interface RenderedCredential {
  readonly stdout: string;
  readonly githubEnv?: string;
}

/** Reads `--format`; throws `ERR_CI_FORMAT_INVALID` naming the choices. */
export function parseOutputFormat(text: string): CiOutputFormat {
  if ((FORMATS as readonly string[]).includes(text)) return text as CiOutputFormat;
  throw new CiCliError(
    'ERR_CI_FORMAT_INVALID',
    `unknown format "${text.slice(0, 32)}": use ${FORMATS.join(', ')}`,
  );
}

/** Quotes `value` for POSIX shells: single quotes, each `'` written as `'\''`. */
export function quoteShell(value: string): string {
  return `'${value.replaceAll("'", "'\\''")}'`;
}

/**
 * Escapes data of a GitHub Actions workflow command (`::add-mask::`), so a value holding `%`
 * or a line break is masked whole instead of ending the command early.
 */
export function escapeWorkflowCommand(value: string): string {
  return value.replaceAll('%', '%25').replaceAll('\r', '%0D').replaceAll('\n', '%0A');
}

function variables(credential: CiCredential): [string, string][] {
  const expiresAt =
    typeof credential.expiresAt === 'string' ? credential.expiresAt : credential.expiresAt.toISOString();
  return [
    ['PGHOST', credential.host],
    ['PGPORT', String(credential.port)],
    ['PGDATABASE', credential.database],
    ['PGUSER', credential.user],
    ['PGPASSWORD', credential.password],
    ['DATABASE_URL', credential.uri],
    ['WARDEN_EXPIRES_AT', expiresAt],
    ...(credential.sslmode ? [['PGSSLMODE', credential.sslmode] as [string, string]] : []),
    ...(credential.sslrootcert ? [['PGSSLROOTCERT', credential.sslrootcert] as [string, string]] : []),
  ];
}

/**
 * Renders `credential`. `delimiter` makes the `$GITHUB_ENV` heredoc delimiter deterministic in
 * tests; it is redrawn while it occurs in a value, so no value can end its entry early.
 */
export function renderCredential(
  credential: CiCredential,
  format: CiOutputFormat,
  delimiter: () => string = () => `ghadelimiter_${randomBytes(16).toString('hex')}`,
): RenderedCredential {
  const vars = variables(credential);
  switch (format) {
    case 'env':
      return { stdout: vars.map(([name, value]) => `${name}=${quoteShell(value)}\n`).join('') };
    case 'json':
      return { stdout: `${JSON.stringify({ ...credential, expiresAt: vars[6]![1] }, null, 2)}\n` };
    case 'github': {
      const entries = vars.map(([name, value]) => {
        let mark = delimiter();
        for (let tries = 0; value.includes(mark); tries++) {
          if (tries >= 8) throw new CiCliError('ERR_CI_FORMAT_INVALID', `no safe delimiter for ${name}`);
          mark = delimiter();
        }
        return `${name}<<${mark}\n${value}\n${mark}\n`;
      });
      const masks = [credential.password, credential.uri].map(
        (v) => `::add-mask::${escapeWorkflowCommand(v)}\n`,
      );
      return { stdout: masks.join(''), githubEnv: entries.join('') };
    }
  }
}
