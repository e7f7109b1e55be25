/** The `warden` command line: parses arguments, runs one command, returns its exit code. */
import { parseArgs } from 'node:util';
import { type Config, loadConfig } from '../broker/config/load.ts';
import { isConfigurationError, WardenError } from '../lib/errors.ts';
import { runAuditCommand } from './commands/audit.ts';
import { runCiCommand } from './commands/ci.ts';
import { runDoctor } from './commands/doctor.ts';
import { runInit } from './commands/init.ts';
import { runPolicyCommand } from './commands/policy.ts';
import { runPsqlCommand } from './commands/psql.ts';
import { runRequestCommand } from './commands/requests.ts';
import { runReviewsCommand } from './commands/reviews.ts';
import { runServe } from './commands/serve.ts';
import { runReplayCommand, runSessionsCommand } from './commands/sessions.ts';
import { runSshCommand } from './commands/ssh.ts';
import { UsageError } from './errors.ts';
import { helpFor } from './help.ts';
import { ExitCode, type Io, processIo } from './output.ts';

const HELP = `warden: just-in-time privileged access

usage: warden <command> [flags]

  serve [--config warden.yaml] [--console [--as user]] [--demo [--demo-ttl 2m] [--demo-db auto|local|embedded]]
                                    run all parts in one process
  request <target[:level]> <duration> <reason...> [--as user] [--break-glass]
  approve <id> [--as user]          deny <id> <reason...> [--as user]
  cancel <id>                       revoke <id> [reason...]
  extend <id> <duration>            grants [--user u] [--state s] [--all] [--failing]  show <id>
  reviews [--pending]               statements the Postgres proxy holds for review
  review approve|deny <id> [reason...] [--as user]
  audit verify [--expect-head H] [--checkpoints FILE] [--public-key FILE.pem]
  audit export [--since DATE] [--format jsonl]        audit keygen --out FILE
  policy explain --user u --target t [--level l] [--at DATE]
  policy test CASES.yaml
  init [FILE] [--force]             write a commented warden.yaml
  doctor [--config warden.yaml]     check the store, targets, Slack, the CA key and OIDC issuers
  ci exchange --target t --level l [--ttl 15m] [--audience warden] [--token-file f]
              [--format env|github|json] [--url URL] [--max-wait 15m]
              [--sslmode verify-full] [--ca FILE]   (in a CI job)
  sessions list [--user u] [--target t] [--json]
  replay <session> [--format jsonl]   a Postgres session's timeline, or an SSH session's terminal
                                    (SSH: [--speed 2] [--idle-limit 1] [--export f.cast])
  psql "host=H port=P dbname=D user=U" | postgres://U@H:P/D   a minimal SQL client (no psql needed)
  ssh ca                            the CA public key line for sshd's TrustedUserCAKeys
  ssh krl --out FILE                the KRL of revoked SSH grants for sshd's RevokedKeys
  ssh login <grant> [--dir D] [--key FILE.pub]   certificate for an SSH grant, and the ssh command
  ssh replay <session> [--speed 2] [--idle-limit 1] [--export f.cast] [--format jsonl]

Broker API commands read WARDEN_URL and WARDEN_TOKEN (or WARDEN_TOKEN_FILE); WARDEN_USER or
--as names the person acting. Offline commands read --config (or WARDEN_CONFIG, or ./warden.yaml).
Exit codes: 0 ok, 1 refused, 2 usage, 3 configuration, 4 audit tampered.`;

const OPTIONS = {
  config: { type: 'string' },
  demo: { type: 'boolean' },
  console: { type: 'boolean' },
  'demo-ttl': { type: 'string' },
  'demo-db': { type: 'string' },
  'log-level': { type: 'string' },
  as: { type: 'string' },
  url: { type: 'string' },
  'token-file': { type: 'string' },
  target: { type: 'string' },
  level: { type: 'string' },
  duration: { type: 'string' },
  reason: { type: 'string' },
  'break-glass': { type: 'boolean' },
  wait: { type: 'boolean' },
  user: { type: 'string' },
  state: { type: 'string' },
  all: { type: 'boolean' },
  failing: { type: 'boolean' },
  pending: { type: 'boolean' },
  json: { type: 'boolean' },
  at: { type: 'string' },
  since: { type: 'string' },
  format: { type: 'string' },
  'expect-head': { type: 'string' },
  checkpoints: { type: 'string' },
  'public-key': { type: 'string' },
  ttl: { type: 'string' },
  audience: { type: 'string' },
  'max-wait': { type: 'string' },
  sslmode: { type: 'string' },
  ca: { type: 'string' },
  force: { type: 'boolean' },
  out: { type: 'string' },
  dir: { type: 'string' },
  key: { type: 'string' },
  speed: { type: 'string' },
  'idle-limit': { type: 'string' },
  export: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

function loadConfigFromFlags(flags: Record<string, unknown>, io: Io): Config {
  return loadConfig(
    typeof flags.config === 'string' ? flags.config : (io.env.WARDEN_CONFIG ?? 'warden.yaml'),
  );
}

export async function main(argv: string[], io: Io = processIo, signal?: AbortSignal): Promise<number> {
  try {
    const { values: flags, positionals } = parseArgs({
      args: argv,
      options: OPTIONS,
      allowPositionals: true,
      strict: true,
    });
    const [command, ...rest] = positionals;
    if (!command || flags.help || command === 'help') {
      io.out(helpFor(command === 'help' ? rest[0] : command) ?? HELP);
      return command || flags.help ? ExitCode.Ok : ExitCode.Usage;
    }
    switch (command) {
      case 'serve': {
        const controller = new AbortController();
        const stop = () => controller.abort();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
        try {
          return await runServe(flags, io, signal ?? controller.signal);
        } finally {
          // Once serve has returned nothing listens to the signal: SIGINT/SIGTERM get their default again.
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
        }
      }
      case 'request': {
        // `warden request prod-db 30m fixing invoice 4411`, as in chat.
        const [target, duration, ...reason] = rest;
        const f = {
          ...flags,
          duration: flags.duration ?? duration,
          reason: flags.reason ?? reason.join(' '),
        };
        return await runRequestCommand('request', target ? [target] : [], f, io);
      }
      case 'approve':
      case 'deny':
      case 'cancel':
      case 'revoke':
      case 'extend':
      case 'grants':
      case 'show':
      case 'credential':
        return await runRequestCommand(command, rest, flags, io);
      case 'reviews':
      case 'review':
        return await runReviewsCommand(command, rest, flags, io);
      case 'init':
        return runInit(rest, flags, io);
      case 'doctor':
        return await runDoctor(flags, io);
      case 'audit':
        return await runAuditCommand(rest[0], flags, loadConfigFromFlags(flags, io), io);
      case 'ci':
        return await runCiCommand(rest, flags, io);
      case 'sessions':
        return await runSessionsCommand(rest[0], flags, loadConfigFromFlags(flags, io), io);
      case 'replay':
        return await runReplayCommand(rest[0], flags, loadConfigFromFlags(flags, io), io);
      case 'psql':
        return await runPsqlCommand(rest, io, {
          input: process.stdin,
          prompt: (text) => process.stderr.write(text),
          interactive: process.stdin.isTTY === true,
        });
      case 'ssh':
        return await runSshCommand(rest, flags, io);
      case 'policy':
        return runPolicyCommand(rest[0], rest.slice(1), flags, loadConfigFromFlags(flags, io), io);
      default:
        throw new UsageError(`unknown command "${command}" (try warden help)`);
    }
  } catch (error) {
    return reportError(error, io);
  }
}

/**
 * The edge where errors become exit codes, the same for every family: usage 2, configuration 3
 * (any {@link isConfigurationError}), audit tampered 4, every other refusal or failure 1. Warden
 * errors print with their code; usage errors and foreign errors print their message only.
 */
export function reportError(error: unknown, io: Pick<Io, 'err'>): ExitCode {
  const message = error instanceof Error ? error.message : String(error);
  const code = error instanceof Error ? (error as { code?: unknown }).code : undefined;
  if (error instanceof UsageError || (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS'))) {
    io.err(`warden: ${message}`);
    return ExitCode.Usage;
  }
  if (!(error instanceof WardenError)) {
    io.err(`warden: ${message}`);
    return ExitCode.Refused;
  }
  io.err(`warden: ${message} (${error.code})`);
  if (isConfigurationError(error)) return ExitCode.Config;
  if (error.code === 'ERR_AUDIT_TAMPERED') return ExitCode.Tampered;
  return ExitCode.Refused;
}
