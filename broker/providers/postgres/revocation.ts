/**
 * Removing grant roles with a non-superuser CREATEROLE admin, the way PostgreSQL 15 and 16+
 * both allow it (see `docs/postgres.md`, "Revocation"):
 *
 * 1. refuse any role that lacks Warden's mark (membership in the marker role), is a superuser,
 *    or is the admin itself: those are never altered;
 * 2. `ALTER ROLE ... NOLOGIN`: no new logins from here on;
 * 3. `GRANT role TO current_user` (`WITH INHERIT TRUE` on 16+): the admin takes the privileges
 *    of the role, which ending its sessions and `DROP OWNED` / `REASSIGN OWNED` require of a
 *    non-superuser (15 and 16 alike: `has_privs_of_role`). On 16+ the creator already holds
 *    ADMIN OPTION on the roles it created, which is what lets it grant the role to itself;
 * 4. end its sessions (`pg_terminate_backend`);
 * 5. objects it owns in other databases are dropped there (a connection per database);
 * 6. in one transaction: list what it owns (what would act after the grant ends is named in
 *    the audit), drop those acting objects, then `DROP OWNED ... CASCADE` (or `REASSIGN OWNED`
 *    to the configured role first), then `DROP ROLE`.
 *
 * The membership taken in step 3 disappears with the role.
 */
import type pg from 'pg';
import type { PgOwnedObjectsConfig } from '../../config/schema.ts';
import { ProviderError } from '../../errors.ts';
import { renderStatement } from './statements.ts';

const escapeIdentifier = (name: string) => `"${name.replace(/"/g, '""')}"`;

/** Advisory lock key under which Warden changes roles and ACLs on a target database. */
export const ACL_LOCK_KEY = 7467100;

/** At most this many objects are named per role in the audit (the count is always there). */
const MAX_LISTED = 100;

/** What removing one role did, for its audit entry. */
export interface RoleRemoval {
  /** Objects that would have acted after the grant ended, removed (`function f() (SECURITY DEFINER)`). */
  actingObjects: string[];
  /** Every object the role owned in the target's databases (acting ones included). */
  ownedObjects: number;
  /** `drop`, or the role the rest was reassigned to. */
  policy: string;
  /** Databases other than the admin's where objects were dropped. */
  otherDatabases?: string[];
}

export interface RevocationContext {
  client: pg.PoolClient;
  targetName: string;
  markerRole: string;
  ownedObjects: PgOwnedObjectsConfig;
  revocationStatements?: readonly string[] | undefined;
  /** `server_version_num` of the target. */
  serverVersion: number;
  /** Runs `run` on a connection to another database of the same server, as the admin. */
  inDatabase: (database: string, run: (client: pg.ClientBase) => Promise<void>) => Promise<void>;
}

/** The outcome for a batch: removed roles, roles refused (never touched), and roles already gone. */
export interface BatchOutcome {
  removed: Map<string, RoleRemoval>;
  refused: Map<string, Error>;
}

/**
 * Every object `$1`'s roles own in the current database, and the triggers and rules that would
 * act through their functions or tables; `acting` marks what must not outlive the grant and
 * `drop_sql` how to remove it ahead of a REASSIGN OWNED.
 */
const INVENTORY_SQL = `
WITH roles AS (SELECT oid, rolname FROM pg_roles WHERE rolname = ANY($1::text[])),
owned AS (
  SELECT r.rolname AS role, d.classid, d.objid, d.objsubid
  FROM pg_shdepend d JOIN roles r ON r.oid = d.refobjid
  WHERE d.refclassid = 'pg_authid'::regclass AND d.deptype = 'o'
    AND d.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
)
SELECT role, pg_describe_object(classid, objid, objsubid) AS object,
  CASE
    WHEN classid = 'pg_proc'::regclass THEN COALESCE((SELECT prosecdef FROM pg_proc WHERE oid = objid), false)
    WHEN classid = 'pg_class'::regclass THEN COALESCE((SELECT relkind IN ('v', 'm') FROM pg_class WHERE oid = objid), false)
    ELSE classid IN ('pg_event_trigger'::regclass, 'pg_publication'::regclass, 'pg_subscription'::regclass,
                     'pg_foreign_server'::regclass, 'pg_default_acl'::regclass)
  END AS acting,
  CASE
    WHEN classid = 'pg_proc'::regclass THEN format('DROP ROUTINE IF EXISTS %s CASCADE', objid::regprocedure)
    WHEN classid = 'pg_class'::regclass THEN
      (SELECT CASE relkind WHEN 'v' THEN format('DROP VIEW IF EXISTS %s CASCADE', oid::regclass)
                           WHEN 'm' THEN format('DROP MATERIALIZED VIEW IF EXISTS %s CASCADE', oid::regclass) END
       FROM pg_class WHERE oid = objid)
    WHEN classid = 'pg_event_trigger'::regclass THEN
      (SELECT format('DROP EVENT TRIGGER IF EXISTS %I', evtname) FROM pg_event_trigger WHERE oid = objid)
    WHEN classid = 'pg_publication'::regclass THEN
      (SELECT format('DROP PUBLICATION IF EXISTS %I', pubname) FROM pg_publication WHERE oid = objid)
    WHEN classid = 'pg_subscription'::regclass THEN
      (SELECT format('DROP SUBSCRIPTION IF EXISTS %I', subname) FROM pg_subscription WHERE oid = objid)
    WHEN classid = 'pg_foreign_server'::regclass THEN
      (SELECT format('DROP SERVER IF EXISTS %I CASCADE', srvname) FROM pg_foreign_server WHERE oid = objid)
  END AS drop_sql,
  0 AS rank
FROM owned
UNION
SELECT r.rolname, pg_describe_object('pg_trigger'::regclass, t.oid, 0), true,
  format('DROP TRIGGER IF EXISTS %I ON %s', t.tgname, t.tgrelid::regclass), 1
FROM pg_trigger t
  JOIN pg_proc p ON p.oid = t.tgfoid
  JOIN pg_class c ON c.oid = t.tgrelid
  JOIN roles r ON r.oid = p.proowner OR r.oid = c.relowner
WHERE NOT t.tgisinternal
UNION
SELECT r.rolname, pg_describe_object('pg_rewrite'::regclass, w.oid, 0), true,
  format('DROP RULE IF EXISTS %I ON %s', w.rulename, w.ev_class::regclass), 1
FROM pg_rewrite w JOIN pg_class c ON c.oid = w.ev_class JOIN roles r ON r.oid = c.relowner
WHERE w.rulename <> '_RETURN'
ORDER BY rank DESC, role, object`;

interface InventoryRow {
  role: string;
  object: string;
  acting: boolean;
  drop_sql: string | null;
  rank: number;
}

/** Roles found by {@link findTouchableRoles}: those Warden may act on, those refused, those gone. */
export interface TouchableRoles {
  roles: string[];
  refused: Map<string, Error>;
  missing: string[];
}

/**
 * Step 1: of the roles named, those that exist and may be touched. Never the admin nor a
 * superuser; and, when `markerRole` is given, only members of it (Warden's mark).
 */
export async function findTouchableRoles(
  client: pg.ClientBase,
  names: readonly string[],
  targetName: string,
  markerRole: string | undefined,
): Promise<TouchableRoles> {
  const found = await client.query<{
    rolname: string;
    rolsuper: boolean;
    marked: boolean;
    is_admin: boolean;
  }>(
    `SELECT r.rolname, r.rolsuper, r.rolname = current_user AS is_admin,
            $2::text IS NULL OR EXISTS (SELECT 1 FROM pg_auth_members m JOIN pg_roles k ON k.oid = m.roleid
                    WHERE m.member = r.oid AND k.rolname = $2) AS marked
     FROM pg_roles r WHERE r.rolname = ANY($1::text[])`,
    [names, markerRole ?? null],
  );
  const out: TouchableRoles = { roles: [], refused: new Map(), missing: [] };
  for (const row of found.rows) {
    if (row.marked && !row.rolsuper && !row.is_admin) out.roles.push(row.rolname);
    else {
      const why = row.is_admin
        ? 'it is the admin role'
        : row.rolsuper
          ? 'it is a superuser'
          : "it does not carry Warden's mark";
      out.refused.set(
        row.rolname,
        new ProviderError(
          `refusing to touch role ${row.rolname} on ${targetName}: ${why}${markerRole ? ` (membership in ${markerRole})` : ''}`,
        ),
      );
    }
  }
  out.missing = names.filter((name) => !found.rows.some((r) => r.rolname === name));
  return out;
}

/** Removes the roles named (those that exist); see the module comment for the steps. */
export async function removeRoles(ctx: RevocationContext, names: readonly string[]): Promise<BatchOutcome> {
  const { client } = ctx;
  const { roles, refused, missing } = await findTouchableRoles(client, names, ctx.targetName, ctx.markerRole);
  const outcome: BatchOutcome = { removed: new Map(), refused };
  // Roles already gone count as removed: revocation is idempotent.
  for (const name of missing) {
    outcome.removed.set(name, { actingObjects: [], ownedObjects: 0, policy: policyName(ctx.ownedObjects) });
  }
  if (roles.length === 0) return outcome;
  const list = roles.map(escapeIdentifier).join(', ');
  await cutRoleSessions(client, roles, ctx.serverVersion);
  const elsewhere = await dropInOtherDatabases(ctx, roles);
  if (ctx.revocationStatements) {
    await runCustomStatements(ctx, roles);
    for (const role of roles)
      outcome.removed.set(role, { actingObjects: [], ownedObjects: 0, policy: 'revocation_statements' });
    return outcome;
  }
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1)', [ACL_LOCK_KEY]);
    const inventory = (await client.query<InventoryRow>(INVENTORY_SQL, [roles])).rows;
    await dropOwned(client, roles, inventory, ctx.ownedObjects);
    await client.query(`DROP ROLE ${list}`);
    await client.query('COMMIT');
    for (const role of roles) {
      const mine = inventory.filter((r) => r.role === role);
      const acting = mine.filter((r) => r.acting).map((r) => r.object);
      const other = elsewhere.get(role);
      outcome.removed.set(role, {
        actingObjects: [
          ...acting.slice(0, MAX_LISTED),
          ...(acting.length > MAX_LISTED ? [`and ${acting.length - MAX_LISTED} more`] : []),
          ...(other?.acting ?? []),
        ],
        ownedObjects: mine.filter((r) => r.rank === 0).length + (other?.owned ?? 0),
        policy: policyName(ctx.ownedObjects),
        ...(other ? { otherDatabases: other.databases } : {}),
      });
    }
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  }
  return outcome;
}

/**
 * The owned-object policy in the current database. With `reassign_to`, what would act after the
 * grant ends goes first (triggers and rules before the functions and tables they hang on), so
 * REASSIGN OWNED hands over only inert objects; DROP OWNED then removes the rest, privileges
 * granted to the roles and their default privileges.
 */
async function dropOwned(
  client: pg.ClientBase,
  roles: readonly string[],
  inventory: readonly InventoryRow[],
  policy: PgOwnedObjectsConfig,
): Promise<void> {
  const list = roles.map(escapeIdentifier).join(', ');
  if (typeof policy === 'object') {
    for (const row of inventory) if (row.acting && row.drop_sql) await client.query(row.drop_sql);
    await client.query(`REASSIGN OWNED BY ${list} TO ${escapeIdentifier(policy.reassign_to)}`);
  }
  await client.query(`DROP OWNED BY ${list} CASCADE`);
}

function policyName(policy: PgOwnedObjectsConfig): string {
  return typeof policy === 'object' ? `reassign_to ${policy.reassign_to}` : 'drop';
}

/**
 * Steps 2 to 4 on roles already checked (see the module comment): no new logins, the admin takes
 * the roles' privileges, their sessions end. The Vault provider runs it before Vault drops a
 * lease's role, since Vault leaves its sessions open (hashicorp/vault#699).
 */
export async function cutRoleSessions(
  client: pg.ClientBase,
  roles: readonly string[],
  serverVersion: number,
): Promise<void> {
  if (roles.length === 0) return;
  await client.query(roles.map((r) => `ALTER ROLE ${escapeIdentifier(r)} NOLOGIN`).join('; '));
  const inherit = serverVersion >= 160000 ? ' WITH INHERIT TRUE' : '';
  await client.query(`GRANT ${roles.map(escapeIdentifier).join(', ')} TO CURRENT_USER${inherit}`);
  await endSessions(client, roles);
}

/**
 * Ends the roles' sessions. Not waited for: a backend that is still exiting cannot log in again
 * (NOLOGIN) and its transaction is aborted; should it still commit an object before it exits,
 * DROP ROLE fails on the dependency and the retry removes it.
 */
async function endSessions(client: pg.ClientBase, roles: readonly string[]): Promise<void> {
  await client.query(
    'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = ANY($1::text[])',
    [roles],
  );
}

/**
 * `DROP OWNED` only reaches the current database: objects the roles own in other databases of
 * the server (a grant role may connect to any database PUBLIC may) are dropped there, or
 * `DROP ROLE` would fail forever.
 */
async function dropInOtherDatabases(
  ctx: RevocationContext,
  roles: readonly string[],
): Promise<Map<string, { databases: string[]; acting: string[]; owned: number }>> {
  const result = new Map<string, { databases: string[]; acting: string[]; owned: number }>();
  const rows = await ctx.client.query<{ datname: string }>(
    `SELECT DISTINCT db.datname FROM pg_shdepend d
       JOIN pg_roles r ON r.oid = d.refobjid JOIN pg_database db ON db.oid = d.dbid
     WHERE d.refclassid = 'pg_authid'::regclass AND r.rolname = ANY($1::text[])
       AND db.datname <> current_database() ORDER BY 1`,
    [roles],
  );
  for (const { datname } of rows.rows) {
    try {
      await ctx.inDatabase(datname, async (other) => {
        await other.query('BEGIN');
        try {
          await other.query('SELECT pg_advisory_xact_lock($1)', [ACL_LOCK_KEY]);
          const inventory = (await other.query<InventoryRow>(INVENTORY_SQL, [roles])).rows;
          await dropOwned(other, roles, inventory, ctx.ownedObjects);
          await other.query('COMMIT');
          for (const role of roles) {
            const mine = inventory.filter((r) => r.role === role);
            if (mine.length === 0) continue;
            const entry = result.get(role) ?? { databases: [], acting: [], owned: 0 };
            entry.databases.push(datname);
            entry.acting.push(
              ...mine.filter((r) => r.acting).map((r) => `${r.object} (database ${datname})`),
            );
            entry.owned += mine.filter((r) => r.rank === 0).length;
            result.set(role, entry);
          }
        } catch (error) {
          await other.query('ROLLBACK').catch(() => {});
          throw error;
        }
      });
    } catch (error) {
      throw new ProviderError(
        `roles own objects in database ${datname} of ${ctx.targetName}, and dropping them there failed: ${(error as Error).message}`,
        { cause: error },
      );
    }
  }
  return result;
}

/** The configured `revocation_statements`, per role; the revocation counts only once the role is gone. */
async function runCustomStatements(ctx: RevocationContext, roles: readonly string[]): Promise<void> {
  for (const role of roles) {
    for (const template of ctx.revocationStatements ?? []) {
      await ctx.client.query(
        renderStatement(template, {
          name: role,
          passwordVerifier: '',
          expiresAt: Date.now(),
          connectionLimit: 0,
        }),
      );
    }
  }
  const left = await ctx.client.query<{ rolname: string }>(
    'SELECT rolname FROM pg_roles WHERE rolname = ANY($1::text[])',
    [roles],
  );
  if (left.rows.length > 0) {
    throw new ProviderError(
      `revocation_statements of ${ctx.targetName} ran but left role ${left.rows.map((r) => r.rolname).join(', ')} in place: they must drop the role`,
    );
  }
}
