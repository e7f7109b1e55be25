/**
 * The native PostgreSQL provider: one LOGIN role per grant, created by the target's admin
 * connection (a CREATEROLE role, not a superuser), expiring on its own (`VALID UNTIL`) even if
 * Warden were gone, and dropped at revocation after its sessions are ended.
 *
 * Warden only ever alters roles it minted: each is recorded in the store before it is created
 * (`planHandle`), and made a member of the marker role in the transaction that creates it.
 * Revocation and reconciliation touch a role only when it carries that mark (`revocation.ts`).
 */

import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { PostgresTargetConfig } from '../../config/schema.ts';
import { Secret } from '../../config/secrets.ts';
import { ConfigError, ProviderError } from '../../errors.ts';
import type { Logger } from '../../log.ts';
import type { AccessRequest, CredentialRecord } from '../../model.ts';
import type {
  CredentialProvider,
  MintResult,
  RevokeResult,
  SelfTestStep,
  TargetHealth,
} from '../provider.ts';
import { AdminPool, describePgError } from './admin-pool.ts';
import { PostgresCredential } from './credential.ts';
import { LevelPrivileges } from './level-privileges.ts';
import { findUnenforcedMasking, type UnenforcedMasking } from './masking-check.ts';
import {
  buildMaskSchemaStatements,
  compileDbColumnRules,
  type DbColumnRule,
  deriveHmacPads,
  describeScope,
  findMaskingFragment,
  hasMaskingRules,
  MASKED_SEARCH_PATH_STATEMENT,
  STORE_HMAC_KEY_SQL,
} from './masking-views.ts';
import {
  ACL_LOCK_KEY,
  type BatchOutcome,
  cutRoleSessions,
  findTouchableRoles,
  type RoleRemoval,
  removeRoles,
  type TouchableRoles,
} from './revocation.ts';
import { SchemaWatch } from './schema-watch.ts';
import { buildScramVerifier } from './scram-verifier.ts';
import { runSelfTest } from './self-test.ts';
import {
  buildDefaultCreationStatements,
  buildEnsureRoleStatement,
  buildLevelRoleName,
  buildMarkerRoleName,
  renderStatement,
} from './statements.ts';
import { buildPgSslOption, type PgTlsSettings, selectTargetDefaultTls } from './tls.ts';

const { escapeIdentifier } = pg;

/**
 * A mint reuses a look at its level's privileges this young; tables created since are covered by
 * the next look (at most this much later for new grants, and by the sweeper's upkeep for live ones).
 */
const MINT_LOOK_MAX_AGE_MS = 5000;

export interface PostgresProviderOptions {
  targetName: string;
  target: PostgresTargetConfig;
  adminPassword: Secret;
  /** TLS towards the admin host (default: what `resolvePgTls` picks without a `tls` block). */
  tls?: PgTlsSettings;
  /** Connections the provider keeps to the target (default 4). */
  poolSize?: number;
  /** Where lost connections and skipped privileges are reported. */
  logger?: Logger;
  /** Client-side limit on one admin statement, in ms (default 30 s): a dropped network must not hang revocations. */
  queryTimeoutMs?: number;
  /** The bytes of `masking.key` (see `resolveMaskingKeyBytes`), when the target's rules use `hash`. */
  maskingKey?: Uint8Array;
}

/** Role name for a grant: the prefix, the person, and the grant id; at most 63 bytes. */
export function buildRoleName(prefix: string, requester: string, grantId: string): string {
  const person = requester.replace(/[^a-z0-9_]/g, '_').slice(0, 24);
  return `${prefix}${person}_${grantId}`.slice(0, 63);
}

export class PostgresProvider implements CredentialProvider {
  readonly name = 'postgres';
  readonly #options: PostgresProviderOptions;
  readonly #pool: AdminPool;
  readonly #levels: LevelPrivileges;
  readonly #marker: string;
  /** Column rules the database enforces for this target (empty: no masking). */
  readonly #maskRules: DbColumnRule[];
  /** Renames in a masked scope, noticed within seconds (`schema-watch.ts`); none without masking. */
  readonly #watch: SchemaWatch | undefined;
  #prepared: Promise<void> | undefined;
  #serverVersion: number | undefined;

  constructor(options: PostgresProviderOptions) {
    this.#options = options;
    this.#marker = buildMarkerRoleName(options.target.role_prefix);
    const rules = compileDbColumnRules(findMaskingFragment(options.target));
    this.#maskRules = hasMaskingRules(rules) ? rules : [];
    if (rules.some((r) => r.style === 'hash') && !options.maskingKey) {
      throw new ProviderError(`target ${options.targetName}: the hash style needs masking.key`);
    }
    this.#pool = new AdminPool({
      targetName: options.targetName,
      logger: options.logger,
      config: this.#connectionConfig(options.target.admin.database, options.poolSize ?? 4),
    });
    this.#levels = new LevelPrivileges({
      targetName: options.targetName,
      target: options.target,
      connect: () => this.#connect(),
      release: (client, error) => this.#pool.release(client, error),
      logger: options.logger,
      maskRules: this.#maskRules,
    });
    if (this.#maskRules.length) {
      const scopes = this.#levels.managedLevels().map(([, level]) => describeScope(level));
      this.#watch = new SchemaWatch({
        targetName: options.targetName,
        scope: {
          schemas: [...new Set(scopes.flatMap((s) => s.schemas))],
          tables: [...new Set(scopes.flatMap((s) => s.tables))],
        },
        connect: () => this.#connect(),
        release: (client, error) => this.#pool.release(client, error),
        onChange: () => this.#levels.refreshAll(),
        logger: options.logger,
      });
    }
  }

  #connectionConfig(database: string, max: number): pg.PoolConfig {
    const { target, adminPassword, tls } = this.#options;
    const admin = target.admin;
    return {
      host: admin.host,
      port: admin.port,
      database,
      user: admin.user,
      password: adminPassword.reveal(),
      ssl: buildPgSslOption(tls ?? selectTargetDefaultTls(target, admin.host), admin.host),
      max,
      connectionTimeoutMillis: 10_000,
      // Idle admin connections stay open: opening one at revocation time (a backend start and
      // SCRAM) cost seconds on a loaded server, right when a thousand grants expire. Dead ones
      // are dropped by the pool's error handling and replaced.
      idleTimeoutMillis: 0,
      query_timeout: this.#options.queryTimeoutMs ?? 30_000,
      keepAlive: true,
      application_name: 'warden-broker',
    };
  }

  health(): TargetHealth {
    return this.#pool.health;
  }

  planHandle(grant: AccessRequest): string {
    return buildRoleName(this.#options.target.role_prefix, grant.requester, grant.id);
  }

  async mint(grant: AccessRequest, expiresAt: number): Promise<MintResult> {
    const { target, targetName } = this.#options;
    const level = target.levels[grant.level];
    if (!level) throw new ProviderError(`target ${targetName} has no level ${grant.level}`);
    const name = this.planHandle(grant);
    const password = randomBytes(24).toString('base64url');
    const levelRole =
      level.grants?.length && !level.creation_statements
        ? buildLevelRoleName(target.role_prefix, grant.level)
        : undefined;
    await this.#prepare();
    if (levelRole) await this.#levels.refresh(grant.level, MINT_LOOK_MAX_AGE_MS);
    const templates = [
      ...(level.creation_statements ?? buildDefaultCreationStatements(level, levelRole)),
      `GRANT ${escapeIdentifier(this.#marker)} TO {{name}}`,
      ...(this.#maskRules.length ? [MASKED_SEARCH_PATH_STATEMENT] : []),
    ];
    const values = {
      name,
      passwordVerifier: await buildScramVerifier(password),
      expiresAt,
      connectionLimit: target.connection_limit,
    };
    const client = await this.#connect();
    let failure: unknown;
    try {
      await client.query('BEGIN');
      // Custom statements may GRANT on tables, and two concurrent GRANTs on one table fail with
      // "tuple concurrently updated": serialise them. Default statements only add memberships.
      if (level.creation_statements) await client.query('SELECT pg_advisory_xact_lock($1)', [ACL_LOCK_KEY]);
      for (const template of templates) await client.query(renderStatement(template, values));
      await client.query('COMMIT');
    } catch (error) {
      failure = error;
      await client.query('ROLLBACK').catch(() => {});
      throw new ProviderError(`creating role on ${targetName} failed: ${describePgError(error)}`, {
        cause: error,
      });
    } finally {
      this.#pool.release(client, failure);
    }
    const admin = target.admin;
    return {
      handle: name,
      credential: new PostgresCredential({
        host: target.connect.host ?? admin.host,
        port: target.connect.port ?? admin.port,
        database: admin.database,
        user: name,
        password: new Secret(password),
        expiresAt,
      }),
    };
  }

  /** The marker role and the masking schema, once per provider instance (again after a failure). */
  #prepare(): Promise<void> {
    this.#prepared ??= this.#query(buildEnsureRoleStatement(this.#marker), 'creating the marker role')
      .then(() => (this.#maskRules.length ? this.#prepareMasking() : undefined))
      .then(
        () => this.#watch?.start(),
        (error) => {
          this.#prepared = undefined;
          throw error;
        },
      );
    return this.#prepared;
  }

  /** `warden_mask`, its key table (holding this target's key) and functions (`masking-views.ts`). */
  async #prepareMasking(): Promise<void> {
    const client = await this.#connect();
    let failure: unknown;
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock($1)', [ACL_LOCK_KEY]);
      for (const statement of buildMaskSchemaStatements()) await client.query(statement);
      if (this.#options.maskingKey) {
        const { ipad, opad } = deriveHmacPads(this.#options.maskingKey);
        await client.query(STORE_HMAC_KEY_SQL, [ipad, opad]);
      }
      await client.query('COMMIT');
    } catch (error) {
      failure = error;
      await client.query('ROLLBACK').catch(() => {});
      throw new ProviderError(
        `preparing the masking schema on ${this.#options.targetName} failed: ${describePgError(error)}; the admin needs CREATE on the database (docs/masking.md)`,
        { cause: error },
      );
    } finally {
      this.#pool.release(client, failure);
    }
  }

  /**
   * Where the database cannot enforce this target's column rules (`masking-check.ts`): levels
   * that do not acknowledge it make `check()` fail, so `warden serve` refuses to start and
   * `warden doctor` names them.
   */
  async findUnenforcedMasking(): Promise<UnenforcedMasking[]> {
    if (!this.#maskRules.length) return [];
    await this.#prepare();
    const client = await this.#connect();
    let failure: unknown;
    try {
      return await findUnenforcedMasking(client, this.#options.target, this.#maskRules);
    } catch (error) {
      failure = error;
      throw new ProviderError(
        `checking masking on ${this.#options.targetName} failed: ${describePgError(error)}`,
        { cause: error },
      );
    } finally {
      this.#pool.release(client, failure);
    }
  }

  /** Grants level roles the privileges on tables created since the last look. */
  async maintain(): Promise<void> {
    await this.#levels.refreshAll();
  }

  async extend(credential: CredentialRecord, expiresAt: number): Promise<void> {
    await this.#assertMarked(credential.handle, 'extend');
    await this.#query(
      `ALTER ROLE ${escapeIdentifier(credential.handle)} VALID UNTIL ${pg.escapeLiteral(new Date(expiresAt).toISOString())}`,
      'extending role',
    );
  }

  /** Sets a fresh random password on grant role `handle` (sent as a SCRAM verifier, as at mint). */
  async resetPassword(credential: CredentialRecord): Promise<Secret> {
    const handle = credential.handle;
    await this.#assertMarked(handle, 'change');
    const password = randomBytes(24).toString('base64url');
    const verifier = await buildScramVerifier(password);
    await this.#query(
      `ALTER ROLE ${escapeIdentifier(handle)} PASSWORD ${pg.escapeLiteral(verifier)}`,
      'resetting password',
    );
    return new Secret(password);
  }

  /** A fresh password on the grant's role: the one given at activation no longer logs in. */
  async reissue(credential: CredentialRecord, _grant: AccessRequest): Promise<PostgresCredential> {
    const password = await this.resetPassword(credential);
    const { target } = this.#options;
    return new PostgresCredential({
      host: target.connect.host ?? target.admin.host,
      port: target.connect.port ?? target.admin.port,
      database: target.admin.database,
      user: credential.handle,
      password,
      expiresAt: credential.expiresAt,
    });
  }

  async revoke(credentials: readonly CredentialRecord[]): Promise<RevokeResult> {
    const result: RevokeResult = { failures: new Map(), details: new Map() };
    if (credentials.length === 0) return result;
    const apply = (batch: readonly CredentialRecord[], outcome: BatchOutcome) => {
      for (const credential of batch) {
        const refused = outcome.refused.get(credential.handle);
        const removed = outcome.removed.get(credential.handle);
        if (refused) result.failures.set(credential.id, refused);
        else if (removed) result.details.set(credential.id, describeRemoval(removed));
        else
          result.failures.set(credential.id, new ProviderError(`role ${credential.handle} was not removed`));
      }
    };
    try {
      apply(credentials, await this.#removeRoles(credentials.map((c) => c.handle)));
    } catch (error) {
      if (credentials.length === 1) {
        result.failures.set(credentials[0]!.id, error as Error);
        return result;
      }
      // One bad role must not keep the others alive: retry one by one to isolate it.
      for (const credential of credentials) {
        try {
          apply([credential], await this.#removeRoles([credential.handle]));
        } catch (inner) {
          result.failures.set(credential.id, inner as Error);
        }
      }
    }
    return result;
  }

  async #removeRoles(names: readonly string[]): Promise<BatchOutcome> {
    const { target, targetName } = this.#options;
    return this.#withClient('revoking roles', async (client) =>
      removeRoles(
        {
          client,
          targetName,
          markerRole: this.#marker,
          ownedObjects: target.owned_objects,
          revocationStatements: target.revocation_statements,
          serverVersion: await this.#version(client),
          inDatabase: (database, run) => this.#inDatabase(database, run),
        },
        names,
      ),
    );
  }

  async #version(client: pg.PoolClient): Promise<number> {
    if (this.#serverVersion === undefined) {
      const result = await client.query<{ server_version_num: string }>('SHOW server_version_num');
      this.#serverVersion = Number(result.rows[0]!.server_version_num);
    }
    return this.#serverVersion;
  }

  /** A short-lived admin connection to another database of the server (objects owned there). */
  async #inDatabase(database: string, run: (client: pg.ClientBase) => Promise<void>): Promise<void> {
    const client = new pg.Client(this.#connectionConfig(database, 1));
    client.on('error', () => {});
    try {
      await client.connect();
      await run(client);
    } finally {
      await client.end().catch(() => {});
    }
  }

  /** The marker role every role Warden has a hand in minting joins (`warden___minted`). */
  get markerRole(): string {
    return this.#marker;
  }

  /**
   * For roles another minter creates (Vault's database engine): the marker role and the masking
   * schema exist, and the level's role holds its privileges on the tables there are now. Returns
   * that level role's name, undefined when the level has no `grants`.
   */
  async prepareLevel(levelName: string): Promise<string | undefined> {
    const { target, targetName } = this.#options;
    const level = target.levels[levelName];
    if (!level) throw new ProviderError(`target ${targetName} has no level ${levelName}`);
    await this.#prepare();
    if (!level.grants?.length) return undefined;
    await this.#levels.refresh(levelName, MINT_LOOK_MAX_AGE_MS);
    return buildLevelRoleName(target.role_prefix, levelName);
  }

  /** Whether this target's roles get the masked search path (column rules enforced in the database). */
  get masksColumns(): boolean {
    return this.#maskRules.length > 0;
  }

  /**
   * Ends the sessions of roles another minter created (Vault's, whose revocation leaves them
   * open): the checks and first steps of revocation (`revocation.ts`: no superuser, not the
   * admin, Warden's mark when `requireMark`; then NOLOGIN, the admin takes the role, sessions
   * end), without dropping the role.
   */
  async cutSessions(names: readonly string[], requireMark: boolean): Promise<TouchableRoles> {
    return this.#withClient('ending sessions', async (client) => {
      const marker = requireMark ? this.#marker : undefined;
      const found = await findTouchableRoles(client, names, this.#options.targetName, marker);
      await cutRoleSessions(client, found.roles, await this.#version(client));
      return found;
    });
  }

  /** Of `names`, the roles that exist on the target. */
  async findExistingRoles(names: readonly string[]): Promise<string[]> {
    if (names.length === 0) return [];
    const result = await this.#query(
      'SELECT rolname FROM pg_roles WHERE rolname = ANY($1::text[])',
      'looking up roles',
      [names],
    );
    return result.rows.map((r: { rolname: string }) => r.rolname);
  }

  /** Roles that carry Warden's mark (members of the marker role). */
  async listManaged(): Promise<string[]> {
    const result = await this.#query(
      `SELECT r.rolname FROM pg_auth_members m
         JOIN pg_roles k ON k.oid = m.roleid JOIN pg_roles r ON r.oid = m.member
       WHERE k.rolname = $1 ORDER BY r.rolname`,
      'listing roles',
      [this.#marker],
    );
    return result.rows.map((r: { rolname: string }) => r.rolname);
  }

  async removeOrphan(handle: string): Promise<void> {
    const outcome = await this.#removeRoles([handle]);
    const refused = outcome.refused.get(handle);
    if (refused) throw refused;
  }

  /** Refuses to change a role that does not carry Warden's mark. */
  async #assertMarked(handle: string, verb: string): Promise<void> {
    const result = await this.#query(
      `SELECT EXISTS (SELECT 1 FROM pg_auth_members m JOIN pg_roles k ON k.oid = m.roleid
                        JOIN pg_roles r ON r.oid = m.member WHERE k.rolname = $1 AND r.rolname = $2) AS marked`,
      'checking the role',
      [this.#marker, handle],
    );
    if (!(result.rows[0] as { marked: boolean }).marked) {
      throw new ProviderError(
        `refusing to ${verb} ${handle} on ${this.#options.targetName}: it does not carry Warden's mark (membership in ${this.#marker})`,
      );
    }
  }

  async check(): Promise<void> {
    const result = await this.#query(
      'SELECT rolsuper, rolcreaterole FROM pg_roles WHERE rolname = current_user',
      'checking admin role',
    );
    const row = result.rows[0] as { rolsuper: boolean; rolcreaterole: boolean } | undefined;
    if (!row?.rolsuper && !row?.rolcreaterole) {
      throw new ProviderError(
        `${this.#options.target.admin.user} on ${this.#options.targetName} cannot create roles (needs CREATEROLE)`,
      );
    }
    await this.assertMaskingEnforced();
  }

  /**
   * Refuses (`ERR_CONFIG_INVALID`, naming the level's `allow_unenforced_masking`) when the
   * database cannot enforce a column rule for a level that does not acknowledge it.
   */
  async assertMaskingEnforced(): Promise<void> {
    const { target, targetName } = this.#options;
    const unenforced = (await this.findUnenforcedMasking()).filter(
      (u) => !target.levels[u.level]?.allow_unenforced_masking,
    );
    if (unenforced.length === 0) return;
    const first = unenforced[0]!;
    throw new ConfigError(
      `targets.${targetName}.levels.${first.level}.allow_unenforced_masking`,
      `the database cannot enforce masking on ${targetName}: ${unenforced
        .slice(0, 5)
        .map((u) => `level ${u.level}, rule ${u.rule}: ${u.reason}`)
        .join(
          '; ',
        )}. Fix it, or acknowledge it with allow_unenforced_masking: true on the level (docs/masking.md)`,
    );
  }

  /** Mint → login → revoke on a scratch role for each level (`warden doctor`). */
  selfTest(): Promise<SelfTestStep[]> {
    return runSelfTest({
      targetName: this.#options.targetName,
      target: this.#options.target,
      provider: this,
      levels: this.#levels,
      query: (text, params) => this.#query(text, 'self-test', params),
      loginConfig: (user, password) => ({
        ...this.#connectionConfig(this.#options.target.admin.database, 1),
        user,
        password,
      }),
    });
  }

  async close(): Promise<void> {
    await this.#watch?.stop();
    await this.#pool.end();
  }

  async #connect(): Promise<pg.PoolClient> {
    try {
      return await this.#pool.connect();
    } catch (error) {
      throw new ProviderError(
        `cannot reach ${this.#options.targetName} as admin: ${describePgError(error)}`,
        { cause: error },
      );
    }
  }

  async #query(text: string, what: string, params: unknown[] = []): Promise<pg.QueryResult> {
    return this.#withClient(what, (client) => client.query(text, params));
  }

  /** Runs `run` on a pooled admin connection; a failure becomes a `ProviderError` saying what failed. */
  async #withClient<T>(what: string, run: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.#connect();
    let failure: unknown;
    try {
      return await run(client);
    } catch (error) {
      failure = error;
      throw new ProviderError(`${what} on ${this.#options.targetName} failed: ${describePgError(error)}`, {
        cause: error,
      });
    } finally {
      this.#pool.release(client, failure);
    }
  }
}

/** The audit facts of one removed role. */
function describeRemoval(removal: RoleRemoval): Record<string, unknown> {
  return {
    owned_objects: removal.ownedObjects,
    owned_objects_policy: removal.policy,
    acting_objects_removed: removal.actingObjects,
    ...(removal.otherDatabases ? { other_databases: removal.otherDatabases } : {}),
  };
}
