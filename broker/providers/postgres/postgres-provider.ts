/**
 * The native PostgreSQL provider: one LOGIN role per grant, created by the target's admin
 * connection, expiring on its own (`VALID UNTIL`) even if Warden were gone, and dropped at
 * revocation after its sessions are ended.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { PostgresTargetConfig } from '../../config/schema.ts';
import { Secret } from '../../config/secrets.ts';
import { ProviderError } from '../../errors.ts';
import type { AccessRequest, CredentialRecord } from '../../model.ts';
import type { CredentialProvider, MintResult } from '../provider.ts';
import { buildScramVerifier } from './scram-verifier.ts';
import {
  buildDefaultCreationStatements,
  buildLevelRoleName,
  buildLevelRoleStatements,
  renderStatement,
} from './statements.ts';
import { buildPgSslOption, type PgTlsSettings, resolvePgTls } from './tls.ts';

const { escapeIdentifier } = pg;

/** Advisory lock key under which Warden changes roles and ACLs on a target database. */
const ACL_LOCK_KEY = 7467100;

export interface PostgresProviderOptions {
  targetName: string;
  target: PostgresTargetConfig;
  adminPassword: Secret;
  /** TLS towards the admin host (default: what `resolvePgTls` picks without a `tls` block). */
  tls?: PgTlsSettings;
  /** Connections the provider keeps to the target (default 4). */
  poolSize?: number;
}

/** Role name for a grant: the prefix, the person, and the grant id; at most 63 bytes. */
export function buildRoleName(prefix: string, requester: string, grantId: string): string {
  const person = requester.replace(/[^a-z0-9_]/g, '_').slice(0, 24);
  return `${prefix}${person}_${grantId}`.slice(0, 63);
}

function describePgError(error: unknown): string {
  const e = error as { code?: string; message?: string };
  // Server messages never contain the password (we only ever send a verifier), but keep them short.
  return `${e.code ? `${e.code} ` : ''}${(e.message ?? String(error)).slice(0, 200)}`;
}

export class PostgresProvider implements CredentialProvider {
  readonly name = 'postgres';
  readonly #options: PostgresProviderOptions;
  readonly #pool: pg.Pool;
  #levelRoles: Promise<void> | undefined;

  constructor(options: PostgresProviderOptions) {
    this.#options = options;
    const admin = options.target.admin;
    this.#pool = new pg.Pool({
      host: admin.host,
      port: admin.port,
      database: admin.database,
      user: admin.user,
      password: options.adminPassword.reveal(),
      ssl: buildPgSslOption(
        options.tls ?? resolvePgTls(options.targetName, options.target, admin.host),
        admin.host,
      ),
      max: options.poolSize ?? 4,
      connectionTimeoutMillis: 10_000,
      application_name: 'warden-broker',
    });
    this.#pool.on('error', () => {});
  }

  async mint(grant: AccessRequest, expiresAt: number): Promise<MintResult> {
    const { target, targetName } = this.#options;
    const level = target.levels[grant.level];
    if (!level) throw new ProviderError(`target ${targetName} has no level ${grant.level}`);
    const name = buildRoleName(target.role_prefix, grant.requester, grant.id);
    const password = randomBytes(24).toString('base64url');
    const levelRole = level.grants?.length ? buildLevelRoleName(target.role_prefix, grant.level) : undefined;
    if (levelRole) await this.#ensureLevelRoles();
    const templates = level.creation_statements ?? buildDefaultCreationStatements(level, levelRole);
    const values = {
      name,
      passwordVerifier: await buildScramVerifier(password),
      expiresAt,
      connectionLimit: target.connection_limit,
    };
    const client = await this.#connect();
    try {
      await client.query('BEGIN');
      // Custom statements may GRANT on tables, and two concurrent GRANTs on one table fail with
      // "tuple concurrently updated": serialise them. Default statements only add memberships.
      if (level.creation_statements) await client.query('SELECT pg_advisory_xact_lock($1)', [ACL_LOCK_KEY]);
      for (const template of templates) await client.query(renderStatement(template, values));
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      throw new ProviderError(`creating role on ${targetName} failed: ${describePgError(error)}`, {
        cause: error,
      });
    } finally {
      client.release();
    }
    const admin = target.admin;
    return {
      handle: name,
      credential: {
        kind: 'postgres',
        host: target.connect.host ?? admin.host,
        port: target.connect.port ?? admin.port,
        database: admin.database,
        user: name,
        password: new Secret(password),
        expiresAt,
      },
    };
  }

  /**
   * Creates or refreshes the level roles once per provider instance (at the first mint), so
   * tables created since the last start are covered.
   */
  #ensureLevelRoles(): Promise<void> {
    this.#levelRoles ??= this.#applyLevelRoles().catch((error) => {
      this.#levelRoles = undefined;
      throw error;
    });
    return this.#levelRoles;
  }

  async #applyLevelRoles(): Promise<void> {
    const { target, targetName } = this.#options;
    const client = await this.#connect();
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock($1)', [ACL_LOCK_KEY]);
      for (const [name, level] of Object.entries(target.levels)) {
        if (!level.grants?.length || level.creation_statements) continue;
        for (const statement of buildLevelRoleStatements(
          buildLevelRoleName(target.role_prefix, name),
          level,
        )) {
          await client.query(statement);
        }
      }
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      throw new ProviderError(`preparing level roles on ${targetName} failed: ${describePgError(error)}`, {
        cause: error,
      });
    } finally {
      client.release();
    }
  }

  async extend(credential: CredentialRecord, expiresAt: number): Promise<void> {
    await this.#query(
      `ALTER ROLE ${escapeIdentifier(credential.handle)} VALID UNTIL ${pg.escapeLiteral(new Date(expiresAt).toISOString())}`,
      'extending role',
    );
  }

  /** Sets a fresh random password on grant role `handle` (sent as a SCRAM verifier, as at mint). */
  async resetPassword(handle: string): Promise<Secret> {
    this.#assertGrantRole(handle, 'change');
    const password = randomBytes(24).toString('base64url');
    const verifier = await buildScramVerifier(password);
    await this.#query(
      `ALTER ROLE ${escapeIdentifier(handle)} PASSWORD ${pg.escapeLiteral(verifier)}`,
      'resetting password',
    );
    return new Secret(password);
  }

  async revoke(credentials: readonly CredentialRecord[]): Promise<Map<string, Error>> {
    const failures = new Map<string, Error>();
    if (credentials.length === 0) return failures;
    try {
      await this.#revokeRoles(credentials.map((c) => c.handle));
    } catch (error) {
      if (credentials.length === 1) {
        failures.set(credentials[0]!.id, error as Error);
        return failures;
      }
      // One bad role must not keep the others alive: retry one by one to isolate it.
      for (const credential of credentials) {
        try {
          await this.#revokeRoles([credential.handle]);
        } catch (inner) {
          failures.set(credential.id, inner as Error);
        }
      }
    }
    return failures;
  }

  /**
   * Stop new logins, end live sessions, remove what the roles own or were granted, drop them.
   * Idempotent: roles already gone are skipped.
   */
  async #revokeRoles(names: readonly string[]): Promise<void> {
    const client = await this.#connect();
    try {
      const existing = await client.query<{ rolname: string }>(
        'SELECT rolname FROM pg_roles WHERE rolname = ANY($1)',
        [names],
      );
      const roles = existing.rows.map((r) => r.rolname);
      if (roles.length === 0) return;
      const list = roles.map((r) => escapeIdentifier(r)).join(', ');
      await client.query(roles.map((r) => `ALTER ROLE ${escapeIdentifier(r)} NOLOGIN`).join('; '));
      await client.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = ANY($1)', [
        roles,
      ]);
      const custom = this.#options.target.revocation_statements;
      if (custom) {
        for (const role of roles) {
          for (const template of custom) {
            await client.query(
              renderStatement(template, {
                name: role,
                passwordVerifier: '',
                expiresAt: Date.now(),
                connectionLimit: 0,
              }),
            );
          }
        }
        return;
      }
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock($1)', [ACL_LOCK_KEY]);
      await client.query(`REASSIGN OWNED BY ${list} TO ${escapeIdentifier(this.#options.target.admin.user)}`);
      await client.query(`DROP OWNED BY ${list}`);
      await client.query(`DROP ROLE IF EXISTS ${list}`);
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      throw new ProviderError(
        `revoking roles on ${this.#options.targetName} failed: ${describePgError(error)}`,
        {
          cause: error,
        },
      );
    } finally {
      client.release();
    }
  }

  async listManaged(): Promise<string[]> {
    const result = await this.#query(
      'SELECT rolname FROM pg_roles WHERE starts_with(rolname, $1) AND NOT starts_with(rolname, $2) ORDER BY rolname',
      'listing roles',
      [this.#options.target.role_prefix, `${this.#options.target.role_prefix}_`],
    );
    return result.rows.map((r: { rolname: string }) => r.rolname);
  }

  async removeOrphan(handle: string): Promise<void> {
    this.#assertGrantRole(handle, 'drop');
    await this.#revokeRoles([handle]);
  }

  /** Warden only ever touches roles it minted: the prefix, and not a level role (`prefix_`). */
  #assertGrantRole(handle: string, verb: string): void {
    const prefix = this.#options.target.role_prefix;
    if (!handle.startsWith(prefix) || handle.startsWith(`${prefix}_`)) {
      throw new ProviderError(`refusing to ${verb} ${handle}: it is not a grant role (prefix ${prefix})`);
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
  }

  async close(): Promise<void> {
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
    const client = await this.#connect();
    try {
      return await client.query(text, params);
    } catch (error) {
      throw new ProviderError(`${what} on ${this.#options.targetName} failed: ${describePgError(error)}`, {
        cause: error,
      });
    } finally {
      client.release();
    }
  }
}
