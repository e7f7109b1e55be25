/**
 * `warden doctor` for a Postgres target: with the configured admin, checks the privileges
 * Warden needs one by one (each failure names the statement that fixes it), then runs the real
 * thing on a scratch role per level: mint, log in as it, revoke, and check it is gone. Nothing
 * is left behind: a scratch role that survives a failed step is removed in `finally`.
 */

import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { PostgresTargetConfig } from '../../config/schema.ts';
import type { AccessRequest, CredentialRecord } from '../../model.ts';
import type { CredentialProvider, SelfTestStep } from '../provider.ts';
import { describePgError } from './admin-pool.ts';
import { PostgresCredential } from './credential.ts';
import { describeMissing, type LevelPrivileges, suggestGrant } from './level-privileges.ts';
import { qualifyTable } from './statements.ts';

export interface SelfTestOptions {
  targetName: string;
  target: PostgresTargetConfig;
  provider: CredentialProvider;
  levels: LevelPrivileges;
  query: (text: string, params?: unknown[]) => Promise<pg.QueryResult>;
  /** Connection settings for logging in as a minted role. */
  loginConfig: (user: string, password: string) => pg.ClientConfig;
}

/** Runs every step; a missing role to inherit or reassign to skips the cycle (it would only fail the same way). */
export async function runSelfTest(options: SelfTestOptions): Promise<SelfTestStep[]> {
  const steps: SelfTestStep[] = [];
  const admin = options.target.admin.user;
  const attempt = async (step: string, run: () => Promise<string>, fix?: (error: Error) => string) => {
    try {
      steps.push({ step, ok: true, detail: await run() });
      return true;
    } catch (error) {
      const e = error as Error;
      steps.push({ step, ok: false, detail: e.message.slice(0, 400), ...(fix ? { fix: fix(e) } : {}) });
      return false;
    }
  };
  let version = 0;
  const reachable = await attempt(
    'admin role',
    async () => {
      const { rows } = await options.query(
        `SELECT rolsuper, rolcreaterole, rolinherit, current_setting('server_version_num')::int AS version
         FROM pg_roles WHERE rolname = current_user`,
      );
      const row = rows[0] as {
        rolsuper: boolean;
        rolcreaterole: boolean;
        rolinherit: boolean;
        version: number;
      };
      version = row.version;
      if (!row.rolsuper && !row.rolcreaterole) throw new Error(`${admin} lacks CREATEROLE`);
      if (!row.rolinherit)
        throw new Error(`${admin} is NOINHERIT: it cannot use the privileges of the roles it revokes`);
      return row.rolsuper
        ? `${admin} is a superuser (works; a CREATEROLE role is enough and safer)`
        : `${admin} has CREATEROLE, PostgreSQL ${Math.floor(version / 10000)}`;
    },
    (error) =>
      /cannot reach|authentication|ECONN|timeout/i.test(error.message)
        ? `check targets.${options.targetName}.admin: host, port, user and password`
        : `ALTER ROLE "${admin}" CREATEROLE INHERIT`,
  );
  if (!reachable) return steps;
  let ready = true;
  for (const [name, level] of Object.entries(options.target.levels)) {
    for (const role of level.inherit ?? []) {
      const granted = await attempt(
        `level ${name}: inherit ${role}`,
        async () => {
          const { rows } = await options.query(
            `SELECT rolsuper, ${version >= 160000 ? "pg_has_role(current_user, oid, 'MEMBER WITH ADMIN OPTION')" : 'true'} AS admin_option
             FROM pg_roles WHERE rolname = $1`,
            [role],
          );
          const row = rows[0] as { rolsuper: boolean; admin_option: boolean } | undefined;
          if (!row) throw new Error(`role ${role} does not exist`);
          if (row.rolsuper) throw new Error(`role ${role} is a superuser: Warden will not hand it out`);
          if (!row.admin_option)
            throw new Error(
              `${admin} lacks ADMIN OPTION on ${role} (PostgreSQL 16+ needs it to grant ${role})`,
            );
          return `${admin} may grant ${role}`;
        },
        () => `GRANT "${role}" TO "${admin}" WITH ADMIN OPTION`,
      );
      ready = granted && ready;
    }
    if (!level.grants?.length || level.creation_statements) continue;
    // Reported, but not a reason to skip the cycle: a schema-wide level still works without the
    // privileges named, and a level naming its tables fails its mint with the same words.
    await attempt(
      `level ${name}: privileges`,
      async () => {
        const report = await options.levels.look(name);
        if (report.missingTables.length > 0) {
          throw new Error(`the level names tables that do not exist: ${report.missingTables.join(', ')}`);
        }
        if (report.notGrantable.length > 0) {
          const error = new Error(
            `${admin} cannot grant ${describeMissing(report.notGrantable).slice(0, 300)}`,
          );
          (error as Error & { fix?: string }).fix = suggestGrant(report.notGrantable, admin);
          throw error;
        }
        const scope = [
          ...level.schemas.map((s) => `schema ${s}`),
          ...(level.tables ?? []).map((t) => {
            const q = qualifyTable(t);
            return `${q.schema}.${q.table}`;
          }),
        ];
        return `${level.grants!.join(', ')} on ${scope.join(', ')}: all grantable`;
      },
      (error) => (error as Error & { fix?: string }).fix ?? 'see docs/postgres.md, "The admin role"',
    );
  }
  const reassign = options.target.owned_objects;
  if (typeof reassign === 'object') {
    const usable = await attempt(
      `owned objects: reassign to ${reassign.reassign_to}`,
      async () => {
        const { rows } = await options.query(
          "SELECT pg_has_role(current_user, oid, 'USAGE') AS usable FROM pg_roles WHERE rolname = $1",
          [reassign.reassign_to],
        );
        const row = rows[0] as { usable: boolean } | undefined;
        if (!row) throw new Error(`role ${reassign.reassign_to} does not exist`);
        if (!row.usable)
          throw new Error(
            `${admin} lacks the privileges of ${reassign.reassign_to} (REASSIGN OWNED needs them)`,
          );
        return `${admin} may reassign to ${reassign.reassign_to}`;
      },
      () => `GRANT "${reassign.reassign_to}" TO "${admin}"`,
    );
    ready = usable && ready;
  }
  if (!ready) return steps;
  for (const level of Object.keys(options.target.levels)) await runCycle(options, level, steps);
  return steps;
}

/** Mint → login → revoke → gone, for one level, on a scratch role. */
async function runCycle(options: SelfTestOptions, level: string, steps: SelfTestStep[]): Promise<void> {
  const { provider } = options;
  const now = Date.now();
  const id = `doctor${randomBytes(4).toString('hex')}`;
  const grant = { id, requester: 'doctor', target: options.targetName, level } as AccessRequest;
  let handle: string | undefined;
  const step = `level ${level}: mint, login, revoke`;
  try {
    const minted = await provider.mint(grant, now + 5 * 60_000);
    handle = minted.handle;
    const credential = minted.credential;
    if (!(credential instanceof PostgresCredential)) throw new Error('not a postgres credential');
    const client = new pg.Client(options.loginConfig(credential.user, credential.password.reveal()));
    client.on('error', () => {});
    try {
      await client.connect();
      await client.query('SELECT 1');
    } catch (error) {
      throw new Error(`logging in as the minted role failed: ${describePgError(error)}`);
    } finally {
      await client.end().catch(() => {});
    }
    await revokeScratch(provider, options.targetName, handle, id, now);
    const { rows } = await options.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [handle]);
    if (rows.length > 0) throw new Error(`role ${handle} is still there after revocation`);
    handle = undefined;
    steps.push({ step, ok: true, detail: 'minted, logged in, revoked; nothing left behind' });
  } catch (error) {
    steps.push({
      step,
      ok: false,
      detail: (error as Error).message.slice(0, 400),
      fix: fixFor(error as Error),
    });
  } finally {
    if (handle) {
      await revokeScratch(provider, options.targetName, handle, id, now).catch((error) =>
        steps.push({
          step: `level ${level}: clean-up`,
          ok: false,
          detail: `scratch role ${handle} could not be removed: ${(error as Error).message.slice(0, 300)}`,
          fix: `DROP OWNED BY "${handle}"; DROP ROLE "${handle}"  (as a superuser)`,
        }),
      );
    }
  }
}

async function revokeScratch(
  provider: CredentialProvider,
  target: string,
  handle: string,
  requestId: string,
  now: number,
): Promise<void> {
  const record: CredentialRecord = {
    id: requestId,
    requestId,
    target,
    provider: provider.name,
    handle,
    state: 'revoking',
    createdAt: now,
    expiresAt: now,
    revokedAt: null,
    attempts: 0,
    nextAttemptAt: null,
    lastError: null,
    leaseOwner: null,
    leaseUntil: null,
  };
  const result = await provider.revoke([record]);
  const failure = result.failures.get(requestId);
  if (failure) throw failure;
}

/** The privilege behind a PostgreSQL refusal, as the statement that grants it. */
function fixFor(error: Error): string {
  const text = error.message;
  if (/permission denied to (grant|revoke) role|must have admin option/i.test(text))
    return 'give the admin ADMIN OPTION on the roles a level inherits (docs/postgres.md, "The admin role")';
  if (/permission denied to (create|alter|drop) role/i.test(text)) return 'the admin needs CREATEROLE';
  if (/permission denied to (reassign|drop) objects/i.test(text))
    return 'the admin must have the privileges of the roles it reassigns to (GRANT <role> TO <admin>)';
  if (/permission denied to terminate/i.test(text))
    return 'the admin needs INHERIT (ALTER ROLE <admin> INHERIT)';
  if (/no pg_hba.conf entry|password authentication failed/i.test(text))
    return 'pg_hba.conf must let grant roles log in from where people connect';
  return 'see docs/postgres.md';
}
