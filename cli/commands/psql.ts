/**
 * `warden psql "<connection string>"`: a minimal line-based SQL client on the `pg` driver, for
 * machines without psql. It takes the DM's `host=… port=… dbname=… user=…` or a URI, asks for the
 * password (or reads `PGPASSWORD`), prints results as aligned tables and server errors with their
 * SQLSTATE, and exits on `\q` or end of input (0), or when the server ends the session (2).
 */
import { createInterface } from 'node:readline';
import { type Readable, Writable } from 'node:stream';
import pg from 'pg';
import { ExitCode, type Io } from '../output.ts';
import {
  type ConnectionSettings,
  formatServerError,
  formatTable,
  isNumericType,
  parseConnectionString,
  StatementBuffer,
} from '../psql/core.ts';
import { PsqlError } from '../psql/errors.ts';

/** Exit status when the server ended the session (as psql). */
const EXIT_CONNECTION_LOST = 2;

/** The terminal `warden psql` talks to; tests pass streams. */
export interface PsqlTerminal {
  input: Readable;
  /** Prompts go here (nothing else: results and errors go through `Io`). */
  prompt: (text: string) => void;
  interactive: boolean;
}

const HELP = [
  'warden psql: type SQL ending with ; to run it. \\q (or Ctrl-D) quits.',
  'This is a minimal client: no psql backslash commands besides \\q and \\?.',
];

async function askPassword(terminal: PsqlTerminal): Promise<string> {
  terminal.prompt('Password: ');
  const muted = new Writable({ write: (_chunk, _enc, done) => done() });
  const rl = createInterface({ input: terminal.input, output: muted, terminal: true });
  try {
    return await new Promise<string>((resolve) => rl.question('', resolve));
  } finally {
    rl.close();
    terminal.prompt('\n');
  }
}

function sslOption(settings: ConnectionSettings, tls: boolean): pg.ClientConfig['ssl'] {
  if (!tls) return false;
  // prefer/require encrypt without checking the certificate, as libpq does; verify-full checks it.
  return settings.sslmode === 'verify-full'
    ? { rejectUnauthorized: true, servername: settings.host }
    : { rejectUnauthorized: false };
}

async function connect(settings: ConnectionSettings, password: string): Promise<pg.Client> {
  const attempt = async (tls: boolean) => {
    const client = new pg.Client({
      host: settings.host,
      port: settings.port,
      database: settings.database,
      user: settings.user,
      password,
      ssl: sslOption(settings, tls),
      application_name: 'warden psql',
      connectionTimeoutMillis: 20_000,
      // Every value as the server's text, as psql shows it.
      types: { getTypeParser: () => (value: string) => value } as unknown as pg.CustomTypesConfig,
    });
    try {
      await client.connect();
      return client;
    } catch (error) {
      await client.end().catch(() => {});
      throw error;
    }
  };
  if (settings.sslmode === 'disable') return attempt(false);
  try {
    return await attempt(true);
  } catch (error) {
    if (settings.sslmode === 'prefer' && /does not support SSL/i.test((error as Error).message)) {
      return attempt(false);
    }
    throw error;
  }
}

function printResult(result: pg.QueryResult<unknown[]>, io: Io): void {
  if (result.fields.length > 0) {
    const fields = result.fields.map((f) => ({ name: f.name, numeric: isNumericType(f.dataTypeID) }));
    for (const line of formatTable(fields, result.rows as (string | null)[][])) io.out(line);
    io.out('');
    return;
  }
  if (!result.command) return;
  if (result.command === 'INSERT') io.out(`INSERT 0 ${result.rowCount ?? 0}`);
  else if (['UPDATE', 'DELETE', 'SELECT', 'MERGE', 'COPY', 'FETCH', 'MOVE'].includes(result.command)) {
    io.out(`${result.command} ${result.rowCount ?? 0}`);
  } else io.out(result.command);
}

/** True when the error comes from the server (an ErrorResponse), not the socket. */
function isServerError(error: unknown): error is pg.DatabaseError {
  return error instanceof pg.DatabaseError;
}

/**
 * Runs the client until `\q`, end of input, or the end of the session.
 * @returns 0 after `\q`/EOF, 1 when the connection failed, 2 for usage errors or a lost session.
 */
export async function runPsqlCommand(
  args: readonly string[],
  io: Io,
  terminal: PsqlTerminal,
): Promise<number> {
  let settings: ConnectionSettings;
  try {
    settings = parseConnectionString(args.join(' '), io.env);
  } catch (error) {
    if (!(error instanceof PsqlError)) throw error;
    io.err(`warden psql: ${error.message} (${error.code})`);
    io.err(
      'usage: warden psql "host=H port=P dbname=D user=U" | postgres://U@H:P/D   (password: asked, or PGPASSWORD)',
    );
    return ExitCode.Usage;
  }
  let password = settings.password;
  if (password === undefined) {
    if (!terminal.interactive) {
      io.err(
        'warden psql: no password: set PGPASSWORD (or put it in the URI) when input is not a terminal (ERR_PSQL_NO_PASSWORD)',
      );
      return ExitCode.Usage;
    }
    password = await askPassword(terminal);
  }
  let client: pg.Client;
  try {
    client = await connect(settings, password);
  } catch (error) {
    const lines = isServerError(error)
      ? formatServerError(error)
      : [`could not connect to ${settings.host}:${settings.port}: ${(error as Error).message}`];
    for (const line of lines) io.err(`warden psql: ${line}`);
    io.err('warden psql: (ERR_PSQL_CONNECT_FAILED)');
    return ExitCode.Refused;
  }
  const lines = createInterface({
    input: terminal.input,
    crlfDelay: Number.POSITIVE_INFINITY,
    terminal: false,
  });
  let lost = false;
  let quitting = false;
  // A FATAL sent while we wait for input (the grant expired, the proxy stopped) ends the session.
  client.on('error', (error) => {
    if (lost) return;
    lost = true;
    for (const line of isServerError(error)
      ? formatServerError(error)
      : [`connection lost: ${error.message}`]) {
      io.err(line);
    }
    lines.close();
  });
  client.on('end', () => {
    if (lost || quitting) return;
    lost = true;
    io.err('the server closed the connection');
    lines.close();
  });
  const buffer = new StatementBuffer();
  const prompt = () => {
    if (terminal.interactive) terminal.prompt(`${settings.database}${buffer.pending ? '->' : '=>'} `);
  };
  prompt();
  try {
    for await (const line of lines) {
      let outcome: ReturnType<StatementBuffer['push']>;
      try {
        outcome = buffer.push(line);
      } catch (error) {
        io.err(`warden psql: ${(error as Error).message} (${(error as PsqlError).code})`);
        prompt();
        continue;
      }
      if (outcome.kind === 'quit') break;
      if (outcome.kind === 'help') for (const text of HELP) io.out(text);
      if (outcome.kind === 'unknown-meta') io.err(`invalid command ${outcome.command} (try \\? for help)`);
      if (outcome.kind === 'sql') {
        try {
          const result = (await client.query({ text: outcome.text, rowMode: 'array' })) as
            | pg.QueryResult<unknown[]>
            | pg.QueryResult<unknown[]>[];
          for (const one of Array.isArray(result) ? result : [result]) printResult(one, io);
        } catch (error) {
          if (lost) break;
          if (!isServerError(error)) {
            lost = true;
            io.err(`connection lost: ${(error as Error).message}`);
            break;
          }
          for (const text of formatServerError(error)) io.err(text);
        }
      }
      if (lost) break;
      prompt();
    }
  } finally {
    quitting = true;
    lines.close();
    await client.end().catch(() => {});
  }
  return lost ? EXIT_CONNECTION_LOST : ExitCode.Ok;
}
