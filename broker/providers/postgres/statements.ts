/**
 * The SQL that creates and removes a grant's role, as templates in the style of Vault's
 * `creation_statements`: `{{name}}` (quoted identifier), `{{password}}` (the SCRAM verifier, as a
 * literal), `{{expiration}}` (timestamp literal), `{{connection_limit}}`.
 */
import { escapeIdentifier, escapeLiteral } from 'pg';
import type { PgLevelConfig } from '../../config/schema.ts';

export interface RoleTemplateValues {
  name: string;
  passwordVerifier: string;
  expiresAt: number;
  connectionLimit: number;
}

/** Default statements for a level: a LOGIN role that expires, then its memberships and grants. */
export function buildDefaultCreationStatements(level: PgLevelConfig): string[] {
  const statements = [
    'CREATE ROLE {{name}} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION INHERIT PASSWORD {{password}} VALID UNTIL {{expiration}} CONNECTION LIMIT {{connection_limit}}',
  ];
  for (const role of level.inherit ?? []) statements.push(`GRANT ${escapeIdentifier(role)} TO {{name}}`);
  if (level.grants?.length) {
    const privileges = level.grants.map((g) => g.toUpperCase()).join(', ');
    const writes = level.grants.some((g) => g === 'insert' || g === 'update');
    for (const schema of level.schemas) {
      const s = escapeIdentifier(schema);
      statements.push(`GRANT USAGE ON SCHEMA ${s} TO {{name}}`);
      statements.push(`GRANT ${privileges} ON ALL TABLES IN SCHEMA ${s} TO {{name}}`);
      statements.push(
        `GRANT ${writes ? 'USAGE, SELECT' : 'SELECT'} ON ALL SEQUENCES IN SCHEMA ${s} TO {{name}}`,
      );
    }
  }
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
