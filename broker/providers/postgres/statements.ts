/**
 * The SQL that creates and removes a grant's role, as templates in the style of Vault's
 * `creation_statements`: `{{name}}` (quoted identifier), `{{password}}` (the SCRAM verifier, as a
 * literal), `{{expiration}}` (timestamp literal), `{{connection_limit}}`. Placeholders expand to
 * already-quoted SQL: write `{{name}}`, not `"{{name}}"`.
 */
import pg from 'pg';
import type { PgLevelConfig } from '../../config/schema.ts';

const { escapeIdentifier, escapeLiteral } = pg;

export interface RoleTemplateValues {
  name: string;
  passwordVerifier: string;
  expiresAt: number;
  connectionLimit: number;
}

/**
 * The NOLOGIN role that holds a level's table privileges (`warden__read`). Grant roles become
 * members of it instead of receiving the privileges themselves: creating and dropping a grant's
 * role then never rewrites table ACLs, which is what makes a thousand revocations cheap.
 * The double underscore cannot occur in a grant role's name (person ids start with [a-z0-9]).
 */
export function buildLevelRoleName(prefix: string, level: string): string {
  return `${prefix}_${level.replace(/[^a-z0-9_]/g, '_')}`.slice(0, 63);
}

/** Idempotent statements that (re)create a level role and give it the level's privileges. */
export function buildLevelRoleStatements(levelRole: string, level: PgLevelConfig): string[] {
  const role = escapeIdentifier(levelRole);
  const statements = [
    `DO $$ BEGIN CREATE ROLE ${role} NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$`,
  ];
  const privileges = (level.grants ?? []).map((g) => g.toUpperCase()).join(', ');
  const writes = level.grants?.some((g) => g === 'insert' || g === 'update') ?? false;
  for (const schema of level.schemas) {
    const s = escapeIdentifier(schema);
    statements.push(`GRANT USAGE ON SCHEMA ${s} TO ${role}`);
    statements.push(`GRANT ${privileges} ON ALL TABLES IN SCHEMA ${s} TO ${role}`);
    statements.push(
      `GRANT ${writes ? 'USAGE, SELECT' : 'SELECT'} ON ALL SEQUENCES IN SCHEMA ${s} TO ${role}`,
    );
  }
  return statements;
}

/** Default statements for a grant: a LOGIN role that expires, member of its level's roles. */
export function buildDefaultCreationStatements(
  level: PgLevelConfig,
  levelRole: string | undefined,
): string[] {
  const statements = [
    'CREATE ROLE {{name}} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION INHERIT PASSWORD {{password}} VALID UNTIL {{expiration}} CONNECTION LIMIT {{connection_limit}}',
  ];
  for (const role of level.inherit ?? []) statements.push(`GRANT ${escapeIdentifier(role)} TO {{name}}`);
  if (levelRole) statements.push(`GRANT ${escapeIdentifier(levelRole)} TO {{name}}`);
  return statements;
}

/** Fills a template; every value is quoted for its position, so no input can break out of it. */
export function renderStatement(template: string, values: RoleTemplateValues): string {
  return template.replace(/\{\{\s*(\w+)\s*\}\}/g, (whole, key: string) => {
    switch (key) {
      case 'name':
        return escapeIdentifier(values.name);
      case 'password':
        return escapeLiteral(values.passwordVerifier);
      case 'expiration':
        return escapeLiteral(new Date(values.expiresAt).toISOString());
      case 'connection_limit':
        return String(Math.trunc(values.connectionLimit));
      default:
        return whole;
    }
  });
}
