/**
 * The admin role every Postgres test target uses by default: the README's own setup (a
 * non-superuser CREATEROLE role named `warden`), read from the README's SQL blocks so the tests
 * exercise exactly what users are told to run. Tables in the tests are created by the cluster's
 * superuser, so the README's `app_owner` (the role that creates tables) reads `postgres` here.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import type { PgCluster } from './pg-cluster.ts';

/** The admin role's name (the README's). */
export const TEST_ADMIN_USER = 'warden';

const README = join(import.meta.dirname, '../../README.md');

/** The README's "PostgreSQL credentials" section: its two SQL blocks and its target YAML. */
export function readReadmeAdminSetup(): { createRole: string; perDatabase: string; targetYaml: string } {
  const text = readFileSync(README, 'utf8');
  const start = text.indexOf('### PostgreSQL credentials');
  const section = text.slice(start, text.indexOf('\n### ', start + 10));
  const blocks = [...section.matchAll(/```(sql|yaml)\n([\s\S]*?)```/g)].map((m) => ({
    lang: m[1],
    body: m[2]!,
  }));
  const sql = blocks.filter((b) => b.lang === 'sql').map((b) => b.body);
  const yaml = blocks.find((b) => b.lang === 'yaml')?.body;
  if (sql.length !== 2 || !yaml) throw new Error('README: PostgreSQL credentials has no admin SQL or target');
  return { createRole: sql[0]!, perDatabase: sql[1]!, targetYaml: yaml };
}

/**
 * Runs the README's admin setup for `database`: the role once per cluster (its password is the
 * cluster's superuser password, which the tests already keep out of logs), the grants per
 * database. `owner` is the role that creates the database's tables.
 */
export async function prepareTargetAdmin(
  cluster: PgCluster,
  database: string,
  owner = cluster.user,
): Promise<void> {
  const { createRole, perDatabase } = readReadmeAdminSetup();
  const client = new pg.Client({ connectionString: cluster.urlFor(database) });
  await client.connect();
  try {
    const exists = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [TEST_ADMIN_USER]);
    if (exists.rowCount === 0) {
      await client.query(createRole.replace("'change-me'", pg.escapeLiteral(cluster.password)));
    }
    await client.query(
      perDatabase
        .replace(/\bDATABASE app\b/g, `DATABASE ${pg.escapeIdentifier(database)}`)
        .replace(/\bapp_owner\b/g, pg.escapeIdentifier(owner)),
    );
  } finally {
    await client.end();
  }
}
