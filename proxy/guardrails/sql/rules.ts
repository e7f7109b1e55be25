/**
 * The default guardrail rule pack and rule matching. A rule matches a statement when one of the
 * operations it executes (the statement itself, a writable CTE, a MERGE action, a statement of a
 * `DO` body, ...) fits every criterion the rule gives, and the session's level and groups fit:
 * kinds (the operation's kind is listed), effects, relations, functions (at least one listed item
 * is found, names resolved as PostgreSQL resolves them, see names.ts). A rule that lists kinds and
 * relations matches, for a write (INSERT, UPDATE, DELETE, MERGE, TRUNCATE, COPY FROM, DDL), the
 * relation written, not those read: `DELETE FROM sessions USING customers` deletes from sessions.
 */
import type { Operation } from './classify.ts';
import type { SqlEffect, StatementKind } from './effects.ts';
import { type NameScope, nameMatches, parseQualifiedName, type QualifiedName } from './names.ts';

/** What a rule does to a matching statement. */
export type RuleAction = 'block' | 'review' | 'allow';

/** Criteria of a rule; absent criteria match everything. */
export interface RuleMatch {
  readonly kinds?: readonly StatementKind[];
  readonly effects?: readonly SqlEffect[];
  /** Relation names as SQL identifiers (`payroll.salaries`, `"Orders"`); unqualified: any schema. */
  readonly relations?: readonly string[];
  /** Function names as SQL identifiers; unqualified: any schema. */
  readonly functions?: readonly string[];
}

/**
 * The `max_rows` option: the rule matches a write only when the planner estimates it touches more
 * than `rows` rows, or more than `fraction` of a table holding more than `minTableRows` rows.
 */
export interface RowLimit {
  readonly rows?: number;
  readonly fraction?: number;
  /** Tables this small are never judged by `fraction` (default 0). */
  readonly minTableRows: number;
}

/** One guardrail rule. */
export interface SqlRule {
  readonly name: string;
  readonly match: RuleMatch;
  readonly action: RuleAction;
  readonly message: string;
  /** Only for sessions at one of these access levels (all levels when absent). */
  readonly levels?: readonly string[];
  /** Only for sessions whose user is in one of these groups (everyone when absent). */
  readonly groups?: readonly string[];
  /** `review` rules: how long a held statement waits for a decision, in ms. */
  readonly timeoutMs?: number;
  /** Matches only writes estimated to touch more rows than this (see estimates.ts). */
  readonly maxRows?: RowLimit;
  /** `maxRows` rules: what a write whose estimate cannot be taken does (default `match`: fail closed). */
  readonly unestimated?: 'match' | 'skip';
}

/** How long a statement held for review waits for a decision unless its rule says (5 minutes). */
export const DEFAULT_REVIEW_TIMEOUT_MS = 5 * 60_000;

/** The default pack's blast-radius limit: more than 100,000 rows, or half of a table over 1,000 rows. */
export const DEFAULT_BLAST_RADIUS: RowLimit = { rows: 100_000, fraction: 0.5, minTableRows: 1_000 };

const block = (name: string, effects: SqlEffect[], message: string): SqlRule => ({
  name,
  match: { effects },
  action: 'block',
  message,
});

/** Warden's default rules, applied unless a target's configuration disables or adjusts them. */
export const DEFAULT_SQL_RULES: readonly SqlRule[] = [
  block('drop-database', ['drop-database'], 'DROP DATABASE is not allowed through Warden'),
  block('alter-system', ['alter-system'], 'ALTER SYSTEM changes server configuration'),
  block('copy-program', ['copy-program'], 'COPY ... PROGRAM runs a shell command on the database server'),
  block(
    'copy-server-file',
    ['copy-server-file'],
    'COPY to or from a server file reads or writes the server disk',
  ),
  block('load-library', ['load-library'], 'LOAD loads a shared library into the server'),
  block('opaque-code', ['opaque-code'], 'routines in languages Warden cannot inspect are not allowed'),
  block('role-management', ['role-change'], 'creating, altering or dropping roles is not allowed'),
  block(
    'persistent-object',
    ['persistent-object'],
    'objects that act after the grant ends (SECURITY DEFINER functions, triggers, rules, event triggers, ' +
      'publications, subscriptions, foreign servers, user mappings, default privileges) are not allowed',
  ),
  block('privilege-change', ['privilege-change'], 'GRANT, REVOKE and ownership changes are not allowed'),
  block(
    'session-identity',
    ['session-identity'],
    'SET ROLE / SET SESSION AUTHORIZATION change who you act as',
  ),
  block('unsafe-setting', ['unsafe-setting'], 'this setting would change how statements are read'),
  block(
    'dangerous-function',
    ['dangerous-function'],
    'this function reaches files, other sessions or servers',
  ),
  block('dynamic-sql', ['dynamic-sql'], 'dynamic SQL built at run time cannot be checked'),
  block('unknown-prepared', ['unknown-prepared'], 'EXECUTE of a statement Warden did not see prepared'),
  block('drop-schema', ['drop-schema'], 'DROP SCHEMA is not allowed'),
  block('drop-table', ['drop-table'], 'DROP TABLE is not allowed'),
  block(
    'destructive-ddl',
    ['destructive-ddl'],
    'dropping columns, indexes or constraints and changing a column type with USING are not allowed',
  ),
  block('truncate', ['truncate'], 'TRUNCATE is not allowed'),
  block('delete-without-where', ['delete-unfiltered'], 'DELETE whose filter keeps every row'),
  block('update-without-where', ['update-unfiltered'], 'UPDATE whose filter keeps every row'),
  {
    name: 'blast-radius',
    match: { kinds: ['update', 'delete', 'merge'] },
    action: 'review',
    message: 'this write is estimated to touch more than 100,000 rows or more than half of its table',
    maxRows: DEFAULT_BLAST_RADIUS,
    unestimated: 'match',
  },
];

/** Names of {@link DEFAULT_SQL_RULES}. */
export const DEFAULT_SQL_RULE_NAMES: readonly string[] = DEFAULT_SQL_RULES.map((r) => r.name);

/** The session a statement is checked for. */
export interface RuleSubject {
  readonly level: string;
  readonly groups: readonly string[];
}

/** Kinds whose `relations` criterion means the relation written. */
const WRITE_KINDS: ReadonlySet<StatementKind> = new Set([
  'insert',
  'update',
  'delete',
  'merge',
  'truncate',
  'copy',
  'ddl',
]);

/** A rule with its names read as SQL identifiers. */
export interface CompiledRule extends SqlRule {
  readonly relationNames?: readonly QualifiedName[];
  readonly functionNames?: readonly QualifiedName[];
}

/**
 * Reads a rule's relation and function names as SQL identifiers.
 * @returns the compiled rule, or the index and text of a name that is not an identifier.
 */
export function compileRule(rule: SqlRule): CompiledRule | { bad: 'relations' | 'functions'; index: number } {
  const read = (list: readonly string[] | undefined, what: 'relations' | 'functions') => {
    if (list === undefined) return undefined;
    const out: QualifiedName[] = [];
    for (const [index, text] of list.entries()) {
      const name = parseQualifiedName(text);
      if (!name) return { bad: what, index } as const;
      out.push(name);
    }
    return out;
  };
  const relations = read(rule.match.relations, 'relations');
  if (relations && 'bad' in relations) return relations;
  const functions = read(rule.match.functions, 'functions');
  if (functions && 'bad' in functions) return functions;
  return {
    ...rule,
    ...(relations ? { relationNames: relations } : {}),
    ...(functions ? { functionNames: functions } : {}),
  };
}

/** True when `scope` (levels and groups) includes `subject`. */
export function isInScope(
  scope: { readonly levels?: readonly string[]; readonly groups?: readonly string[] },
  subject: RuleSubject,
): boolean {
  if (scope.levels && !scope.levels.includes(subject.level)) return false;
  if (scope.groups && !scope.groups.some((g) => subject.groups.includes(g))) return false;
  return true;
}

/** True when `rule`'s criteria (not its scope, not `maxRows`) fit operation `op`. */
export function matchesOperation(rule: CompiledRule, op: Operation, scope: NameScope): boolean {
  const m = rule.match;
  if (m.kinds !== undefined && !m.kinds.includes(op.kind)) return false;
  if (m.effects !== undefined && !m.effects.some((e) => op.effects.includes(e))) return false;
  if (rule.relationNames) {
    const relations =
      m.kinds !== undefined && WRITE_KINDS.has(op.kind) && op.writes.length > 0
        ? op.writes
        : [...op.reads, ...op.writes];
    if (!rule.relationNames.some((w) => relations.some((a) => nameMatches(w, a, 'relation', scope))))
      return false;
  }
  if (rule.functionNames) {
    if (!rule.functionNames.some((w) => op.functions.some((a) => nameMatches(w, a, 'function', scope))))
      return false;
  }
  return true;
}

/** True when the estimate (`rows` of a table of `tableRows`) exceeds `limit`. */
export function exceedsLimit(limit: RowLimit, rows: number, tableRows: number | undefined): boolean {
  if (limit.rows !== undefined && rows > limit.rows) return true;
  if (limit.fraction === undefined || tableRows === undefined) return false;
  return tableRows > limit.minTableRows && rows > limit.fraction * tableRows;
}
