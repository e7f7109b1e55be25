/**
 * The default guardrail rule pack and rule matching. A rule matches a statement when every
 * criterion it gives matches (kinds: the statement's kind is listed; effects, relations,
 * functions: at least one listed item is found) and the session's level and groups fit.
 */
import type { StatementReport } from './classify.ts';
import type { SqlEffect, StatementKind } from './effects.ts';

/** What a rule does to a matching statement. */
export type RuleAction = 'block' | 'review' | 'allow';

/** Criteria of a rule; absent criteria match everything. */
export interface RuleMatch {
  readonly kinds?: readonly StatementKind[];
  readonly effects?: readonly SqlEffect[];
  /** Relation names; an unqualified name matches it in any schema. */
  readonly relations?: readonly string[];
  /** Function names; an unqualified name matches it in any schema. */
  readonly functions?: readonly string[];
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
}

/** How long a statement held for review waits for a decision unless its rule says (5 minutes). */
export const DEFAULT_REVIEW_TIMEOUT_MS = 5 * 60_000;

const block = (name: string, effects: SqlEffect[], message: string): SqlRule => ({
  name,
  match: { effects },
  action: 'block',
  message,
});

/** Warden's default rules, applied unless a target's configuration disables them. */
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
  block('truncate', ['truncate'], 'TRUNCATE is not allowed'),
  block('delete-without-where', ['delete-unfiltered'], 'DELETE without a WHERE clause on a column'),
  block('update-without-where', ['update-unfiltered'], 'UPDATE without a WHERE clause on a column'),
];

/** Names of {@link DEFAULT_SQL_RULES}. */
export const DEFAULT_SQL_RULE_NAMES: readonly string[] = DEFAULT_SQL_RULES.map((r) => r.name);

/** The session a statement is checked for. */
export interface RuleSubject {
  readonly level: string;
  readonly groups: readonly string[];
}

/** True when `wanted` names `actual` (`public.t`), or is unqualified and names its last part. */
function matchesName(wanted: string, actual: string): boolean {
  if (wanted === actual) return true;
  return !wanted.includes('.') && actual.slice(actual.lastIndexOf('.') + 1) === wanted;
}

function matchesAny(wanted: readonly string[] | undefined, actual: readonly string[]): boolean {
  return wanted === undefined || wanted.some((w) => actual.some((a) => matchesName(w, a)));
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

/** True when `rule` applies to `report` for `subject`. */
export function matchesRule(rule: SqlRule, report: StatementReport, subject: RuleSubject): boolean {
  const m = rule.match;
  return (
    isInScope(rule, subject) &&
    (m.kinds === undefined || m.kinds.includes(report.kind)) &&
    (m.effects === undefined || m.effects.some((e) => report.effects.includes(e))) &&
    matchesAny(m.relations, report.relations) &&
    matchesAny(m.functions, report.functions)
  );
}
