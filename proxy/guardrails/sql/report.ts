/**
 * What the classifier reports about a statement: its operations (every statement it executes,
 * wherever nested), their effects, relations, functions and filters, and what it changes in the
 * session. Types only.
 */
import type { SqlEffect, StatementKind } from './effects.ts';
import type { FilterVerdict } from './filters.ts';
import type { QualifiedName } from './names.ts';

/** Where an operation sits in the statement. */
export type OperationOrigin =
  | 'statement'
  | 'cte'
  | 'merge-action'
  | 'explain-analyze'
  | 'copy'
  | 'prepare'
  | 'routine'
  | 'routine-definition'
  | 'sql-function'
  | 'function-body';

/** How the planner's estimate of an operation's rows can be taken (see estimates.ts). */
export type EstimateSource =
  /** `EXPLAIN` the top-level statement (or the query an `EXPLAIN ANALYZE` / `COPY` wraps). */
  | 'statement'
  /** `EXPLAIN` this text (a statement of a `DO` body, SQL given to a function). */
  | { readonly sql: string }
  /** Not now: the operation runs later (a `PREPARE` or routine body being defined). */
  | 'none';

/** One statement the query would execute. */
export interface Operation {
  readonly kind: StatementKind;
  readonly origin: OperationOrigin;
  /** Every effect of this operation, most consequential first. */
  readonly effects: readonly SqlEffect[];
  /** Relations it reads (as written; `*` names: every relation of a schema / the database). */
  readonly reads: readonly QualifiedName[];
  /** Relations it writes or changes: DML targets, truncated, altered or dropped relations. */
  readonly writes: readonly QualifiedName[];
  /** Functions it calls, as written. */
  readonly functions: readonly QualifiedName[];
  /** DELETE, UPDATE and MERGE actions: what the filter does to the written relation's rows. */
  readonly filter?: FilterVerdict;
  /** Effects that do not apply when every written relation is one of the session's temporary ones. */
  readonly tempExempt?: readonly SqlEffect[];
  readonly estimate: EstimateSource;
}

/**
 * What a transaction-control statement does to the session's transaction block: `commit` (also
 * END), `rollback` (also ABORT), the `-and-chain` forms that open the next block at once,
 * `rollback-to` a savepoint, and `prepare` (PREPARE TRANSACTION, which leaves the block).
 */
export type TransactionControl =
  | 'begin'
  | 'commit'
  | 'commit-and-chain'
  | 'rollback'
  | 'rollback-and-chain'
  | 'savepoint'
  | 'release'
  | 'rollback-to'
  | 'prepare';

/** A change of the session's `search_path` made by a statement. */
export interface SearchPathChange {
  /** The new path; `default` after RESET / SET ... TO DEFAULT; `unknown` when not a constant. */
  readonly value: readonly string[] | 'default' | 'unknown';
  /** `SET LOCAL` / `set_config(..., true)`: until the end of the transaction. */
  readonly local: boolean;
}

/** What one statement is and does. */
export interface StatementReport {
  /** The top-level statement's kind. */
  readonly kind: StatementKind;
  /** Every effect found anywhere inside, most consequential first. */
  readonly effects: readonly SqlEffect[];
  /** The most consequential effect (the statement's classification), if any. */
  readonly primaryEffect: SqlEffect | undefined;
  /** Relations named anywhere inside, as PostgreSQL folds them (`public.customers`, `t`). */
  readonly relations: readonly string[];
  /** Functions called anywhere inside, folded and qualified as written (`pg_catalog.pg_sleep`). */
  readonly functions: readonly string[];
  /** Every operation the statement executes; the first is the statement itself. */
  readonly operations: readonly Operation[];
  /** For `PREPARE name AS ...`: the name and the report of the prepared statement. */
  readonly prepares?: { readonly name: string; readonly statement: StatementReport };
  /** For `EXECUTE name`: the prepared statement's name, resolved by the caller's session map. */
  readonly executes?: string;
  /** For `COPY`: what it copies, where, and its options as written. */
  readonly copy?: CopyDescription;
  /** When the statement changes `search_path` (the last change it makes). */
  readonly searchPath?: SearchPathChange;
  /**
   * Temporary relations it creates (tables, views, sequences; as written). Tables created
   * `ON COMMIT DROP` are left out: they are gone when the transaction ends.
   */
  readonly tempCreated?: readonly QualifiedName[];
  /** Relations it drops (tables, views, sequences, indexes, as written). */
  readonly dropped?: readonly QualifiedName[];
  /** `ALTER TABLE/INDEX/VIEW/SEQUENCE ... RENAME TO`: the relation renamed and its new name. */
  readonly renamed?: { readonly from: QualifiedName; readonly to: string };
  /** `DEALLOCATE name` (`name` absent for DEALLOCATE ALL). */
  readonly deallocates?: { readonly name?: string };
  /** Transaction control (BEGIN, COMMIT, ROLLBACK, savepoints). */
  readonly transaction?: TransactionControl;
  /** Indexes it creates, with their table: temporary when the table is. */
  readonly indexesCreated?: readonly { readonly name: string; readonly on: QualifiedName }[];
  /** True for `DISCARD ALL` / `DISCARD TEMP`: the session's temporary objects are gone. */
  readonly discardsTemp?: boolean;
}

/**
 * A `COPY` statement's target and options, read from the parse tree. Option values are
 * `true`/`false` for booleans, a string for words and strings, `'*'` or a column list for
 * `FORCE_QUOTE`-like options, `undefined` for a bare option (`HEADER`) and `null` when unreadable.
 */
export interface CopyDescription {
  /** The table form's relation; undefined for `COPY (query)`. */
  readonly relation?: { readonly schema?: string; readonly table: string };
  /** The column list as written (folded), if any. */
  readonly columns?: readonly string[];
  /** `COPY ... FROM` (true) or `COPY ... TO` (false). */
  readonly from: boolean;
  /** True for `STDIN`/`STDOUT` (not a server file or program). */
  readonly client: boolean;
  readonly options: readonly (readonly [string, CopyOptionValue])[];
}

/** The value of one `COPY` option (see {@link CopyDescription}). */
export type CopyOptionValue = string | boolean | readonly string[] | undefined | null;

/** Result of {@link analyseSql}. */
export interface SqlAnalysis {
  readonly statements: readonly StatementReport[];
  /** True when a literal's value influenced the result (the cache must compare literals). */
  readonly literalSensitive: boolean;
}
