/**
 * PostgreSQL credentials from Vault's database secrets engine (`provider: vault`). Each level
 * names a Vault role; `<mount>/creds/<role>` gives a username, a password and a lease, whose TTL
 * Warden sets to the grant's duration (a renewal right after issue) and moves on extension,
 * within the role's `max_ttl`.
 *
 * What Warden adds to Vault's own revocation:
 * - the role's sessions end: before the lease is revoked, the target's admin connection makes the
 *   role NOLOGIN and ends its sessions (`revocation.ts`, the native provider's steps), since
 *   Vault's revocation leaves them running (hashicorp/vault#699). A Vault that is down at expiry
 *   therefore still leaves no way in;
 * - the role is confirmed gone after Vault revoked the lease. When Vault's revocation statements
 *   left it (grants on sequences or group roles, hashicorp/vault#1535, #1994), a role Warden
 *   manages (`manage_roles`, carrying Warden's mark) is removed by the native revocation; any
 *   other fails loudly, like every revocation failure: retried, shown on the grant, told to
 *   approvers.
 *
 * With `manage_roles`, Warden writes each level's Vault role from the level's `grants` and
 * `inherit`: the minted role joins the level role Warden's admin keeps the privileges on (as the
 * native provider does) and the marker role, so revocation never rewrites table ACLs.
 */
import pg from 'pg';
import type { PgVaultConfig, PostgresTargetConfig } from '../../config/schema.ts';
import { Secret } from '../../config/secrets.ts';
import { ConfigError, ProviderError, VaultError } from '../../errors.ts';
import type { Logger } from '../../log.ts';
import type { AccessRequest, CredentialRecord } from '../../model.ts';
import type { VaultClient } from '../../vault/client.ts';
import { badResponse } from '../../vault/client.ts';
import { PostgresCredential } from '../postgres/credential.ts';
import { MASKED_SEARCH_PATH_STATEMENT } from '../postgres/masking-views.ts';
import type { PostgresProvider } from '../postgres/postgres-provider.ts';
import type {
  CredentialProvider,
  MintResult,
  RevokeResult,
  SelfTestStep,
  TargetHealth,
} from '../provider.ts';
import { formatLeaseHandle, parseLeaseHandle, renewLease, revokeLease, secondsUntil } from './lease.ts';
import { checkVaultReachable } from './self-test.ts';

const { escapeIdentifier } = pg;

/** A lease younger than this may belong to a mint in progress on another replica: reconciliation leaves it. */
const RECONCILE_GRACE_MS = 10 * 60_000;
/** Leases revoked at once in one `revoke` call. */
const REVOKE_CONCURRENCY = 16;
/** A renewal this many seconds short of what was asked is taken as Vault's `max_ttl` cap. */
const TTL_SLACK_SECONDS = 2;

/** Options of {@link VaultDbProvider}. */
export interface VaultDbProviderOptions {
  targetName: string;
  target: PostgresTargetConfig;
  vault: VaultClient;
  /** The target's admin connection (the native provider's), which ends sessions and checks roles. */
  admin: PostgresProvider;
  /** `max_ttl` of managed Vault roles, in ms. */
  maxTtlMs: number;
  clock?: () => number;
  logger?: Logger | undefined;
}

/** The Vault role of a level: `levels.<name>.vault_role`, by default `warden-<target>-<level>`. */
export function vaultRoleOf(targetName: string, target: PostgresTargetConfig, level: string): string {
  return target.levels[level]?.vault_role ?? `warden-${targetName}-${level}`.slice(0, 128);
}

/**
 * The statements of a managed Vault role, in Vault's template style (`"{{name}}"`,
 * `'{{password}}'`, `'{{expiration}}'`, substituted as plain text).
 */
export function buildManagedRoleStatements(input: {
  inherit: readonly string[];
  levelRole: string | undefined;
  markerRole: string;
  connectionLimit: number;
  maskedSearchPath: boolean;
}): { creation: string[]; revocation: string[]; renew: string[] } {
  const creation = [
    `CREATE ROLE "{{name}}" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION INHERIT PASSWORD '{{password}}' VALID UNTIL '{{expiration}}' CONNECTION LIMIT ${Math.trunc(input.connectionLimit)}`,
    ...input.inherit.map((role) => `GRANT ${escapeIdentifier(role)} TO "{{name}}"`),
    ...(input.levelRole ? [`GRANT ${escapeIdentifier(input.levelRole)} TO "{{name}}"`] : []),
    `GRANT ${escapeIdentifier(input.markerRole)} TO "{{name}}"`,
    ...(input.maskedSearchPath ? [MASKED_SEARCH_PATH_STATEMENT.replace('{{name}}', '"{{name}}"')] : []),
  ];
  // Memberships only: nothing to revoke on tables, so DROP OWNED and DROP ROLE are all it takes.
  return {
    creation,
    revocation: ['DROP OWNED BY "{{name}}"', 'DROP ROLE IF EXISTS "{{name}}"'],
    renew: [`ALTER ROLE "{{name}}" VALID UNTIL '{{expiration}}'`],
  };
}

export class VaultDbProvider implements CredentialProvider {
  readonly name = 'vault';
  readonly #options: VaultDbProviderOptions;
  readonly #settings: PgVaultConfig;
  readonly #clock: () => number;
  /** Managed roles written this run, by level (again after a failure). */
  readonly #written = new Map<string, Promise<void>>();

  constructor(options: VaultDbProviderOptions) {
    this.#options = options;
    this.#settings = options.target.vault ?? {
      mount: 'database',
      manage_roles: false,
      revoke_prefix: false,
    };
    this.#clock = options.clock ?? Date.now;
  }

  get #vault(): VaultClient {
    return this.#options.vault;
  }

  #roleOf(level: string): string {
    return vaultRoleOf(this.#options.targetName, this.#options.target, level);
  }

  /** Writes the level's Vault role from its grants (once per run, and after upkeep). */
  #ensureRole(level: string): Promise<void> {
    if (!this.#settings.manage_roles) return Promise.resolve();
    let written = this.#written.get(level);
    if (!written) {
      written = this.#writeRole(level).catch((error) => {
        this.#written.delete(level);
        throw error;
      });
      this.#written.set(level, written);
    }
    return written;
  }

  async #writeRole(level: string): Promise<void> {
    const { target, admin } = this.#options;
    const levelRole = await admin.prepareLevel(level);
    const statements = buildManagedRoleStatements({
      inherit: target.levels[level]?.inherit ?? [],
      levelRole,
      markerRole: admin.markerRole,
      connectionLimit: target.connection_limit,
      maskedSearchPath: admin.masksColumns,
    });
    const role = this.#roleOf(level);
    await this.#vault.write(
      `${this.#settings.mount}/roles/${role}`,
      {
        db_name: this.#settings.connection,
        creation_statements: statements.creation,
        revocation_statements: statements.revocation,
        renew_statements: statements.renew,
        default_ttl: '300s',
        max_ttl: `${Math.ceil(this.#options.maxTtlMs / 1000)}s`,
      },
      `writing the Vault role ${this.#settings.mount}/roles/${role}`,
    );
  }

  async mint(grant: AccessRequest, expiresAt: number): Promise<MintResult> {
    const { target, targetName } = this.#options;
    if (!target.levels[grant.level])
      throw new ProviderError(`target ${targetName} has no level ${grant.level}`);
    await this.#ensureRole(grant.level);
    if (this.#settings.manage_roles) await this.#options.admin.prepareLevel(grant.level);
    const path = `${this.#settings.mount}/creds/${this.#roleOf(grant.level)}`;
    const what = `minting a credential from ${path}`;
    const answer = await this.#vault.read(path, what);
    const data = answer.data as { username?: unknown; password?: unknown } | null | undefined;
    const leaseId =
      typeof answer.lease_id === 'string' && answer.lease_id !== '' ? answer.lease_id : undefined;
    if (
      !leaseId ||
      typeof data?.username !== 'string' ||
      !data.username ||
      typeof data.password !== 'string'
    ) {
      if (leaseId) await revokeLease(this.#vault, leaseId).catch(() => {});
      throw badResponse(this.#vault.address, what, 'without lease_id, data.username and data.password');
    }
    const username = data.username;
    const password = new Secret(data.password);
    const wanted = secondsUntil(expiresAt, this.#clock());
    try {
      if (answer.lease_duration !== wanted) {
        const granted = await renewLease(this.#vault, leaseId, wanted);
        if (granted < wanted - TTL_SLACK_SECONDS) {
          throw this.#capped(this.#roleOf(grant.level), granted, wanted, 'the grant');
        }
      }
    } catch (error) {
      // The credential must not outlive a mint that failed.
      await this.#revokeOne(username, leaseId).catch((e) =>
        this.#options.logger?.error(
          { target: targetName, lease: leaseId, error: (e as Error).message },
          'revoking a half-minted Vault lease failed',
        ),
      );
      throw error;
    }
    return {
      handle: formatLeaseHandle(username, leaseId),
      credential: new PostgresCredential({
        host: target.connect.host ?? target.admin.host,
        port: target.connect.port ?? target.admin.port,
        database: target.admin.database,
        user: username,
        password,
        expiresAt,
      }),
    };
  }

  #capped(role: string, granted: number, wanted: number, what: string): ProviderError {
    return new ProviderError(
      `Vault caps leases of ${this.#settings.mount}/roles/${role} at its max_ttl: ${granted} s left, ${what} needs ${wanted} s. ` +
        `Raise max_ttl of the Vault role${this.#settings.manage_roles ? ` (targets.${this.#options.targetName}.vault.max_ttl)` : ''}, or ask for less`,
    );
  }

  /** Renews the lease to the new expiry; refused (and the grant not extended) past Vault's `max_ttl`. */
  async extend(credential: CredentialRecord, expiresAt: number): Promise<void> {
    const parsed = this.#parse(credential);
    const wanted = secondsUntil(expiresAt, this.#clock());
    const granted = await renewLease(this.#vault, parsed.leaseId, wanted);
    if (granted < wanted - TTL_SLACK_SECONDS) {
      throw this.#capped(parsed.leaseId.split('/').at(-2) ?? '?', granted, wanted, 'the extension');
    }
  }

  #parse(credential: CredentialRecord): { username: string; leaseId: string } {
    const parsed = parseLeaseHandle(credential.handle);
    if (!parsed) {
      throw new ProviderError(
        `credential ${credential.id} has no Vault lease in its handle (${credential.handle})`,
      );
    }
    return parsed;
  }

  async #revokeOne(username: string, leaseId: string): Promise<void> {
    const result = await this.#revokeAll([{ id: leaseId, username, leaseId }]);
    const failure = result.failures.get(leaseId);
    if (failure) throw failure;
  }

  async revoke(credentials: readonly CredentialRecord[]): Promise<RevokeResult> {
    const result: RevokeResult = { failures: new Map(), details: new Map() };
    const items: { id: string; username: string; leaseId: string }[] = [];
    for (const credential of credentials) {
      try {
        items.push({ id: credential.id, ...this.#parse(credential) });
      } catch (error) {
        result.failures.set(credential.id, error as Error);
      }
    }
    const done = await this.#revokeAll(items);
    for (const [id, error] of done.failures) result.failures.set(id, error);
    for (const [id, details] of done.details) result.details.set(id, details);
    return result;
  }

  /** Sessions ended, leases revoked, roles confirmed gone (see the module comment). */
  async #revokeAll(
    items: readonly { id: string; username: string; leaseId: string }[],
  ): Promise<RevokeResult> {
    const result: RevokeResult = { failures: new Map(), details: new Map() };
    if (items.length === 0) return result;
    const { admin, targetName } = this.#options;
    const users = [...new Set(items.map((i) => i.username))];
    let cut: Awaited<ReturnType<PostgresProvider['cutSessions']>>;
    try {
      cut = await admin.cutSessions(users, this.#settings.manage_roles);
    } catch (error) {
      for (const item of items) result.failures.set(item.id, error as Error);
      return result;
    }
    const pending = items.filter((item) => {
      const refused = cut.refused.get(item.username);
      if (refused) result.failures.set(item.id, refused);
      return !refused;
    });
    let next = 0;
    const revoked: { id: string; username: string; leaseId: string }[] = [];
    await Promise.all(
      Array.from({ length: Math.min(REVOKE_CONCURRENCY, pending.length) }, async () => {
        while (next < pending.length) {
          const item = pending[next++]!;
          try {
            await revokeLease(this.#vault, item.leaseId);
            revoked.push(item);
          } catch (error) {
            result.failures.set(
              item.id,
              new ProviderError(
                `revoking Vault lease ${item.leaseId} failed (its role ${item.username} can no longer log in and its sessions were ended): ${(error as Error).message}`,
                { cause: error },
              ),
            );
          }
        }
      }),
    );
    let left: string[];
    try {
      left = await admin.findExistingRoles(revoked.map((r) => r.username));
    } catch (error) {
      for (const item of revoked) result.failures.set(item.id, error as Error);
      return result;
    }
    for (const item of revoked) {
      if (!left.includes(item.username)) {
        result.details.set(item.id, {
          lease_id: item.leaseId,
          sessions_ended: cut.roles.includes(item.username),
        });
        continue;
      }
      if (!this.#settings.manage_roles) {
        result.failures.set(
          item.id,
          new ProviderError(
            `Vault revoked lease ${item.leaseId} but role ${item.username} is still on ${targetName} (NOLOGIN, no sessions): the revocation_statements of Vault role ${item.leaseId.split('/').at(-2)} must drop it`,
          ),
        );
        continue;
      }
      try {
        await admin.removeOrphan(item.username);
        result.details.set(item.id, {
          lease_id: item.leaseId,
          sessions_ended: true,
          role_removed_by: 'warden',
        });
      } catch (error) {
        result.failures.set(item.id, error as Error);
      }
    }
    return result;
  }

  /** Vault leases are reconciled from the store ({@link reconcile}), not listed by handle. */
  async listManaged(): Promise<string[]> {
    return [];
  }

  async removeOrphan(handle: string): Promise<void> {
    const parsed = parseLeaseHandle(handle);
    if (!parsed) throw new ProviderError(`not a Vault lease handle: ${handle}`);
    await this.#revokeOne(parsed.username, parsed.leaseId);
  }

  /**
   * Start-up: leases under this target's Vault roles that no live credential holds are revoked
   * (managed roles, or `revoke_prefix`): by id, or by prefix when `revoke_prefix` is set and no
   * live grant holds a lease of the role. Leases younger than {@link RECONCILE_GRACE_MS} are left
   * (another replica may be minting them). Marked roles no live credential holds lose their
   * sessions first.
   */
  async reconcile(live: readonly CredentialRecord[]): Promise<string[]> {
    if (!this.#settings.manage_roles && !this.#settings.revoke_prefix) return [];
    const { admin, target } = this.#options;
    const liveLeases = new Set<string>();
    const liveUsers = new Set<string>();
    for (const record of live) {
      const parsed = parseLeaseHandle(record.handle);
      if (parsed) {
        liveLeases.add(parsed.leaseId);
        liveUsers.add(parsed.username);
      }
    }
    const leftoverRoles = async () =>
      this.#settings.manage_roles
        ? // Roles named under role_prefix are the native provider's (a target on the same database).
          (await admin.listManaged()).filter((u) => !liveUsers.has(u) && !u.startsWith(target.role_prefix))
        : [];
    const leftover = await leftoverRoles();
    if (leftover.length) await admin.cutSessions(leftover, true);
    const removed: string[] = [];
    const now = this.#clock();
    for (const role of new Set(Object.keys(target.levels).map((l) => this.#roleOf(l)))) {
      const prefix = `${this.#settings.mount}/creds/${role}/`;
      const keys = await this.#vault.list(`sys/leases/lookup/${prefix}`);
      const ids = keys.filter((k) => !k.endsWith('/')).map((k) => `${prefix}${k}`);
      const stale = ids.filter((id) => !liveLeases.has(id));
      if (stale.length === 0) continue;
      if (this.#settings.revoke_prefix && stale.length === ids.length) {
        await this.#vault.write(
          `sys/leases/revoke-prefix/${prefix}`,
          {},
          `revoking the leases under ${prefix}`,
        );
        removed.push(...stale);
        continue;
      }
      for (const id of stale) {
        const lookup = await this.#vault.write(
          'sys/leases/lookup',
          { lease_id: id },
          `looking up lease ${id}`,
        );
        const issued = Date.parse(String((lookup.data as { issue_time?: unknown } | null)?.issue_time ?? ''));
        if (!Number.isFinite(issued) || now - issued < RECONCILE_GRACE_MS) continue;
        await revokeLease(this.#vault, id);
        removed.push(id);
      }
    }
    for (const user of await leftoverRoles()) {
      await admin
        .removeOrphan(user)
        .catch((error) =>
          this.#options.logger?.error(
            { target: this.#options.targetName, role: user, error: (error as Error).message },
            'removing a leftover Vault role failed',
          ),
        );
    }
    return removed;
  }

  async maintain(): Promise<void> {
    // Privileges on tables created since go to the level roles; managed Vault roles are rewritten.
    await this.#options.admin.maintain();
    this.#written.clear();
  }

  health(): TargetHealth {
    return this.#options.admin.health();
  }

  async check(): Promise<void> {
    await this.#vault.login();
    const status = await this.#vault.sealStatus();
    if (status.sealed) {
      throw new VaultError(
        'ERR_VAULT_SEALED',
        `Vault at ${this.#vault.address} is sealed: unseal it (vault operator unseal)`,
      );
    }
    await this.#options.admin.check();
  }

  /** Reachability, seal, login, the token's capabilities, each Vault role, then the admin (`warden doctor`). */
  async selfTest(): Promise<SelfTestStep[]> {
    const { targetName, target, admin } = this.#options;
    const mount = this.#settings.mount;
    const roles = [...new Set(Object.keys(target.levels).map((l) => this.#roleOf(l)))];
    const steps = await checkVaultReachable(this.#vault, targetName, [
      ...roles.map((r) => ({ path: `${mount}/creds/${r}`, needs: ['read'] })),
      ...(this.#settings.manage_roles
        ? roles.map((r) => ({ path: `${mount}/roles/${r}`, needs: ['create', 'update'] }))
        : []),
      { path: 'sys/leases/renew', needs: ['update'] },
      { path: 'sys/leases/revoke', needs: ['update'] },
      ...(this.#settings.revoke_prefix
        ? roles.map((r) => ({ path: `sys/leases/revoke-prefix/${mount}/creds/${r}/`, needs: ['sudo'] }))
        : []),
    ]);
    if (steps.some((s) => !s.ok)) return steps;
    for (const role of roles) {
      const path = `${mount}/roles/${role}`;
      try {
        await this.#vault.read(path, `reading the Vault role ${path}`);
        steps.push({ step: `Vault role ${role}`, ok: true, detail: `${path} exists` });
      } catch (error) {
        const missing = (error as VaultError).code === 'ERR_VAULT_NOT_FOUND';
        if (missing && this.#settings.manage_roles) {
          steps.push({
            step: `Vault role ${role}`,
            ok: true,
            detail: `${path} does not exist yet: Warden writes it at the first grant`,
          });
          continue;
        }
        steps.push({
          step: `Vault role ${role}`,
          ok: false,
          detail: (error as Error).message,
          fix: missing
            ? `create it (vault write ${path} db_name=... creation_statements=...) or set targets.${targetName}.vault.manage_roles: true`
            : `the token needs read on ${path}`,
        });
      }
    }
    try {
      await admin.check();
      steps.push({
        step: 'admin login',
        ok: true,
        detail: 'the admin logs in and can end sessions of Vault roles (CREATEROLE)',
      });
    } catch (error) {
      steps.push({
        step: 'admin login',
        ok: false,
        detail: (error as Error).message,
        fix: `check targets.${targetName}.admin: Warden ends the sessions of revoked Vault credentials through it`,
      });
    }
    return steps;
  }

  async close(): Promise<void> {
    this.#vault.close();
    await this.#options.admin.close();
  }
}

/** `ConfigError` when a `provider: vault` Postgres target lacks what it needs (see the plugin). */
export function validateVaultDbTarget(target: PostgresTargetConfig, path: string): void {
  if (!target.admin.password) {
    throw new ConfigError(
      `${path}.admin.password`,
      'the vault provider ends the sessions of revoked credentials as the admin: give its password (env:, file: or vault:)',
    );
  }
  const settings = target.vault;
  if (settings?.manage_roles && !settings.connection) {
    throw new ConfigError(
      `${path}.vault.connection`,
      'manage_roles needs the database connection its roles use (database/config/<connection>)',
    );
  }
  for (const [name, level] of Object.entries(target.levels)) {
    if (settings?.manage_roles) {
      if (level.creation_statements) {
        throw new ConfigError(
          `${path}.levels.${name}.creation_statements`,
          'with vault.manage_roles, Warden writes the Vault role from grants and inherit: put custom statements in the Vault role itself (manage_roles: false)',
        );
      }
      if (!level.grants?.length && !level.inherit?.length) {
        throw new ConfigError(
          `${path}.levels.${name}`,
          'with vault.manage_roles, a level needs grants or inherit',
        );
      }
    } else if (!level.vault_role) {
      throw new ConfigError(
        `${path}.levels.${name}.vault_role`,
        'name the Vault database role this level uses, or set vault.manage_roles: true so Warden writes it',
      );
    }
  }
}
