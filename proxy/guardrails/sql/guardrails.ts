/**
 * `compileSqlGuardrails` turns a target's guardrails configuration into a checker: SQL text in,
 * verdict out. Classification results are cached in two bounded LRUs: first by exact text (clients
 * and ORMs send the same text again and again, and the same text classifies the same), then by
 * statement shape (see shape-key.ts), which costs a lexer pass. Rules are applied on every check,
 * so the caches serve every level and group.
 */
import { parseDurationMs } from '../../../lib/duration.ts';
import { analyseSql, type StatementReport } from './classify.ts';
import { sqlGuardrailsConfigSchema } from './config.ts';
import { sortEffects } from './effects.ts';
import { SqlGuardConfigError, SqlUnparseableError } from './errors.ts';
import { LruCache } from './lru-cache.ts';
import {
  DEFAULT_REVIEW_TIMEOUT_MS,
  DEFAULT_SQL_RULE_NAMES,
  DEFAULT_SQL_RULES,
  isInScope,
  matchesRule,
  type RuleAction,
  type RuleSubject,
  type SqlRule,
} from './rules.ts';
import { computeSqlShape } from './shape-key.ts';

/** Statements longer than this (UTF-16 units) are checked but never cached. */
const MAX_CACHED_SQL_LENGTH = 8_192;

/** The session a statement is checked for. */
export interface CheckContext extends RuleSubject {
  /** This session's prepared statements by name (from earlier verdicts' `prepares`). */
  readonly prepared?: ReadonlyMap<string, StatementReport>;
}

/** The decision for one statement. */
export interface StatementVerdict {
  readonly action: RuleAction;
  readonly rule?: string;
  readonly message?: string;
  /** The report the rules saw (for `EXECUTE`, merged with the prepared statement's). */
  readonly report: StatementReport;
}

/** The decision for a whole text: the strictest of its statements' (block > review > allow). */
export interface Verdict {
  readonly action: RuleAction;
  /** The deciding rule (`unparseable` when the parser could not read the text). */
  readonly rule?: string;
  readonly message?: string;
  /** `review`: how long the held statement waits for a decision, in ms (the rule's `timeout`). */
  readonly timeoutMs?: number;
  readonly statements: readonly StatementVerdict[];
}

/** A compiled guardrails configuration. */
export interface SqlGuardrails {
  /** Checks `sql` (one statement, or all statements of a simple Query) for `ctx`. Never throws. */
  check(sql: string, ctx: CheckContext): Verdict;
  /** Verdict-cache counters. */
  cacheStats(): { hits: number; misses: number; size: number; capacity: number };
}

interface CacheEntry {
  readonly statements: readonly StatementReport[];
  /** Literal texts the result depends on; `undefined` when any literals may differ. */
  readonly literals: readonly string[] | undefined;
}

const SEVERITY: Record<RuleAction, number> = { allow: 0, review: 1, block: 2 };

function sameLiterals(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** An EXECUTE's report merged with what it runs; unknown names are an effect of their own. */
function resolveExecute(report: StatementReport, ctx: CheckContext): StatementReport {
  if (report.executes === undefined) return report;
  const prepared = ctx.prepared?.get(report.executes);
  const effects = sortEffects(
    new Set([...report.effects, ...(prepared?.effects ?? ['unknown-prepared' as const])]),
  );
  return {
    ...report,
    effects,
    primaryEffect: effects[0],
    relations: [...new Set([...report.relations, ...(prepared?.relations ?? [])])].sort(),
    functions: [...new Set([...report.functions, ...(prepared?.functions ?? [])])].sort(),
  };
}

/**
 * Validates `config` (the target's `guardrails` fragment) and compiles it.
 * @throws SqlGuardConfigError (`ERR_SQLGUARD_CONFIG_INVALID`) naming the offending key.
 */
export function compileSqlGuardrails(config: unknown, configPath = 'guardrails'): SqlGuardrails {
  const parsed = sqlGuardrailsConfigSchema.safeParse(config ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new SqlGuardConfigError([configPath, ...issue.path].join('.'), issue.message);
  }
  const { unparseable, cacheSize, rules: custom, disable } = parsed.data;
  const disabled = disable.map((d, i) => {
    const entry = typeof d === 'string' ? { rule: d } : d;
    if (!DEFAULT_SQL_RULE_NAMES.includes(entry.rule)) {
      throw new SqlGuardConfigError(
        `${configPath}.disable.${i}`,
        `unknown default rule "${entry.rule}"; known: ${DEFAULT_SQL_RULE_NAMES.join(', ')}`,
      );
    }
    return entry;
  });
  const seen = new Set<string>(DEFAULT_SQL_RULE_NAMES);
  const customRules: SqlRule[] = custom.map((r, i) => {
    if (seen.has(r.name))
      throw new SqlGuardConfigError(`${configPath}.rules.${i}.name`, `duplicate rule "${r.name}"`);
    seen.add(r.name);
    const { timeout, ...rule } = r;
    return {
      ...rule,
      message: r.message ?? `statement matches guardrail rule "${r.name}"`,
      ...(r.action === 'review'
        ? { timeoutMs: timeout ? parseDurationMs(timeout)! : DEFAULT_REVIEW_TIMEOUT_MS }
        : {}),
    };
  });
  const cache = new LruCache<string, CacheEntry>(cacheSize);
  const byText = new LruCache<string, readonly StatementReport[]>(cacheSize);
  const rulesWithoutScope: readonly SqlRule[] | undefined =
    disabled.length === 0 ? [...DEFAULT_SQL_RULES, ...customRules] : undefined;

  const analyse = (sql: string): readonly StatementReport[] => {
    const cacheable = sql.length <= MAX_CACHED_SQL_LENGTH;
    const exact = cacheable ? byText.get(sql) : undefined;
    if (exact) return exact;
    const shape = cacheable ? computeSqlShape(sql) : undefined;
    // Texts the shape lexer does not model are keyed on their exact text (prefix cannot be a token).
    const key = shape ? shape.key : `\u0001${sql}`;
    const literals = shape ? shape.literals : [];
    const hit = cacheable ? cache.get(key) : undefined;
    // Only texts without literals go to the exact-text cache: texts with inline literals rarely
    // repeat (pgbench -S sends a new aid each time) and would only churn it.
    const repeatable = cacheable && literals.length === 0;
    if (hit && (hit.literals === undefined || sameLiterals(hit.literals, literals))) {
      if (repeatable) byText.set(sql, hit.statements);
      return hit.statements;
    }
    const analysis = analyseSql(sql);
    if (repeatable) byText.set(sql, analysis.statements);
    if (cacheable) {
      cache.set(key, {
        statements: analysis.statements,
        literals: analysis.literalSensitive ? literals : undefined,
      });
    }
    return analysis.statements;
  };

  const rulesFor = (ctx: CheckContext): readonly SqlRule[] =>
    rulesWithoutScope ?? [
      ...DEFAULT_SQL_RULES.filter((rule) => !disabled.some((d) => d.rule === rule.name && isInScope(d, ctx))),
      ...customRules,
    ];

  /**
   * Verdicts by analysis and session: the cached analyses are shared arrays and the rules depend on
   * the session's level and groups only, so a session's verdict on a cached analysis is computed
   * once (not for EXECUTE, which depends on the session's prepared statements as they change).
   */
  const verdicts = new WeakMap<readonly StatementReport[], WeakMap<CheckContext, Verdict>>();

  const decide = (reports: readonly StatementReport[], ctx: CheckContext): Verdict => {
    const rules = rulesFor(ctx);
    let verdict: Verdict = { action: 'allow', statements: [] };
    const statements = reports.map((raw) => {
      const report = resolveExecute(raw, ctx);
      let decided: StatementVerdict = { action: 'allow', report };
      let reviewTimeout = DEFAULT_REVIEW_TIMEOUT_MS;
      for (const rule of rules) {
        if (SEVERITY[rule.action] > SEVERITY[decided.action] && matchesRule(rule, report, ctx)) {
          decided = { action: rule.action, rule: rule.name, message: rule.message, report };
          if (rule.timeoutMs !== undefined) reviewTimeout = rule.timeoutMs;
        }
      }
      if (SEVERITY[decided.action] > SEVERITY[verdict.action]) {
        verdict = { action: decided.action, rule: decided.rule, message: decided.message, statements: [] };
        if (decided.action === 'review') verdict = { ...verdict, timeoutMs: reviewTimeout };
      }
      return decided;
    });
    return { ...verdict, statements };
  };

  return {
    check(sql: string, ctx: CheckContext): Verdict {
      if (sql.trim() === '') return { action: 'allow', statements: [] };
      let reports: readonly StatementReport[];
      try {
        reports = analyse(sql);
      } catch (error) {
        if (!(error instanceof SqlUnparseableError)) throw error;
        return unparseable === 'allow'
          ? { action: 'allow', statements: [] }
          : { action: 'block', rule: 'unparseable', message: error.message, statements: [] };
      }
      if (reports.some((report) => report.executes !== undefined)) return decide(reports, ctx);
      let bySession = verdicts.get(reports);
      let verdict = bySession?.get(ctx);
      if (verdict === undefined) {
        verdict = decide(reports, ctx);
        if (!bySession) {
          bySession = new WeakMap();
          verdicts.set(reports, bySession);
        }
        bySession.set(ctx, verdict);
      }
      return verdict;
    },
    cacheStats: () => {
      // A hit in either cache is a hit; the shape cache only sees the exact-text cache's misses.
      const shape = cache.stats();
      return { ...shape, hits: shape.hits + byText.stats().hits };
    },
  };
}
