/**
 * `compileSqlGuardrails` turns a target's guardrails configuration into a checker: SQL text and
 * the session in, verdict out. Analyses are session-independent and cached in two bounded LRUs:
 * first by exact text (clients and ORMs send the same text again and again), then by statement
 * shape (see shape-key.ts), which costs a lexer pass. The session (prepared statements,
 * search_path, temporary objects, catalog, function bodies; see resolve.ts) and the rules are
 * applied on every check, so the caches serve every level, group and session.
 *
 * Rules with `max_rows` need the planner's estimate: `check` then returns the estimates it still
 * needs in `pendingEstimates`, and `applyEstimates` (or `checkWithEstimator`) settles the verdict.
 */
import { deparseSync } from '@libpg-query/parser';
import { parseDurationMs } from '../../../lib/duration.ts';
import { unwrap } from './ast.ts';
import { analyseRoutineBody, analyseSql, type Operation, type StatementReport } from './classify.ts';
import { sqlGuardrailsConfigSchema } from './config.ts';
import { SqlGuardConfigError, SqlUnparseableError } from './errors.ts';
import type { EstimateRequest, EstimateResult, RowEstimator, WriteEstimate } from './estimates.ts';
import { LruCache } from './lru-cache.ts';
import { type NameScope, nameMatches, type QualifiedName } from './names.ts';
import { parseStatements } from './parser.ts';
import {
  changesSessionState,
  type ResolvedStatement,
  resolveStatements,
  type SessionState,
} from './resolve.ts';
import {
  type CompiledRule,
  compileRule,
  DEFAULT_REVIEW_TIMEOUT_MS,
  DEFAULT_SQL_RULE_NAMES,
  DEFAULT_SQL_RULES,
  exceedsLimit,
  isInScope,
  matchesOperation,
  type RowLimit,
  type RuleAction,
  type RuleSubject,
  type SqlRule,
} from './rules.ts';
import { computeSqlShape } from './shape-key.ts';

/** Statements longer than this (UTF-16 units) are checked but never cached. */
const MAX_CACHED_SQL_LENGTH = 8_192;
/** Routine bodies analysed and kept (by language and text). */
const ROUTINE_CACHE_SIZE = 1_000;

/**
 * The session a statement is checked for: level and groups (which rules apply) and the session
 * state the relay tracks (all optional: absent means PostgreSQL's defaults and no knowledge).
 * A verdict is kept per context object and state; pass a new `catalog` / `routines` object when
 * what they answer changes.
 */
export interface CheckContext extends RuleSubject, SessionState {}

/**
 * What running a text does besides its rows, for the relay's session tracking (see
 * {@link Verdict.impact}).
 */
export interface SessionImpact {
  /**
   * It changes what later statements resolve: search_path, temporary relations, prepared
   * statements, the transaction block (apply `advanceSession` once it ran).
   */
  readonly session: boolean;
  /** It changes the schema (DDL, also in a called function's body): reload the catalog after it. */
  readonly schema: boolean;
  /** A called function's body changes the session in ways the reports cannot follow. */
  readonly opaque: boolean;
}

/** Effects of statements that change the relations or routines the catalog describes. */
const SCHEMA_EFFECTS: ReadonlySet<string> = new Set([
  'ddl',
  'destructive-ddl',
  'drop-table',
  'drop-schema',
  'drop',
  'persistent-object',
]);

/** The decision for one statement. */
export interface StatementVerdict {
  readonly action: RuleAction;
  readonly rule?: string;
  readonly message?: string;
  /** The report the rules saw. */
  readonly report: StatementReport;
  /** The operation the deciding rule matched (a nested statement, a MERGE action, ...). */
  readonly operation?: Operation;
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
  /**
   * Estimates `max_rows` rules still need: take them (EXPLAIN on the session's connection) and
   * call `applyEstimates`. Absent when the verdict is final.
   */
  readonly pendingEstimates?: readonly EstimateRequest[];
  /** What the text changes besides rows (absent: nothing the session tracking follows). */
  readonly impact?: SessionImpact;
}

/** A compiled guardrails configuration. */
export interface SqlGuardrails {
  /** Checks `sql` (one statement, or all statements of a simple Query) for `ctx`. Never throws. */
  check(sql: string, ctx: CheckContext): Verdict;
  /**
   * Settles a verdict's `pendingEstimates` with the estimates taken (by request id; a missing or
   * `undefined` result is an estimate that could not be taken). Returns the final verdict.
   */
  applyEstimates(verdict: Verdict, results: ReadonlyMap<number, EstimateResult>): Verdict;
  /** `check`, then the pending estimates taken with `estimator` (in parallel) and applied. */
  checkWithEstimator(sql: string, ctx: CheckContext, estimator: RowEstimator): Promise<Verdict>;
  /** Verdict-cache counters. */
  cacheStats(): { hits: number; misses: number; size: number; capacity: number };
}

interface CacheEntry {
  readonly statements: readonly StatementReport[];
  /** Literal texts the result depends on; `undefined` when any literals may differ. */
  readonly literals: readonly string[] | undefined;
}

/** An operation waiting for an estimate, and the rule that waits with it. */
interface PendingMatch {
  readonly statement: number;
  readonly rule: CompiledRule;
  readonly operation: Operation;
  readonly request: number;
  readonly scope: NameScope;
}

interface PendingState {
  readonly matches: readonly PendingMatch[];
  readonly decided: readonly StatementVerdict[];
  readonly timeouts: readonly number[];
  readonly impact: SessionImpact | undefined;
}

const SEVERITY: Record<RuleAction, number> = { allow: 0, review: 1, block: 2 };

function sameLiterals(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

type MaxRowsInput =
  | number
  | { rows?: number | undefined; fraction?: number | undefined; min_table_rows?: number | undefined };

function toRowLimit(input: MaxRowsInput): RowLimit {
  if (typeof input === 'number') return { rows: input, minTableRows: 0 };
  return {
    ...(input.rows !== undefined ? { rows: input.rows } : {}),
    ...(input.fraction !== undefined ? { fraction: input.fraction } : {}),
    minTableRows: input.min_table_rows ?? 0,
  };
}

/** A stable small id per object, for memo keys. */
const objectIds = new WeakMap<object, number>();
let nextObjectId = 1;
function idOf(value: object | undefined): number {
  if (value === undefined) return 0;
  let id = objectIds.get(value);
  if (id === undefined) {
    id = nextObjectId++;
    objectIds.set(value, id);
  }
  return id;
}

/** The parts of a context a verdict depends on besides the context object itself. */
function stateKey(ctx: CheckContext): string {
  const path = (p: CheckContext['searchPath']) =>
    p === undefined ? '' : p === 'unknown' ? '?' : p.join(',');
  const temp = ctx.tempRelations?.size ? [...ctx.tempRelations].join(',') : '';
  const t = ctx.transaction;
  const transaction = t
    ? `${path(t.startPath)}\u0002${path(t.sessionPath)}\u0002${[...t.startTemp].join(',')}`
    : '';
  if (
    !ctx.searchPath &&
    !ctx.defaultSearchPath &&
    !temp &&
    !ctx.catalog &&
    !ctx.routines &&
    !t &&
    ctx.user === undefined
  )
    return '';
  return `${path(ctx.searchPath)}\u0001${path(ctx.defaultSearchPath)}\u0001${ctx.user ?? ''}\u0001${temp}\u0001${idOf(ctx.catalog)}\u0001${idOf(ctx.routines)}\u0001${transaction}`;
}

/**
 * What the EXECUTEs of `reports` run, for memo keys: the identity of each prepared report taken
 * from the session (those prepared earlier in the same text are part of the text).
 */
function preparedKey(reports: readonly StatementReport[], ctx: CheckContext): string {
  let key = '';
  const local = new Set<string>();
  for (const report of reports) {
    if (report.executes !== undefined && !local.has(report.executes)) {
      key += `\u0002${idOf(ctx.prepared?.get(report.executes))}`;
    }
    if (report.prepares) local.add(report.prepares.name);
  }
  return key;
}

/**
 * The texts to EXPLAIN for each statement of `sql`: the statement itself, or the query that
 * `EXPLAIN ANALYZE` / `COPY (...)` wraps (re-parsed here: cached reports hold no text). `EXECUTE`
 * of a statement prepared earlier in the same text has nothing to EXPLAIN EXECUTE yet (the server
 * has not run the PREPARE when the estimate is taken): its body is EXPLAINed with the EXECUTE's
 * arguments in place of the parameters.
 */
function estimableTexts(sql: string): string[] {
  const prepared = new Map<string, { query: unknown; types: unknown[] }>();
  return parseStatements(sql).map((raw) => {
    const u = unwrap(raw.stmt);
    if (u?.[0] === 'PrepareStmt') {
      const types = Array.isArray(u[1].argtypes) ? u[1].argtypes : [];
      prepared.set(String(u[1].name ?? ''), { query: u[1].query, types });
    }
    if (u?.[0] === 'ExecuteStmt') {
      const local = prepared.get(String(u[1].name ?? ''));
      if (!local) return raw.text;
      const args = Array.isArray(u[1].params) ? u[1].params : [];
      return deparseOr(substituteParams(local.query, args, local.types), raw.text);
    }
    const inner = u && (u[0] === 'ExplainStmt' || u[0] === 'CopyStmt') ? u[1].query : undefined;
    if (inner === undefined) return raw.text;
    return deparseOr(inner, raw.text);
  });
}

function deparseOr(statement: unknown, fallback: string): string {
  try {
    return deparseSync({ version: 170004, stmts: [{ stmt: statement }] } as never);
  } catch {
    return fallback;
  }
}

/** A copy of `node` with `$n` replaced by `(args[n-1])::types[n-1]`. */
function substituteParams(node: unknown, args: readonly unknown[], types: readonly unknown[]): unknown {
  if (Array.isArray(node)) return node.map((item) => substituteParams(item, args, types));
  if (node === null || typeof node !== 'object') return node;
  const record = node as Record<string, unknown>;
  const param = record.ParamRef as { number?: number } | undefined;
  if (param && Object.keys(record).length === 1 && typeof param.number === 'number') {
    const arg = args[param.number - 1];
    const type = unwrap(types[param.number - 1]);
    if (arg === undefined) return node;
    return type?.[0] === 'TypeName' ? { TypeCast: { arg, typeName: type[1] } } : arg;
  }
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(record)) out[key] = substituteParams(value, args, types);
  return out;
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
  const { unparseable, cacheSize, rules: custom, disable, adjust } = parsed.data;
  const knownDefault = (name: string, path: string) => {
    if (!DEFAULT_SQL_RULE_NAMES.includes(name)) {
      throw new SqlGuardConfigError(
        path,
        `unknown default rule "${name}"; known: ${DEFAULT_SQL_RULE_NAMES.join(', ')}`,
      );
    }
  };
  const disabled = disable.map((d, i) => {
    const entry = typeof d === 'string' ? { rule: d } : d;
    knownDefault(entry.rule, `${configPath}.disable.${i}`);
    return entry;
  });
  const compile = (rule: SqlRule, path: string): CompiledRule => {
    const compiled = compileRule(rule);
    if ('bad' in compiled) {
      throw new SqlGuardConfigError(
        `${path}.match.${compiled.bad}.${compiled.index}`,
        'not a SQL name (schema.name)',
      );
    }
    return compiled;
  };
  const adjustments = adjust.map((a, i) => {
    const path = `${configPath}.adjust.${i}`;
    knownDefault(a.rule, `${path}.rule`);
    const base = DEFAULT_SQL_RULES.find((r) => r.name === a.rule)!;
    if ((a.max_rows !== undefined || a.unestimated !== undefined) && !base.maxRows) {
      throw new SqlGuardConfigError(
        path,
        `max_rows and unestimated apply to rules with max_rows (${a.rule} has none)`,
      );
    }
    const action = a.action ?? base.action;
    if (a.timeout !== undefined && action !== 'review') {
      throw new SqlGuardConfigError(`${path}.timeout`, 'timeout applies to rules with action review');
    }
    const rule: SqlRule = {
      ...base,
      action,
      ...(a.message ? { message: a.message } : {}),
      ...(a.max_rows !== undefined ? { maxRows: toRowLimit(a.max_rows) } : {}),
      ...(a.unestimated ? { unestimated: a.unestimated } : {}),
      ...(action === 'review'
        ? { timeoutMs: a.timeout ? parseDurationMs(a.timeout)! : DEFAULT_REVIEW_TIMEOUT_MS }
        : {}),
    };
    return { scope: a, rule: compile(rule, path) };
  });
  const seen = new Set<string>(DEFAULT_SQL_RULE_NAMES);
  const customRules: CompiledRule[] = custom.map((r, i) => {
    if (seen.has(r.name))
      throw new SqlGuardConfigError(`${configPath}.rules.${i}.name`, `duplicate rule "${r.name}"`);
    seen.add(r.name);
    const { timeout, max_rows, unestimated, ...rule } = r;
    return compile(
      {
        ...rule,
        message: r.message ?? `statement matches guardrail rule "${r.name}"`,
        ...(r.action === 'review'
          ? { timeoutMs: timeout ? parseDurationMs(timeout)! : DEFAULT_REVIEW_TIMEOUT_MS }
          : {}),
        ...(max_rows !== undefined
          ? { maxRows: toRowLimit(max_rows), unestimated: unestimated ?? 'match' }
          : {}),
      },
      `${configPath}.rules.${i}`,
    );
  });
  const defaults = DEFAULT_SQL_RULES.map((r, i) => compile(r, `default.${i}`));
  const cache = new LruCache<string, CacheEntry>(cacheSize);
  const byText = new LruCache<string, readonly StatementReport[]>(cacheSize);
  const routineCache = new LruCache<string, StatementReport | null>(ROUTINE_CACHE_SIZE);
  const rulesBySubject = new Map<string, readonly CompiledRule[]>();
  // Texts to EXPLAIN, by statement text: writes repeat as much as reads do.
  const estimateTexts = new LruCache<string, string[]>(cacheSize);
  const textsOf = (sql: string): string[] => {
    const hit = sql.length <= MAX_CACHED_SQL_LENGTH ? estimateTexts.get(sql) : undefined;
    if (hit) return hit;
    const texts = estimableTexts(sql);
    if (sql.length <= MAX_CACHED_SQL_LENGTH) estimateTexts.set(sql, texts);
    return texts;
  };

  const analyse = (sql: string): readonly StatementReport[] => {
    const cacheable = sql.length <= MAX_CACHED_SQL_LENGTH;
    const exact = cacheable ? byText.get(sql) : undefined;
    if (exact) return exact;
    const shape = cacheable ? computeSqlShape(sql) : undefined;
    // Texts the shape lexer does not model are keyed on their exact text (prefix cannot be a token).
    const key = shape ? shape.key : `\u0001${sql}`;
    const literals = shape ? shape.literals : [];
    let hit = cacheable ? cache.get(key) : undefined;
    // A shape whose analysis reads literals (DO bodies, SET values) is kept per literal texts:
    // statements of one shape that alternate (`DO $$...$$` blocks) must not evict each other.
    if (hit?.literals !== undefined) hit = cache.get(`${key}\u0003${literals.join('\u0004')}`);
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
      const entry = {
        statements: analysis.statements,
        literals: analysis.literalSensitive ? literals : undefined,
      };
      if (entry.literals === undefined) cache.set(key, entry);
      else {
        cache.set(key, { statements: [], literals: [] });
        cache.set(`${key}\u0003${literals.join('\u0004')}`, entry);
      }
    }
    return analysis.statements;
  };

  const analyseBody = (language: string, body: string): StatementReport | undefined => {
    const key = `${language}\u0000${body}`;
    const hit = routineCache.get(key);
    if (hit !== undefined) return hit ?? undefined;
    let report: StatementReport | null;
    try {
      report = analyseRoutineBody(language, body);
    } catch (error) {
      if (!(error instanceof SqlUnparseableError)) throw error;
      report = null;
    }
    routineCache.set(key, report);
    return report ?? undefined;
  };

  const rulesFor = (ctx: CheckContext): readonly CompiledRule[] => {
    const key = `${ctx.level}\u0000${ctx.groups.join('\u0000')}`;
    let rules = rulesBySubject.get(key);
    if (!rules) {
      rules = [
        ...defaults.flatMap((rule) => {
          if (disabled.some((d) => d.rule === rule.name && isInScope(d, ctx))) return [];
          const adjusted = adjustments.find((a) => a.rule.name === rule.name && isInScope(a.scope, ctx));
          return [adjusted ? adjusted.rule : rule];
        }),
        ...customRules,
      ];
      // Bounded: levels and groups are few, but a hostile directory could send many group sets.
      if (rulesBySubject.size >= 1_000) rulesBySubject.clear();
      rulesBySubject.set(key, rules);
    }
    return rules;
  };

  const pending = new WeakMap<Verdict, PendingState>();

  const assemble = (
    statements: readonly StatementVerdict[],
    timeouts: readonly number[],
    requests: readonly EstimateRequest[] | undefined,
    impact: SessionImpact | undefined,
  ): Verdict => {
    let strictest = -1;
    statements.forEach((s, i) => {
      if (SEVERITY[s.action] > (strictest < 0 ? 0 : SEVERITY[statements[strictest]!.action])) strictest = i;
    });
    const top = strictest < 0 ? undefined : statements[strictest]!;
    return {
      action: top?.action ?? 'allow',
      ...(top?.rule ? { rule: top.rule, message: top.message } : {}),
      ...(top?.action === 'review' ? { timeoutMs: timeouts[strictest]! } : {}),
      statements,
      ...(requests && requests.length > 0 ? { pendingEstimates: requests } : {}),
      ...(impact ? { impact } : {}),
    };
  };

  const decide = (sql: string, resolved: readonly ResolvedStatement[], ctx: CheckContext): Verdict => {
    const rules = rulesFor(ctx);
    const waiting: Omit<PendingMatch, 'request'>[] = [];
    const timeouts: number[] = [];
    const statements = resolved.map((statement, index) => {
      let decided: StatementVerdict = { action: 'allow', report: statement.report };
      let timeout = DEFAULT_REVIEW_TIMEOUT_MS;
      for (const rule of rules) {
        if (SEVERITY[rule.action] <= SEVERITY[decided.action] || !isInScope(rule, ctx)) continue;
        if (rule.maxRows) {
          for (const operation of statement.operations) {
            // A body defined for later runs later: its estimate is taken when it runs.
            if (operation.estimate === 'none') continue;
            if (matchesOperation(rule, operation, statement.scope)) {
              waiting.push({ statement: index, rule, operation, scope: statement.scope });
            }
          }
          continue;
        }
        const operation = statement.operations.find((op) => matchesOperation(rule, op, statement.scope));
        if (operation) {
          decided = {
            action: rule.action,
            rule: rule.name,
            message: rule.message,
            report: statement.report,
            operation,
          };
          if (rule.timeoutMs !== undefined) timeout = rule.timeoutMs;
        }
      }
      timeouts.push(timeout);
      return decided;
    });
    const open = waiting.filter((w) => SEVERITY[w.rule.action] > SEVERITY[statements[w.statement]!.action]);
    const impact = impactOf(resolved);
    if (open.length === 0) return assemble(statements, timeouts, undefined, impact);
    let texts: string[] | undefined;
    const requests: EstimateRequest[] = [];
    const bySql = new Map<string, EstimateRequest & { writes: QualifiedName[] }>();
    const matches: PendingMatch[] = open.map((w) => {
      const source = w.operation.estimate;
      let text: string;
      if (source === 'statement') {
        texts ??= textsOf(sql);
        text = texts[w.statement] ?? sql;
      } else {
        text = (source as { sql: string }).sql;
      }
      let request = bySql.get(text);
      if (!request) {
        request = { id: requests.length, sql: text, writes: [] };
        bySql.set(text, request);
        requests.push(request);
      }
      request.writes.push(...w.operation.writes);
      return { ...w, request: request.id };
    });
    const verdict = assemble(statements, timeouts, requests, impact);
    pending.set(verdict, { matches, decided: statements, timeouts, impact });
    return verdict;
  };

  const applyEstimates = (verdict: Verdict, results: ReadonlyMap<number, EstimateResult>): Verdict => {
    const state = pending.get(verdict);
    if (!state) return verdict;
    const statements = [...state.decided];
    const timeouts = [...state.timeouts];
    for (const match of state.matches) {
      const current = statements[match.statement]!;
      if (SEVERITY[match.rule.action] <= SEVERITY[current.action]) continue;
      const candidates = estimatesFor(match, results.get(match.request));
      const unestimated = candidates === undefined;
      const estimate = candidates?.find((e) => exceedsLimit(match.rule.maxRows!, e.rows, e.tableRows));
      if (unestimated ? match.rule.unestimated === 'skip' : estimate === undefined) continue;
      const detail =
        estimate === undefined
          ? 'the rows it touches could not be estimated'
          : `estimated ${Math.round(estimate.rows)} rows${estimate.tableRows === undefined ? '' : ` of ${Math.round(estimate.tableRows)}`}`;
      statements[match.statement] = {
        action: match.rule.action,
        rule: match.rule.name,
        message: `${match.rule.message} (${detail})`,
        report: current.report,
        operation: match.operation,
      };
      if (match.rule.timeoutMs !== undefined) timeouts[match.statement] = match.rule.timeoutMs;
    }
    return assemble(statements, timeouts, undefined, state.impact);
  };

  /**
   * Verdicts by analysis and session: the cached analyses are shared arrays, so a session's
   * verdict on one is computed once per session state (catalog and routine resolver included, by
   * identity) and prepared statement executed. A verdict waiting for estimates is kept too:
   * `applyEstimates` settles it anew with each call's estimates.
   */
  const verdicts = new WeakMap<readonly StatementReport[], WeakMap<CheckContext, Map<string, Verdict>>>();

  const check = (sql: string, ctx: CheckContext): Verdict => {
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
    const key = stateKey(ctx) + preparedKey(reports, ctx);
    const known = verdicts.get(reports)?.get(ctx)?.get(key);
    if (known) return known;
    let verdict: Verdict;
    try {
      verdict = decide(sql, resolveStatements(reports, ctx, analyseBody), ctx);
    } catch (error) {
      if (!(error instanceof SqlUnparseableError)) throw error;
      return { action: 'block', rule: 'unparseable', message: error.message, statements: [] };
    }
    let sessions = verdicts.get(reports);
    if (!sessions) {
      sessions = new WeakMap();
      verdicts.set(reports, sessions);
    }
    let states = sessions.get(ctx);
    if (!states) {
      states = new Map();
      sessions.set(ctx, states);
    }
    if (states.size >= 16) states.clear();
    states.set(key, verdict);
    return verdict;
  };

  return {
    check,
    applyEstimates,
    async checkWithEstimator(sql, ctx, estimator) {
      const verdict = check(sql, ctx);
      if (!verdict.pendingEstimates) return verdict;
      const results = new Map<number, EstimateResult>();
      await Promise.all(
        verdict.pendingEstimates.map(async (request) => {
          try {
            results.set(request.id, await estimator.estimate(request));
          } catch {
            results.set(request.id, undefined);
          }
        }),
      );
      return applyEstimates(verdict, results);
    },
    cacheStats: () => {
      // A hit in either cache is a hit; the shape cache only sees the exact-text cache's misses.
      const shape = cache.stats();
      return { ...shape, hits: shape.hits + byText.stats().hits };
    },
  };
}

/** What the resolved statements of a text change besides rows (undefined: nothing). */
function impactOf(resolved: readonly ResolvedStatement[]): SessionImpact | undefined {
  let session = false;
  let schema = false;
  let opaque = false;
  for (const statement of resolved) {
    if (changesSessionState(statement.report)) session = true;
    if (statement.opaqueSessionChange) opaque = true;
    if (statement.effects.some((e) => SCHEMA_EFFECTS.has(e))) schema = true;
  }
  return session || schema || opaque ? { session, schema, opaque } : undefined;
}

/** The largest estimate among those for the relation `match`'s operation writes. */
function estimatesFor(match: PendingMatch, result: EstimateResult): WriteEstimate[] | undefined {
  if (!result) return undefined;
  const written = match.operation.writes;
  let best: WriteEstimate | undefined;
  for (const estimate of result) {
    if (!written.some((w) => nameMatches(estimate.relation, w, 'relation', match.scope))) continue;
    if (!best || estimate.rows > best.rows) best = estimate;
  }
  if (best) return [best];
  // No write node names the relation written: it is a view (a masking view first on the
  // search_path, or any auto-updatable view), and the plan names the table under it. Every write
  // node of the plan is then a candidate, and the rule holds when any of them exceeds its limit,
  // so that reading through a view never loosens it.
  return result.length > 0 ? [...result] : undefined;
}
