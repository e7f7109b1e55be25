/**
 * The vocabulary of the SQL guardrails: statement kinds, effects ranked by consequence, and the
 * functions that reach outside the database (files, other sessions, other servers).
 */

/** What a statement is, from its top-level node. */
export type StatementKind =
  | 'select'
  | 'insert'
  | 'update'
  | 'delete'
  | 'merge'
  | 'truncate'
  | 'copy'
  | 'ddl'
  | 'role'
  | 'privilege'
  | 'session'
  | 'transaction'
  | 'explain'
  | 'prepare'
  | 'execute'
  | 'procedural'
  | 'maintenance'
  | 'utility';

/**
 * Everything a statement may do, found anywhere inside it. Ordered from most to least
 * consequential; a statement is classified by the first of its effects in this order.
 */
export const SQL_EFFECTS = [
  'drop-database',
  'alter-system',
  'copy-program',
  'load-library',
  'opaque-code',
  'role-change',
  'privilege-change',
  'session-identity',
  'persistent-object',
  'unsafe-setting',
  'dangerous-function',
  'dynamic-sql',
  'unknown-prepared',
  'copy-server-file',
  'drop-schema',
  'drop-table',
  'destructive-ddl',
  'truncate',
  'delete-unfiltered',
  'update-unfiltered',
  'drop',
  'ddl',
  'write',
  'lock',
  'maintenance',
  'execute-prepared',
  'read',
  'session',
  'transaction',
] as const;

/** One effect of {@link SQL_EFFECTS}. */
export type SqlEffect = (typeof SQL_EFFECTS)[number];

const EFFECT_RANK = new Map<SqlEffect, number>(SQL_EFFECTS.map((e, i) => [e, i]));

/** Sorts effects from most to least consequential (a new array). */
export function sortEffects(effects: Iterable<SqlEffect>): SqlEffect[] {
  return [...effects].sort((a, b) => EFFECT_RANK.get(a)! - EFFECT_RANK.get(b)!);
}

/**
 * Built-in functions that read or write server files, signal other backends, reload or change
 * server state, or open connections to other servers. Matched on the function's own name (the
 * last part of a qualified name) whatever its schema, after PostgreSQL's case folding.
 */
export const DANGEROUS_FUNCTIONS: ReadonlySet<string> = new Set([
  'pg_terminate_backend',
  'pg_cancel_backend',
  'pg_read_file',
  'pg_read_binary_file',
  'pg_stat_file',
  'pg_ls_dir',
  'pg_ls_logdir',
  'pg_ls_waldir',
  'pg_ls_tmpdir',
  'pg_ls_archive_statusdir',
  'pg_ls_logicalsnapdir',
  'pg_ls_logicalmapdir',
  'pg_ls_replslotdir',
  'pg_file_write',
  'pg_file_rename',
  'pg_file_unlink',
  'pg_file_sync',
  'pg_logdir_ls',
  'lo_import',
  'lo_export',
  'pg_reload_conf',
  'pg_rotate_logfile',
  'pg_promote',
  'pg_switch_wal',
  'pg_create_restore_point',
  'pg_backup_start',
  'pg_backup_stop',
  'pg_start_backup',
  'pg_stop_backup',
  'pg_wal_replay_pause',
  'pg_wal_replay_resume',
  'pg_create_physical_replication_slot',
  'pg_create_logical_replication_slot',
  'pg_drop_replication_slot',
  'pg_copy_physical_replication_slot',
  'pg_copy_logical_replication_slot',
  'pg_replication_origin_create',
  'pg_replication_origin_drop',
  'pg_log_backend_memory_contexts',
]);

/** Function-name prefixes treated like {@link DANGEROUS_FUNCTIONS} (`dblink`, `dblink_exec`, ...). */
export const DANGEROUS_FUNCTION_PREFIXES: readonly string[] = ['dblink'];

/** True when `name` (a function's own name, already case-folded) is a dangerous built-in. */
export function isDangerousFunction(name: string): boolean {
  return DANGEROUS_FUNCTIONS.has(name) || DANGEROUS_FUNCTION_PREFIXES.some((p) => name.startsWith(p));
}
