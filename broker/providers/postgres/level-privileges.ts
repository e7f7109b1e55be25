/**
 * Keeps each level role's privileges in line with its level: `grants` on the level's `tables`,
 * or on every table of its `schemas`, including tables created since the last look.
 *
 * Rather than re-running `GRANT ... ON ALL TABLES IN SCHEMA` (which fails outright on one table
 * the admin has no privilege on at all), the provider asks the catalogue which privileges the
 * level role still lacks and whether the admin may grant each (`WITH GRANT OPTION`), and grants
 * only those. What the admin may not grant is named: for a table the level lists by name the
 * mint fails with the privilege to add; for a schema-wide level it is logged (and `warden
 * doctor` names it), since one unrelated table must not stop every grant.
 */
import type pg from 'pg';
import type { PgLevelConfig, PostgresTargetConfig } from '../../config/schema.ts';
import { ProviderError } from '../../errors.ts';
import type { Logger } from '../../log.ts';
import { describePgError } from './admin-pool.ts';
import {
  buildScopeParams,
  type DbColumnRule,
  type ExistingView,
  hasMaskingRules,
  MASK_VIEWS_SQL,
  planLevelMasking,
  SCOPE_COLUMNS_SQL,
  type ScopeColumn,
} from './masking-views.ts';
import { ACL_LOCK_KEY } from './revocation.ts';
import {
  buildEnsureRoleStatement,
  buildGrantStatements,
  buildLevelRoleName,
  describeLevelPrivileges,
  MISSING_LEVEL_PRIVILEGES_SQL,
  type MissingPrivilege,
  qualifyTable,
} from './statements.ts';

export interface LevelPrivilegesOptions {
  targetName: string;
  target: PostgresTargetConfig;
  connect: () => Promise<pg.PoolClient>;
  release: (client: pg.PoolClient, error?: unknown) => void;
  logger?: Logger | undefined;
  /** Column rules the database enforces (`masking-views.ts`); none: table-wide grants as before. */
  maskRules?: readonly DbColumnRule[];
}

/** What a look at one level found. */
export interface LevelReport {
  /** Privileges granted now. */
  granted: MissingPrivilege[];
  /** Privileges the admin cannot grant (no grant option). */
  notGrantable: MissingPrivilege[];
  /** Tables listed in `tables` that do not exist. */
  missingTables: string[];
  /** Masked columns in the level's scope (`schema.table.column` → rule), when masking is on. */
  masked?: Map<string, string>;
}

export class LevelPrivileges {
  readonly #options: LevelPrivilegesOptions;
  /** Looks under way: concurrent mints of one level share one. */
  readonly #looks = new Map<string, Promise<LevelReport>>();
  /** The last finished look of each level, and when it started. */
  readonly #done = new Map<string, { at: number; report: LevelReport }>();
  readonly #warned = new Set<string>();

  constructor(options: LevelPrivilegesOptions) {
    this.#options = options;
  }

  /** Levels whose privileges Warden manages (table grants, no custom creation statements). */
  managedLevels(): [string, PgLevelConfig][] {
    return Object.entries(this.#options.target.levels).filter(
      ([, level]) => level.grants?.length && !level.creation_statements,
    );
  }

  /** Brings one level role up to date; throws when a table the level names cannot be covered. */
  /**
   * Brings one level role up to date, reusing a look younger than `maxAgeMs` (mints pass a few
   * seconds: a thousand mints must not cost a thousand catalogue scans); throws when a table the
   * level names cannot be covered.
   */
  async refresh(levelName: string, maxAgeMs = 0): Promise<LevelReport> {
    const last = this.#done.get(levelName);
    const report =
      last && maxAgeMs > 0 && Date.now() - last.at < maxAgeMs ? last.report : await this.look(levelName);
    this.#judge(levelName, report);
    return report;
  }

  /** Grants what the admin may grant and reports the rest, without judging it (`warden doctor`). */
  look(levelName: string): Promise<LevelReport> {
    const running = this.#looks.get(levelName);
    if (running) return running;
    const started = Date.now();
    const run = this.#apply(levelName)
      .then((report) => {
        this.#done.set(levelName, { at: started, report });
        return report;
      })
      .finally(() => this.#looks.delete(levelName));
    this.#looks.set(levelName, run);
    return run;
  }

  async refreshAll(): Promise<void> {
    for (const [name] of this.managedLevels()) {
      try {
        await this.refresh(name);
      } catch (error) {
        this.#options.logger?.warn(
          { target: this.#options.targetName, level: name, error: (error as Error).message },
          'cannot bring level privileges up to date',
        );
      }
    }
  }

  async #apply(levelName: string): Promise<LevelReport> {
    const { target, targetName } = this.#options;
    const level = target.levels[levelName]!;
    const role = buildLevelRoleName(target.role_prefix, levelName);
    const tables = (level.tables ?? []).map((t) => {
      const q = qualifyTable(t);
      return `${q.schema}.${q.table}`;
    });
    const privileges = describeLevelPrivileges(level);
    const client = await this.#options.connect();
    let failure: unknown;
    try {
      const exists = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role]);
      if (exists.rowCount === 0) await client.query(buildEnsureRoleStatement(role));
      const masking = hasMaskingRules(this.#options.maskRules ?? []);
      // With masking on, SELECT and REFERENCES go column by column on every relation in scope
      // (the masking plan): a table-wide grant would also cover columns added or created later.
      const params: unknown[] = [
        level.schemas,
        privileges.tables,
        tables,
        role,
        privileges.sequences,
        masking,
      ];
      let missing = (await client.query<MissingPrivilege>(MISSING_LEVEL_PRIVILEGES_SQL, params)).rows;
      const grantable = missing.filter((m) => m.grantable);
      let masked: Map<string, string> | undefined;
      if (grantable.length > 0 || masking) {
        await client.query('BEGIN');
        try {
          await client.query('SELECT pg_advisory_xact_lock($1)', [ACL_LOCK_KEY]);
          const plan = masking ? await this.#planMasking(client, levelName, role) : undefined;
          // Under the lock another replica may have granted them already: look again.
          missing = (await client.query<MissingPrivilege>(MISSING_LEVEL_PRIVILEGES_SQL, params)).rows;
          for (const statement of buildGrantStatements(role, missing)) await client.query(statement);
          if (plan) {
            masked = plan.masked;
            for (const statement of plan.statements) await client.query(statement);
            missing.push(
              ...plan.notGrantable.map((column) => {
                const [schema, table, name] = column.split('.');
                return {
                  kind: 'table' as const,
                  object: `${schema}.${table}`,
                  privilege: `SELECT (${name})`,
                  grantable: false,
                };
              }),
            );
          }
          await client.query('COMMIT');
        } catch (error) {
          await client.query('ROLLBACK').catch(() => {});
          throw error;
        }
      }
      const present = await client.query<{ name: string }>(
        `SELECT n.nspname || '.' || c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE (n.nspname || '.' || c.relname) = ANY($1::text[])`,
        [tables],
      );
      const report: LevelReport = {
        granted: missing.filter((m) => m.grantable),
        notGrantable: missing.filter((m) => !m.grantable),
        missingTables: tables.filter((t) => !present.rows.some((r) => r.name === t)),
        ...(masked ? { masked } : {}),
      };
      return report;
    } catch (error) {
      failure = error;
      throw new ProviderError(
        `preparing level ${levelName} on ${targetName} failed: ${describePgError(error)}`,
        { cause: error },
      );
    } finally {
      this.#options.release(client, failure);
    }
  }

  /** Column privileges and masking views of one level, planned from the catalogue (in the caller's transaction). */
  async #planMasking(client: pg.PoolClient, levelName: string, role: string) {
    const rules = this.#options.maskRules ?? [];
    const level = this.#options.target.levels[levelName]!;
    const columns = (await client.query<ScopeColumn>(SCOPE_COLUMNS_SQL, buildScopeParams(rules, level, role)))
      .rows;
    const views = (await client.query<ExistingView>(MASK_VIEWS_SQL)).rows;
    return planLevelMasking({
      levelRole: role,
      level,
      rules,
      columns,
      views: new Map(views.map((v) => [v.name, v])),
    });
  }

  /** Fails for what a level names explicitly; logs (once) what a schema-wide level cannot cover. */
  #judge(levelName: string, report: LevelReport): void {
    const { target, targetName } = this.#options;
    const level = target.levels[levelName]!;
    const admin = target.admin.user;
    const named = new Set((level.tables ?? []).map((t) => qualifyTable(t)));
    const isNamed = (m: MissingPrivilege) =>
      m.kind === 'table' &&
      [...named].some(
        (q) => m.object === `${q.schema}.${q.table}` || m.object === `"${q.schema}"."${q.table}"`,
      );
    const blocking = report.notGrantable.filter((m) => isNamed(m) || (m.kind === 'schema' && named.size > 0));
    if (report.missingTables.length > 0) {
      throw new ProviderError(
        `level ${levelName} of ${targetName} names tables that do not exist: ${report.missingTables.join(', ')}`,
      );
    }
    if (blocking.length > 0) {
      throw new ProviderError(
        `level ${levelName} of ${targetName}: ${admin} cannot grant ${describeMissing(blocking)}; run ${suggestGrant(blocking, admin)}`,
      );
    }
    const rest = report.notGrantable.filter((m) => !blocking.includes(m));
    const fresh = rest.filter((m) => !this.#warned.has(`${levelName} ${m.kind} ${m.object} ${m.privilege}`));
    if (fresh.length > 0) {
      for (const m of fresh) this.#warned.add(`${levelName} ${m.kind} ${m.object} ${m.privilege}`);
      this.#options.logger?.warn(
        { target: targetName, level: levelName, missing: describeMissing(fresh).slice(0, 1000) },
        `the admin cannot grant these privileges (no grant option); grants of this level lack them`,
      );
    }
  }
}

/** `SELECT on public.orders, USAGE on schema reporting`. */
export function describeMissing(missing: readonly MissingPrivilege[]): string {
  return missing
    .map((m) => `${m.privilege} on ${m.kind === 'table' ? '' : `${m.kind} `}${m.object}`)
    .join(', ');
}

/** The GRANT a DBA runs to let the admin hand these privileges out. */
export function suggestGrant(missing: readonly MissingPrivilege[], admin: string): string {
  const statements = new Map<string, string[]>();
  for (const m of missing) {
    const key = `${m.kind === 'schema' ? 'SCHEMA' : m.kind === 'table' ? 'TABLE' : 'SEQUENCE'} ${m.object}`;
    statements.set(key, [...(statements.get(key) ?? []), m.privilege]);
  }
  return [...statements]
    .slice(0, 5)
    .map(
      ([on, privileges]) =>
        `GRANT ${[...new Set(privileges)].join(', ')} ON ${on} TO "${admin}" WITH GRANT OPTION`,
    )
    .join('; ');
}
