/**
 * `warden <command> --help` (and `warden help <command>`): each command's own usage, so that
 * `warden init --help` explains init instead of printing the general help.
 */

const BROKER_ENV =
  'Talks to the broker: WARDEN_URL (default http://127.0.0.1:8080) and WARDEN_TOKEN or WARDEN_TOKEN_FILE\n(or --token-file); tokens are never taken from the command line. --as (or WARDEN_USER) names the\nperson acting, for service tokens.';
const STORE_CONFIG =
  'Reads the store directly, from --config (or WARDEN_CONFIG, or ./warden.yaml); paths in the file are\nrelative to its directory. A store that does not exist is refused, never created.';

const REQUEST_VERBS = `usage: warden request <target[:level]> <duration> <reason...> [--as user] [--break-glass] [--wait]
       warden credential <id> [--as user]     (the requester only: a fresh password each time)
       warden approve <id> [--as user]        warden deny <id> <reason...> [--as user]
       warden cancel <id>                     warden revoke <id> [reason...]
       warden extend <id> <duration>          warden show <id>
       warden grants [--user u] [--state s] [--all]

Requests access, decides on requests, and manages grants through the broker API. --wait waits for
the decision, then prints the credential once; warden credential <id> collects it later (each
collection issues a new password, and the previous one stops logging in).

${BROKER_ENV}`;

/** Usage of each command, by the command's name. */
export const COMMAND_HELP: Readonly<Record<string, string>> = {
  serve: `usage: warden serve [--config warden.yaml] [--console [--as user]] [--log-level info]
       warden serve --demo [--demo-ttl 2m] [--demo-db auto|local|embedded]

Runs every part in one process: the broker API, the scheduler, the chat bot (chat: in the config),
the Postgres proxies (targets with proxy:) and the SSH proxy (ssh.proxy). --console adds a chat
console on the terminal; --demo starts the first-run demo (npm start). Stops on SIGINT or SIGTERM.
SIGHUP (kill -HUP <pid>) reloads people, rules and targets from the config file without cutting live
sessions; a file that fails validation is logged and the running configuration stays (docs/operations.md).`,
  request: REQUEST_VERBS,
  approve: REQUEST_VERBS,
  deny: REQUEST_VERBS,
  cancel: REQUEST_VERBS,
  revoke: REQUEST_VERBS,
  extend: REQUEST_VERBS,
  grants: REQUEST_VERBS,
  credential: REQUEST_VERBS,
  show: REQUEST_VERBS,
  reviews: `usage: warden reviews [--pending]
       warden review approve|deny <review-id> [reason...] [--as user]

Lists statements the Postgres proxy holds for review, and decides on one.

${BROKER_ENV}`,
  init: `usage: warden init [FILE] [--force]

Writes a commented warden.yaml (default ./warden.yaml, or --config) to start a real deployment from:
a target, people, rules, chat and API tokens, every secret referenced as { env: NAME } or
{ file: path }. Refuses to overwrite an existing file unless --force. Then: warden doctor.`,
  doctor: `usage: warden doctor [--config warden.yaml]

Checks the configuration against the real world, changing nothing of Warden's: the store (opened
read-only, never created or migrated), each target's admin connection and level privileges, the proxies'
settings and TLS files, the masking key, the API tokens, that SSH targets answer, Slack, the SSH
CA key and the OIDC issuers. Each failure is a line with what to fix. Exit 0 when everything
checks out, 3 when a failure is in the configuration or its secrets, 1 when only the world is
wrong (docs/operations.md).`,
  audit: `usage: warden audit verify [--expect-head HASH] [--checkpoints FILE] [--public-key FILE.pem]
       warden audit export [--since 2026-01-01] [--format jsonl]
       warden audit keygen --out FILE [--force]

verify walks the hash chain, checks the audit key's signatures and compares the checkpoints
(audit.checkpoints.file, and --checkpoints: a checkpoint file or a Warden log); exit 4 when the
log was tampered with (docs/audit.md says what is and is not detected). export prints entries as
JSON lines. keygen writes a new Ed25519 audit key (0600) and prints its public key.

${STORE_CONFIG}`,
  ci: `usage: warden ci exchange --target t --level l [--ttl 15m] [--audience warden] [--token-file f]
                          [--format env|github|json] [--url URL] [--max-wait 15m]
                          [--sslmode verify-full] [--ca FILE]

In a CI job: trades the job's OIDC token (GitHub Actions, or $WARDEN_ID_TOKEN) for a short-lived
credential. --sslmode and --ca (a CA file, implying verify-full) go into DATABASE_URL and
PGSSLMODE/PGSSLROOTCERT, so the job's client checks the database's certificate. Exit codes: 0 printed, 1 refused, 2 usage, 5 no CI token, 6 broker unavailable,
7 rate limited, 8 approval still pending after --max-wait.`,
  sessions: `usage: warden sessions list [--user u] [--target t] [--json]

Lists recorded proxy sessions.

${STORE_CONFIG}`,
  replay: `usage: warden replay <session> [--format text|jsonl]
       (SSH sessions: [--speed 2] [--idle-limit 1] [--export f.cast])

Shows a Postgres session's timeline (statements, blocks, masked counts), or plays an SSH
session's terminal recording.

${STORE_CONFIG}`,
  psql: `usage: warden psql "host=H port=P dbname=D user=U"
       warden psql postgres://U@H:P/D

A minimal SQL client for machines without psql: aligned tables, errors with their SQLSTATE,
\\q or Ctrl-D to leave. The password comes from PGPASSWORD or is asked for.`,
  ssh: `usage: warden ssh ca [--config f]                the CA public key line for sshd's TrustedUserCAKeys
       warden ssh krl --out FILE [--config f]     the KRL of revoked SSH grants for sshd's RevokedKeys
       warden ssh login <grant> --as you [--dir ~/.ssh/warden] [--key FILE.pub]
                                                  a certificate for your SSH grant, and the ssh command
       warden ssh replay <session> [--speed 2] [--idle-limit 1] [--export f.cast] [--format jsonl]

ssh login talks to the broker (WARDEN_URL, WARDEN_TOKEN); only the grant's requester gets a
certificate, so --as (or WARDEN_USER) names you.`,
  policy: `usage: warden policy explain --user u --target t [--level l] [--at DATE] [--config f]
       warden policy test CASES.yaml [--config f]

explain says which rule decides and why; test runs a file of expected decisions (exit 1 when one
differs). Neither needs the secrets the configuration references.`,
};

/** The help of `command`, or undefined when it has none. */
export function helpFor(command: string | undefined): string | undefined {
  return command !== undefined && Object.hasOwn(COMMAND_HELP, command) ? COMMAND_HELP[command] : undefined;
}
