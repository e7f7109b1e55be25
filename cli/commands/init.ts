/** `warden init`: writes a commented warden.yaml to start a real deployment from. */
import { existsSync, writeFileSync } from 'node:fs';
import { UsageError } from '../errors.ts';
import { ExitCode, type Io } from '../output.ts';

export const INIT_TEMPLATE = `# warden.yaml: Warden's configuration. \`warden doctor\` checks it against the real world;
# \`warden policy explain\` and \`warden policy test\` check the rules. Secrets are never written
# here: reference them as { env: NAME } or { file: /path }.

broker:
  listen: 127.0.0.1:8080              # the broker API (the bot, the proxy and the CLI talk to it)
  store:
    kind: embedded                    # one process; use { kind: postgres, url: { env: WARDEN_STORE_URL } } for replicas
    path: .warden/warden.db
  tokens:                             # who may call the API: service tokens act for a person, admin tokens as admins
    - { name: cli-admin, role: admin, secret: { env: WARDEN_ADMIN_TOKEN } }
  expiring_soon: 5m                   # when requesters get the "expiring soon" DM

# audit:                              # sign the audit log (docs/audit.md); make the key with warden audit keygen
#   signing_key: { file: /run/secrets/warden-audit-key.pem }
#   checkpoints: { file: /var/lib/warden/audit-checkpoints.jsonl }

targets:
  prod-db:                            # the name people type: /access prod-db 30m ...
    kind: postgres
    admin:                            # a role with CREATEROLE, granted the table privileges WITH GRANT OPTION (docs/postgres.md)
      host: db.internal
      port: 5432
      database: app
      user: warden                    # not under role_prefix (warden_): Warden refuses that
      password: { env: PROD_DB_ADMIN_PASSWORD }
    levels:
      read: { grants: [select] }
      write: { grants: [select, insert, update, delete] }
    connection_limit: 3
    approval_channel: '#db-access'    # where its requests are posted

people:                               # the directory: who is who, in chat and in the org chart
  - { id: alice, email: alice@example.com, slack: U0000ALICE, manager: maria, groups: [engineering] }
  - { id: maria, email: maria@example.com, slack: U0000MARIA, groups: [engineering, managers] }
  - { id: bob, email: bob@example.com, slack: U00000BOB, manager: maria, groups: [dba] }

rules:                                # tried in order; the first that covers target, level and person decides
  - name: prod-read
    targets: [prod-db]
    levels: [read]
    duration: { default: 30m, max: 4h }
    approvers: [manager, { group: dba }]
    approvals: 1                      # or 'every': one approval from each approver entry
    pending_timeout: 1h
  - name: prod-write
    targets: [prod-db]
    levels: [write]
    duration: { default: 15m, max: 1h }
    reason: { required: true, pattern: '^(INC|CHG)-\\d+', hint: 'start with the ticket id' }
    approvers: [manager, { group: dba }]
    approvals: every
    window: { days: [mon, tue, wed, thu, fri], hours: '08:00-20:00', timezone: UTC }

chat:
  default_channel: '#access-requests'
  slack:                              # create the app from manifests/slack-app.yaml
    mode: http                        # or socket (then app_token instead of a public URL)
    listen: 0.0.0.0:3000
    signing_secret: { env: SLACK_SIGNING_SECRET }
    bot_token: { env: SLACK_BOT_TOKEN }
`;

export function runInit(
  positionals: string[],
  flags: Record<string, string | boolean | undefined>,
  io: Io,
): number {
  const file = positionals[0] ?? (typeof flags.config === 'string' ? flags.config : 'warden.yaml');
  if (existsSync(file) && flags.force !== true) {
    throw new UsageError(`${file} exists; pass --force to overwrite it`);
  }
  writeFileSync(file, INIT_TEMPLATE, { mode: 0o644 });
  io.out(
    `wrote ${file}. Next: edit it, set the secrets it references, then run warden doctor --config ${file}`,
  );
  return ExitCode.Ok;
}
