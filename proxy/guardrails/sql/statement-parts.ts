/**
 * Statement node types by what they do, and small readers of statement parts (COPY options,
 * set_config names pinned by pg_settings filters, SET values), shared by the classifier.
 */
import { constantString, findOption, isObject, stringList, unwrap } from './ast.ts';
import type { SqlEffect, StatementKind } from './effects.ts';
import type { FilterVerdict } from './filters.ts';
import type { QualifiedName } from './names.ts';
import type { CopyOptionValue } from './report.ts';

export const ROLE_STATEMENTS = new Set([
  'CreateRoleStmt',
  'AlterRoleStmt',
  'DropRoleStmt',
  'AlterRoleSetStmt',
]);
export const PRIVILEGE_STATEMENTS = new Set([
  'GrantStmt',
  'GrantRoleStmt',
  'AlterDefaultPrivilegesStmt',
  'ReassignOwnedStmt',
  'DropOwnedStmt',
  'AlterOwnerStmt',
]);
/**
 * Objects that act after the grant ends, for other sessions or with the creator's rights (SECURITY
 * DEFINER functions are found from their options).
 */
export const PERSISTENT_STATEMENTS = new Set([
  'CreateTrigStmt',
  'CreateEventTrigStmt',
  'AlterEventTrigStmt',
  'RuleStmt',
  'CreatePublicationStmt',
  'AlterPublicationStmt',
  'CreateSubscriptionStmt',
  'AlterSubscriptionStmt',
  'CreateForeignServerStmt',
  'AlterForeignServerStmt',
  'CreateFdwStmt',
  'AlterFdwStmt',
  'CreateUserMappingStmt',
  'AlterUserMappingStmt',
  'AlterDefaultPrivilegesStmt',
]);
export const SESSION_STATEMENTS = new Set([
  'VariableSetStmt',
  'VariableShowStmt',
  'DiscardStmt',
  'DeallocateStmt',
  'ListenStmt',
  'UnlistenStmt',
  'NotifyStmt',
  'FetchStmt',
  'ClosePortalStmt',
  'DeclareCursorStmt',
]);
export const MAINTENANCE_STATEMENTS = new Set(['VacuumStmt', 'ClusterStmt', 'ReindexStmt', 'CheckPointStmt']);
export const DDL_PREFIX =
  /^(Create|Alter|Define|Drop|Rename|Comment|Composite|SecLabel|Import|Refresh|View|Index|Rule)/;
export const DESTRUCTIVE_ALTER = new Set(['AT_DropColumn', 'AT_DropConstraint']);

export const SIMPLE_KINDS: Record<string, StatementKind> = {
  SelectStmt: 'select',
  InsertStmt: 'insert',
  UpdateStmt: 'update',
  DeleteStmt: 'delete',
  MergeStmt: 'merge',
  TruncateStmt: 'truncate',
  CopyStmt: 'copy',
  TransactionStmt: 'transaction',
  ExplainStmt: 'explain',
  PrepareStmt: 'prepare',
  ExecuteStmt: 'execute',
  DoStmt: 'procedural',
  CallStmt: 'procedural',
  LockStmt: 'utility',
  LoadStmt: 'utility',
  AlterSystemStmt: 'ddl',
  DropdbStmt: 'ddl',
};

export const MERGE_COMMANDS: Record<string, StatementKind> = {
  CMD_UPDATE: 'update',
  CMD_DELETE: 'delete',
  CMD_INSERT: 'insert',
};

/** The kind of a statement node type. */
export function kindOf(type: string): StatementKind {
  const simple = SIMPLE_KINDS[type];
  if (simple) return simple;
  if (ROLE_STATEMENTS.has(type)) return 'role';
  if (PRIVILEGE_STATEMENTS.has(type)) return 'privilege';
  if (SESSION_STATEMENTS.has(type)) return 'session';
  if (MAINTENANCE_STATEMENTS.has(type)) return 'maintenance';
  if (DDL_PREFIX.test(type)) return 'ddl';
  return 'utility';
}

export const TRUE_VALUES = new Set(['on', 'true', 'yes', '1']);
/**
 * Settings that change who the session acts as, by `SET` or `set_config`. (Other settings that
 * widen privileges, such as `session_replication_role`, are superuser-only.)
 */
export const IDENTITY_SETTINGS = new Set(['role', 'session_authorization']);

/** The effect of a DELETE/UPDATE with this filter (conditional filters are decided per session). */
export function unfilteredEffect(kind: StatementKind, filter: FilterVerdict): SqlEffect {
  if (filter.kind !== 'unfiltered') return 'write';
  return kind === 'update' ? 'update-unfiltered' : 'delete-unfiltered';
}

export function isSecurityDefiner(options: unknown): boolean {
  const security = findOption(options, 'security');
  const arg = unwrap(security?.arg);
  return arg?.[0] === 'Boolean' && arg[1].boolval === true;
}

export function relationName(relation: unknown): QualifiedName {
  const r = isObject(relation) ? relation : {};
  return {
    ...(typeof r.schemaname === 'string' ? { schema: r.schemaname } : {}),
    name: String(r.relname ?? ''),
  };
}

/** `[schema, name]` or `[name]` (or `[db, schema, name]`) as a qualified name. */
export function qualified(parts: readonly string[]): QualifiedName | undefined {
  if (parts.length === 0) return undefined;
  const name = parts.at(-1)!;
  return parts.length === 1 ? { name } : { schema: parts.at(-2)!, name };
}

export function stringOrBool(node: unknown): boolean | undefined {
  const text = constantString(node);
  if (text !== undefined) return TRUE_VALUES.has(text.toLowerCase());
  const u = unwrap(node);
  const boolval = u?.[1].boolval;
  return isObject(boolval) ? boolval.boolval === true : undefined;
}

/** A `COPY` option's argument as {@link CopyOptionValue}. */
export function copyOptionValue(arg: unknown): CopyOptionValue {
  if (arg === undefined) return undefined;
  const u = unwrap(arg);
  if (!u) return null;
  const [type, value] = u;
  if (type === 'String') return typeof value.sval === 'string' ? value.sval : null;
  if (type === 'Boolean') return value.boolval === true;
  if (type === 'Integer') return value.ival === undefined ? false : value.ival === 1 ? true : null;
  if (type === 'A_Star') return '*';
  if (type === 'List') return stringList(value.items);
  return null;
}

/** True for the column reference `name` or `pg_settings.name`. */
export function isSettingsName(node: unknown): boolean {
  const u = unwrap(node);
  if (u?.[0] !== 'ColumnRef' || !Array.isArray(u[1].fields)) return false;
  const names = stringList(u[1].fields);
  if (names.length !== u[1].fields.length) return false;
  return names.length === 1
    ? names[0] === 'name'
    : names.length === 2 && names.join('.') === 'pg_settings.name';
}

/** The constant `c` of a filter `name = 'c'` (alone or in an AND), if there is one. */
export function pinnedSettingName(where: unknown): string | undefined {
  const u = unwrap(where);
  if (u?.[0] === 'BoolExpr' && u[1].boolop === 'AND_EXPR' && Array.isArray(u[1].args)) {
    for (const arg of u[1].args) {
      const pinned = pinnedSettingName(arg);
      if (pinned !== undefined) return pinned;
    }
    return undefined;
  }
  if (u?.[0] !== 'A_Expr' || u[1].kind !== 'AEXPR_OP') return undefined;
  const operator = stringList(u[1].name).join('.');
  if (operator !== '=' && operator !== 'pg_catalog.=') return undefined;
  if (isSettingsName(u[1].lexpr)) return constantString(u[1].rexpr);
  if (isSettingsName(u[1].rexpr)) return constantString(u[1].lexpr);
  return undefined;
}

/** The first argument of a `SET` as text (string or number constant). */
export function firstConstant(args: unknown): string | undefined {
  if (!Array.isArray(args) || args.length === 0) return undefined;
  const text = constantString(args[0]);
  if (text !== undefined) return text;
  const u = unwrap(args[0]);
  if (u?.[0] !== 'A_Const') return undefined;
  const number = u[1].ival ?? u[1].fval;
  if (isObject(number)) return String(number.ival ?? number.fval ?? 0);
  return undefined;
}
