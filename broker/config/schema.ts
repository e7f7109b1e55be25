/**
 * The schema of `warden.yaml`. Parsing turns durations into milliseconds and keeps secret
 * references unresolved (they are resolved by `loadConfig`, so `policy test` can run without them).
 */
import { z } from 'zod';
import { ciConfigSchema } from '../ci/config.ts';
import { parseDuration } from './duration.ts';

const NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const name = (what: string) =>
  z.string().regex(NAME, { error: `${what} must be lower-case letters, digits, "-" or "_" (at most 63)` });

/** `30m`, `2h`: converted to milliseconds. */
export const durationSchema = z.string().transform((text, ctx) => {
  try {
    return parseDuration(text);
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: (error as Error).message });
    return z.NEVER;
  }
});

/** A KV version 2 field in Vault: `<mount>/data/<path>#<field>` (`kv/data/warden#slack_bot_token`). */
export const VAULT_SECRET_REF = /^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.@-]+)*\/data\/[A-Za-z0-9_.@/-]+#[^#\s]+$/;

/** A secret is referenced, never written inline. */
export const secretRefSchema = z.union(
  [
    z.strictObject({ env: z.string().min(1) }),
    z.strictObject({ file: z.string().min(1) }),
    z.strictObject({
      vault: z.string().regex(VAULT_SECRET_REF, {
        error:
          'a Vault secret is "<mount>/data/<path>#<field>" (KV version 2), for example "kv/data/warden#slack_bot_token"',
      }),
    }),
  ],
  {
    error:
      'secrets are referenced as {env: NAME}, {file: /path} or {vault: "kv/data/path#field"}, never written inline',
  },
);

/** The secrets Warden logs in to Vault with: from the environment or a file only. */
const localSecretRefSchema = z.union(
  [z.strictObject({ env: z.string().min(1) }), z.strictObject({ file: z.string().min(1) })],
  { error: "Vault's own login secrets are referenced as {env: NAME} or {file: /path}" },
);

/** A Vault role or mount name: letters, digits, `-`, `_`, `.` (mounts may nest with `/`). */
const VAULT_NAME = /^[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,126}[A-Za-z0-9])?$/;
const VAULT_MOUNT = /^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/;
const vaultName = (what: string) =>
  z.string().regex(VAULT_NAME, { error: `${what} is letters, digits, "-", "_" or "." (at most 128)` });
const vaultMount = z.string().regex(VAULT_MOUNT, { error: 'a mount path is like "database" or "team/ssh"' });

/**
 * How Warden logs in to Vault (docs/vault.md): a token, AppRole, or Kubernetes (the pod's
 * service-account JWT). Tokens from AppRole and Kubernetes logins are renewed before they expire,
 * and logged in again when renewal is refused.
 */
const vaultAuthSchema = z.discriminatedUnion(
  'method',
  [
    z.strictObject({ method: z.literal('token'), token: localSecretRefSchema }),
    z.strictObject({
      method: z.literal('approle'),
      role_id: localSecretRefSchema,
      secret_id: localSecretRefSchema,
      /** Where the AppRole auth method is mounted. Default `approle`. */
      mount: vaultMount.default('approle'),
    }),
    z.strictObject({
      method: z.literal('kubernetes'),
      /** The Vault role bound to the pod's service account. */
      role: vaultName('a Kubernetes auth role'),
      /** The service-account token. Default the one Kubernetes mounts in every pod. */
      jwt_file: z.string().min(1).default('/var/run/secrets/kubernetes.io/serviceaccount/token'),
      /** Where the Kubernetes auth method is mounted. Default `kubernetes`. */
      mount: vaultMount.default('kubernetes'),
    }),
  ],
  { error: 'vault.auth.method is token, approle or kubernetes' },
);

/** The Vault server Warden reads secrets from and mints credentials through (docs/vault.md). */
const vaultSchema = z.strictObject({
  /** `https://vault.example.com:8200`. */
  address: z.url({ protocol: /^https?$/, error: 'vault.address is an http(s) URL' }),
  /** Vault Enterprise namespace (`X-Vault-Namespace`). */
  namespace: z.string().min(1).optional(),
  auth: vaultAuthSchema,
  /** PEM of the CAs that sign Vault's TLS certificate (default: Node's bundled roots). */
  ca: localSecretRefSchema.optional(),
  /** Limit on one request to Vault. Default 10s. */
  timeout: durationSchema.prefault('10s'),
});

/**
 * A Postgres target whose credentials come from Vault's database secrets engine
 * (`provider: vault`). Each level names its Vault role (`levels.<name>.vault_role`, default
 * `warden-<target>-<level>`). The target's `admin` still connects: it ends the sessions of revoked
 * credentials (Vault does not) and checks that their roles are gone.
 */
const pgVaultSchema = z.strictObject({
  /** Where the database secrets engine is mounted. Default `database`. */
  mount: vaultMount.default('database'),
  /**
   * Warden writes each level's Vault role (`<mount>/roles/<role>`) from the level's grants and
   * keeps it up to date; `false` (default): the roles exist and Warden only uses them.
   */
  manage_roles: z.boolean().default(false),
  /** The engine's connection (`<mount>/config/<connection>`) managed roles use. Required with manage_roles. */
  connection: vaultName('a database connection name').optional(),
  /** `max_ttl` of managed roles. Default: the longest `duration.max` of the rules on this target. */
  max_ttl: durationSchema.optional(),
  /**
   * At start-up, revoke by prefix (`sys/leases/revoke-prefix/<mount>/creds/<role>`) the leases of a
   * level role no live grant holds. Only for roles Warden alone uses, with one broker. Default false.
   */
  revoke_prefix: z.boolean().default(false),
});

/** An SSH target whose certificates Vault's SSH secrets engine signs (`provider: vault`). */
const sshVaultSchema = z.strictObject({
  /** Where the SSH secrets engine is mounted. Default `ssh`. */
  mount: vaultMount.default('ssh'),
  /** The signing role (`<mount>/sign/<role>`) of levels that name none (`levels.<name>.vault_role`). */
  role: vaultName('a Vault SSH role').optional(),
});

/** Privileges a level may list, applied to every table (and sequence) of the level's schemas. */
export const PG_TABLE_GRANTS = [
  'select',
  'insert',
  'update',
  'delete',
  'truncate',
  'references',
  'trigger',
] as const;
export type PgTableGrant = (typeof PG_TABLE_GRANTS)[number];

/** A table named `schema.table` (or `table`, in `public`), as a level's `tables` lists it. */
const QUALIFIED_TABLE = /^([A-Za-z_][A-Za-z0-9_$]{0,62}\.)?[A-Za-z_][A-Za-z0-9_$]{0,62}$/;

const pgLevelSchema = z
  .strictObject({
    /** Table privileges granted on the level's tables (`tables`, or every table of `schemas`). */
    grants: z
      .array(
        z.string().refine((g) => (PG_TABLE_GRANTS as readonly string[]).includes(g), {
          error: (issue) => `unknown grant "${String(issue.input)}" (known: ${PG_TABLE_GRANTS.join(', ')})`,
        }),
      )
      .optional(),
    /** Existing roles the minted role becomes a member of. */
    inherit: z
      .array(z.string().min(1))
      .or(
        z
          .string()
          .min(1)
          .transform((r) => [r]),
      )
      .optional(),
    /**
     * Schemas whose every table (and sequence) `grants` covers, including tables created later.
     * Default `[public]` when `tables` is not given either.
     */
    schemas: z.array(z.string().min(1).max(63)).optional(),
    /** Only these tables (`schema.table`; `public` when unqualified), and the sequences they own. */
    tables: z
      .array(
        z.string().regex(QUALIFIED_TABLE, {
          error: 'a table is "schema.table" or "table" (unquoted identifiers)',
        }),
      )
      .optional(),
    /** Replaces the creation statements for this level (`{{name}}`, `{{password}}`, `{{expiration}}`). */
    creation_statements: z.array(z.string().min(1)).optional(),
    /**
     * Start even though the database cannot enforce the target's column masking for this level
     * (custom creation statements, or an inherited role that reads masked columns itself):
     * its roles may read raw values with their credential. Default false: start-up refuses.
     */
    allow_unenforced_masking: z.boolean().default(false),
    /** With `provider: vault`: the database secrets engine role this level's credentials come from. */
    vault_role: vaultName('a Vault role').optional(),
  })
  .refine((l) => l.grants?.length || l.inherit?.length || l.creation_statements?.length || l.vault_role, {
    error: 'a level needs grants, inherit, creation_statements or vault_role',
  })
  .transform((l) => ({ ...l, schemas: l.schemas ?? (l.tables?.length ? [] : ['public']) }));

/**
 * What happens at revocation to the objects a grant's role owns. `drop` (default): `DROP OWNED
 * ... CASCADE`. `reassign_to: role`: objects that would act after the grant ends (SECURITY
 * DEFINER functions, views, triggers, rules, event triggers, publications, subscriptions, foreign
 * servers, default privileges) are dropped all the same; the rest (tables, sequences, plain
 * functions, types) is handed to `role`, which the admin must have the privileges of.
 */
const ownedObjectsSchema = z.union(
  [z.literal('drop'), z.strictObject({ reassign_to: z.string().min(1).max(63) })],
  { error: 'owned_objects is "drop" or { reassign_to: <role> }' },
);

/**
 * Recording proxy in front of a Postgres target. People then connect to `listen` (or `public`)
 * with the grant's user name and a per-grant proxy password; the minted role's password stays
 * with the proxy. `guardrails` and `masking` are validated by the proxy at start-up (their
 * schemas live with the proxy: `proxy/guardrails/sql/config.ts`, `proxy/masking/config.ts`).
 */
const pgProxySchema = z
  .strictObject({
    /** `host:port` the proxy listens on. */
    listen: z.string().regex(/^[^:]+:\d{1,5}$/, { error: 'listen is "host:port"' }),
    /** `host:port` people are told to connect to (default: `listen`). */
    public: z
      .string()
      .regex(/^[^:]+:\d{1,5}$/, { error: 'public is "host:port"' })
      .optional(),
    /** PEM files of the proxy's TLS certificate and key. */
    tls: z.strictObject({ cert: z.string().min(1), key: z.string().min(1) }).optional(),
    /** Accept clients that do not ask for TLS (default false: they are refused). */
    allow_plaintext: z.boolean().default(false),
    guardrails: z.record(z.string(), z.unknown()).default({}),
    masking: z.record(z.string(), z.unknown()).default({}),
    /** Also record the (masked) result rows of each statement (default false). */
    record_rows: z.boolean().default(false),
  })
  .refine((p) => p.tls || p.allow_plaintext, {
    error: 'give proxy.tls (cert and key files) or set proxy.allow_plaintext: true',
  });

/** libpq's `sslmode` values Warden offers (no `allow`/`prefer`: no silent plaintext fallback). */
export const PG_TLS_MODES = ['disable', 'require', 'verify-ca', 'verify-full'] as const;

/**
 * TLS towards the database, for the broker's admin connection and the proxy's upstream
 * connections alike (see `broker/providers/postgres/tls.ts`). Default mode: `verify-full`, or
 * `disable` when the host is loopback.
 */
const pgTlsSchema = z
  .strictObject({
    mode: z.enum(PG_TLS_MODES, { error: `mode is one of ${PG_TLS_MODES.join(', ')}` }).optional(),
    /** PEM of the CAs to trust (default: Node's bundled roots). */
    ca: secretRefSchema.optional(),
    /** PEM client certificate and its key. */
    cert: secretRefSchema.optional(),
    key: secretRefSchema.optional(),
    /** Name the server certificate must carry under verify-full (default: the host). */
    servername: z.string().min(1).max(253).optional(),
  })
  .superRefine((tls, ctx) => {
    if (Boolean(tls.cert) !== Boolean(tls.key)) {
      ctx.addIssue({
        code: 'custom',
        path: [tls.cert ? 'key' : 'cert'],
        message: 'give cert and key together',
      });
    }
    if (tls.mode === 'disable' || tls.mode === 'require') {
      for (const key of ['ca', 'servername'] as const) {
        if (tls[key])
          ctx.addIssue({
            code: 'custom',
            path: [key],
            message: `${key} is only checked under mode verify-ca or verify-full, not ${tls.mode}`,
          });
      }
    }
    if (tls.mode === 'disable' && tls.cert) {
      ctx.addIssue({
        code: 'custom',
        path: ['cert'],
        message: 'a client certificate needs TLS (mode is disable)',
      });
    }
  });

const postgresTargetSchema = z
  .strictObject({
    kind: z.literal('postgres'),
    /** Who mints this target's credentials (see `broker/providers/registry.ts`); default `postgres`. */
    provider: z.string().min(1).optional(),
    description: z.string().optional(),
    /** How the broker reaches the database as a role that may create roles. */
    admin: z.strictObject({
      host: z.string().min(1),
      port: z.number().int().min(1).max(65535).default(5432),
      database: z.string().min(1),
      user: z.string().min(1),
      /** Required by the `postgres` provider (checked by its plugin); another provider may not need it. */
      password: secretRefSchema.optional(),
      /** Legacy: `true` reads as `tls: {mode: verify-full}`. Use `tls` instead. */
      ssl: z.boolean().default(false),
    }),
    /** TLS towards the database, for the admin connection and the proxy (see {@link pgTlsSchema}). */
    tls: pgTlsSchema.optional(),
    /** Where people connect (defaults to the admin host and port). */
    connect: z
      .strictObject({ host: z.string().min(1), port: z.number().int().min(1).max(65535) })
      .partial()
      .default({}),
    levels: z.record(name('a level name'), pgLevelSchema),
    connection_limit: z.number().int().min(1).max(1000).default(5),
    /**
     * Prefix of minted role names (and of the level roles `<prefix>_<level>` and the marker role
     * `<prefix>__minted`). Warden alters or drops a role only when its store recorded minting it
     * and the role is a member of the marker role; the admin user may not fall under the prefix.
     */
    role_prefix: z
      .string()
      .regex(/^[a-z][a-z0-9_]{0,20}$/, {
        error: 'role_prefix is lower-case letters, digits and "_", at most 21',
      })
      .default('warden_'),
    /** What revocation does with the objects a grant's role owns (see {@link ownedObjectsSchema}). */
    owned_objects: ownedObjectsSchema.default('drop'),
    /**
     * Replace Warden's owned-object and DROP ROLE steps (after NOLOGIN and ending sessions).
     * `{{name}}` is the role. The revocation only counts as done once the role is gone.
     */
    revocation_statements: z.array(z.string().min(1)).optional(),
    approval_channel: z.string().optional(),
    /** Put Warden's recording proxy in the data path (docs/pg-proxy.md). */
    proxy: pgProxySchema.optional(),
    /**
     * Column masking for a target without `proxy:` (the `masking:` fragment; with a proxy, use
     * `proxy.masking`). Its column rules are enforced by the database for every role Warden
     * mints (docs/masking.md).
     */
    masking: z.record(z.string(), z.unknown()).optional(),
    /** With `provider: vault`: the database secrets engine (see {@link pgVaultSchema}). */
    vault: pgVaultSchema.optional(),
  })
  .refine((t) => !(t.masking && t.proxy && Object.keys(t.proxy.masking).length > 0), {
    path: ['masking'],
    error: 'masking and proxy.masking both set: keep the rules in proxy.masking',
  })
  .refine((t) => !(t.admin.ssl && t.tls), {
    path: ['admin', 'ssl'],
    error: 'admin.ssl and tls both set: drop admin.ssl (tls governs the admin connection too)',
  })
  .superRefine((t, ctx) => {
    // Roles under the prefix are Warden's to drop: the admin (or a role it hands out or reassigns
    // to) named that way would be taken for a leftover grant role.
    const prefix = t.role_prefix;
    const under = (role: string) => role.startsWith(prefix);
    if (under(t.admin.user)) {
      ctx.addIssue({
        code: 'custom',
        path: ['admin', 'user'],
        message: `the admin user "${t.admin.user}" falls under role_prefix "${prefix}": Warden would take it for a role it minted. Rename the admin (for example "warden") or set role_prefix`,
      });
    }
    if (typeof t.owned_objects === 'object' && under(t.owned_objects.reassign_to)) {
      ctx.addIssue({
        code: 'custom',
        path: ['owned_objects', 'reassign_to'],
        message: `"${t.owned_objects.reassign_to}" falls under role_prefix "${prefix}"`,
      });
    }
    for (const [name, level] of Object.entries(t.levels)) {
      (level.inherit ?? []).forEach((role, i) => {
        if (under(role)) {
          ctx.addIssue({
            code: 'custom',
            path: ['levels', name, 'inherit', i],
            message: `"${role}" falls under role_prefix "${prefix}": roles there are Warden's own`,
          });
        }
      });
    }
  });

/** Login names a certificate may carry (no commas, wildcards or spaces: sshd splits on commas). */
const SSH_PRINCIPAL = /^[A-Za-z0-9_][A-Za-z0-9._@-]{0,63}$/;

/** One access level of an SSH target: what the minted certificate (and the proxy) allow. */
const sshLevelSchema = z.strictObject({
  /** Accounts on the target the certificate is valid for; the proxy logs in upstream as one of them. */
  principals: z.array(z.string().regex(SSH_PRINCIPAL, { error: 'a principal is a login name' })).min(1),
  /** `force-command` critical option: the only command the certificate may run. */
  force_command: z.string().min(1).max(4096).optional(),
  /** `source-address` critical option: client addresses or CIDR ranges. */
  source_address: z.array(z.string().min(1)).min(1).optional(),
  permit_pty: z.boolean().default(true),
  permit_agent_forwarding: z.boolean().default(false),
  permit_port_forwarding: z.boolean().default(false),
  permit_x11_forwarding: z.boolean().default(false),
  /** With `provider: vault`: the SSH secrets engine role that signs this level's certificates. */
  vault_role: vaultName('a Vault SSH role').optional(),
});

const sshTargetSchema = z.strictObject({
  kind: z.literal('ssh'),
  /** Who mints this target's credentials (see `broker/providers/registry.ts`); default `ssh-ca`. */
  provider: z.string().min(1).optional(),
  description: z.string().optional(),
  /** The sshd the certificates log in to, and the proxy connects to. */
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535).default(22),
  levels: z.record(name('a level name'), sshLevelSchema),
  /** Command guardrails of the SSH proxy (see proxy/ssh/guardrails); every built-in rule is on by default. */
  guardrails: z.record(z.string(), z.unknown()).optional(),
  /** Record what users type (never while the terminal has echo off). Default true. */
  record_input: z.boolean().default(true),
  /** Output masking of the SSH proxy (the shared `masking:` fragment, checked by the proxy at start). */
  masking: z.record(z.string(), z.unknown()).optional(),
  /** The target's host key the proxy pins: an OpenSSH public key line (`ssh-ed25519 AAAA...`). */
  host_key: z.string().min(1).optional(),
  /** A known_hosts file whose keys for `host`/`[host]:port` the proxy pins (instead of `host_key`). */
  known_hosts: z.string().min(1).optional(),
  /** Connect without checking the target's host key. Off by default; for tests and labs only. */
  insecure_skip_host_key_check: z.boolean().default(false),
  approval_channel: z.string().optional(),
  /** With `provider: vault`: the SSH secrets engine (see {@link sshVaultSchema}). */
  vault: sshVaultSchema.optional(),
});

export const targetSchema = z.discriminatedUnion('kind', [postgresTargetSchema, sshTargetSchema]);

/** Warden's SSH certificate authority and recording proxy. */
const sshSchema = z.strictObject({
  /** The CA's Ed25519 private key (OpenSSH or PKCS#8 PEM, unencrypted). */
  ca_key: secretRefSchema,
  proxy: z
    .strictObject({
      listen: z
        .string()
        .regex(/^[^:]+:\d{1,5}$/, { error: 'listen is "host:port"' })
        .default('127.0.0.1:2222'),
      /** Address users type after `ssh -p`; printed by `warden ssh login`. */
      public_host: z.string().min(1).optional(),
      /** The proxy's host key (Ed25519 private key). */
      host_key: secretRefSchema,
      /** The key the proxy logs in upstream with; its public half goes into the targets' authorized_keys. */
      upstream_key: secretRefSchema,
    })
    .optional(),
});

const personSchema = z.strictObject({
  id: name('a person id'),
  name: z.string().optional(),
  email: z.email(),
  slack: z.string().optional(),
  teams: z.string().optional(),
  manager: z.string().optional(),
  groups: z.array(name('a group name')).default([]),
  admin: z.boolean().default(false),
});

const approverSchema = z.union([
  z.literal('manager'),
  z.strictObject({ group: name('a group name') }),
  z.strictObject({ user: name('a person id') }),
]);

const whoSchema = z
  .strictObject({
    anyone: z.boolean().optional(),
    groups: z.array(name('a group name')).optional(),
    users: z.array(name('a person id')).optional(),
  })
  .default({ anyone: true });

const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
const HOURS = /^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$/;

const windowSchema = z.strictObject({
  days: z.array(z.enum(DAYS)).default([...DAYS]),
  hours: z
    .string()
    .regex(HOURS, { error: 'hours are "HH:MM-HH:MM", for example "08:00-20:00"' })
    .default('00:00-24:00'),
  timezone: z
    .string()
    .refine(
      (tz) => {
        try {
          new Intl.DateTimeFormat('en', { timeZone: tz });
          return true;
        } catch {
          return false;
        }
      },
      { error: (issue) => `unknown time zone "${String(issue.input)}"` },
    )
    .default('UTC'),
});

const ruleSchema = z.strictObject({
  name: name('a rule name'),
  description: z.string().optional(),
  targets: z.array(z.string().min(1)).min(1),
  /** Levels this rule covers; all levels of its targets when omitted. */
  levels: z.array(z.string().min(1)).optional(),
  who: whoSchema,
  duration: z.strictObject({ default: durationSchema, max: durationSchema }),
  reason: z
    .strictObject({
      required: z.boolean().default(true),
      pattern: z
        .string()
        .refine(
          (p) => {
            try {
              new RegExp(p);
              return true;
            } catch {
              return false;
            }
          },
          { error: 'not a valid regular expression' },
        )
        .optional(),
      hint: z.string().optional(),
    })
    .default({ required: true }),
  approvers: z.array(approverSchema).default([]),
  /** `N` approvals from the union of approvers, or one from every listed approver entry. */
  approvals: z.union([z.number().int().min(1).max(10), z.literal('every')]).default(1),
  auto_approve: z
    .strictObject({
      groups: z.array(name('a group name')).default([]),
      users: z.array(z.string()).default([]),
    })
    .optional(),
  break_glass: z
    .strictObject({
      groups: z.array(name('a group name')).default([]),
      users: z.array(z.string()).default([]),
    })
    .optional(),
  window: windowSchema.optional(),
  pending_timeout: durationSchema.prefault('1h'),
  /** Extensions: allowed by default, and approved like the request unless `needs_approval: false`. */
  extend: z
    .strictObject({ allowed: z.boolean().default(true), needs_approval: z.boolean().default(true) })
    .default({ allowed: true, needs_approval: true }),
  approval_channel: z.string().optional(),
});

const tokenSchema = z.strictObject({
  name: name('a token name'),
  role: z.enum(['service', 'admin']),
  secret: secretRefSchema,
});

const storeSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('embedded'), path: z.string().min(1).default('.warden/warden.db') }),
  z.strictObject({ kind: z.literal('postgres'), url: secretRefSchema }),
]);

/**
 * The audit log's keys and where its signed heads go (docs/audit.md). Without `signing_key` the
 * chain is unkeyed: anyone who can write the store can rewrite it and recompute the hashes.
 */
const auditSchema = z.strictObject({
  /** Ed25519 private key (PKCS#8 PEM, `warden audit keygen`) that signs every append and checkpoint. */
  signing_key: secretRefSchema.optional(),
  /** SPKI PEM files of public keys that verify too: keys rotated out, or an auditor's copy. */
  public_keys: z.array(z.string().min(1)).default([]),
  checkpoints: z
    .strictObject({
      /** A JSON-lines file (created 0600) the signed heads are appended to; keep it off the store's disk. */
      file: z.string().min(1).optional(),
      /** Also write each checkpoint to the log (info, `audit_checkpoint`), for a SIEM. Default true. */
      log: z.boolean().default(true),
      /** How often the head is checkpointed when it moved. Default 1m. */
      every: durationSchema.prefault('1m'),
    })
    .prefault({}),
});

export const configSchema = z.strictObject({
  broker: z
    .strictObject({
      listen: z
        .string()
        .regex(/^[^:]+:\d{1,5}$/, { error: 'listen is "host:port"' })
        .default('127.0.0.1:8080'),
      store: storeSchema.default({ kind: 'embedded', path: '.warden/warden.db' }),
      tokens: z.array(tokenSchema).default([]),
      expiring_soon: durationSchema.prefault('5m'),
      /** How often the sweeper checks for work a timer may have missed (other replicas, clock jumps). */
      sweep_interval: durationSchema.prefault('5s'),
      /**
       * How long a replica holds a credential it is revoking before another may take it over
       * (a replica that died mid-revocation): its revocation resumes at most this long after.
       */
      revocation_lease: durationSchema.prefault('60s'),
    })
    .prefault({}),
  targets: z.record(name('a target name'), targetSchema).default({}),
  people: z.array(personSchema).default([]),
  rules: z.array(ruleSchema).default([]),
  /** CI jobs that trade OIDC tokens for credentials. */
  ci: ciConfigSchema.optional(),
  /**
   * Chat front ends. Validated by the bot when it starts (`bot/config.ts`): the broker knows
   * nothing of Slack or Teams.
   */
  chat: z.unknown().optional(),
  /** SSH certificate authority and proxy; needed once a target has `kind: ssh`. */
  ssh: sshSchema.optional(),
  /** Audit keys and checkpoints (see {@link auditSchema}). */
  audit: auditSchema.prefault({}),
  /** HashiCorp Vault: `{vault: ...}` secrets and `provider: vault` targets (see {@link vaultSchema}). */
  vault: vaultSchema.optional(),
});

export type ConfigInput = z.input<typeof configSchema>;
export type ParsedConfig = z.output<typeof configSchema>;
export type TargetConfig = z.output<typeof targetSchema>;
export type PostgresTargetConfig = z.output<typeof postgresTargetSchema>;
export type SshTargetConfig = z.output<typeof sshTargetSchema>;
export type SshLevelConfig = z.output<typeof sshLevelSchema>;
export type SshConfig = z.output<typeof sshSchema>;
export type PgProxyConfig = z.output<typeof pgProxySchema>;
export type PgTlsConfig = z.output<typeof pgTlsSchema>;
export type PgLevelConfig = z.output<typeof pgLevelSchema>;
export type PgOwnedObjectsConfig = z.output<typeof ownedObjectsSchema>;
export type RuleConfig = z.output<typeof ruleSchema>;
export type PersonConfig = z.output<typeof personSchema>;
export type ApproverConfig = z.output<typeof approverSchema>;
export type WindowConfig = z.output<typeof windowSchema>;
export type TokenConfig = z.output<typeof tokenSchema>;
export type AuditConfig = z.output<typeof auditSchema>;
export type VaultConfig = z.output<typeof vaultSchema>;
export type VaultAuthConfig = z.output<typeof vaultAuthSchema>;
export type PgVaultConfig = z.output<typeof pgVaultSchema>;
export type SshVaultConfig = z.output<typeof sshVaultSchema>;
