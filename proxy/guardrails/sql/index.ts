/** SQL guardrails: classify statements with PostgreSQL's parser and decide block / review / allow. */
export { analyseSql, classify, type SqlAnalysis, type StatementReport } from './classify.ts';
export {
  type SqlGuardrailsConfig,
  type SqlGuardrailsConfigInput,
  sqlGuardrailsConfigSchema,
} from './config.ts';
export { DANGEROUS_FUNCTIONS, SQL_EFFECTS, type SqlEffect, type StatementKind } from './effects.ts';
export { isAsciiSafeEncoding } from './encodings.ts';
export { SqlGuardConfigError, SqlGuardError, type SqlGuardErrorCode, SqlUnparseableError } from './errors.ts';
export {
  type CheckContext,
  compileSqlGuardrails,
  type SqlGuardrails,
  type StatementVerdict,
  type Verdict,
} from './guardrails.ts';
export {
  DEFAULT_REVIEW_TIMEOUT_MS,
  DEFAULT_SQL_RULE_NAMES,
  DEFAULT_SQL_RULES,
  type RuleAction,
  type SqlRule,
} from './rules.ts';
export { computeSqlShape, type SqlShape } from './shape-key.ts';
