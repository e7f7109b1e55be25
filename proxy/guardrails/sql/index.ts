/** SQL guardrails: classify statements with PostgreSQL's parser and decide block / review / allow. */
export {
  analyseSql,
  type CopyDescription,
  type CopyOptionValue,
  classify,
  type EstimateSource,
  type Operation,
  type OperationOrigin,
  type SearchPathChange,
  type SqlAnalysis,
  type StatementReport,
  type TransactionControl,
} from './classify.ts';
export {
  type SqlGuardrailsConfig,
  type SqlGuardrailsConfigInput,
  sqlGuardrailsConfigSchema,
} from './config.ts';
export { DANGEROUS_FUNCTIONS, SQL_EFFECTS, type SqlEffect, type StatementKind } from './effects.ts';
export { isAsciiSafeEncoding } from './encodings.ts';
export { SqlGuardConfigError, SqlGuardError, type SqlGuardErrorCode, SqlUnparseableError } from './errors.ts';
export type { EstimateRequest, EstimateResult, RowEstimator, WriteEstimate } from './estimates.ts';
export type { FilterVerdict } from './filters.ts';
export {
  type CheckContext,
  compileSqlGuardrails,
  type SessionImpact,
  type SqlGuardrails,
  type StatementVerdict,
  type Verdict,
} from './guardrails.ts';
export {
  DEFAULT_SEARCH_PATH,
  parseQualifiedName,
  parseSearchPathValue,
  type QualifiedName,
  type RelationCatalog,
  type SearchPath,
} from './names.ts';
export {
  advanceSession,
  changesSessionState,
  type RoutineBody,
  type RoutineResolver,
  type SessionState,
  type TrackedSession,
  type TransactionState,
} from './resolve.ts';
export {
  DEFAULT_BLAST_RADIUS,
  DEFAULT_REVIEW_TIMEOUT_MS,
  DEFAULT_SQL_RULE_NAMES,
  DEFAULT_SQL_RULES,
  type RowLimit,
  type RuleAction,
  type SqlRule,
} from './rules.ts';
export { computeSqlShape, type SqlShape } from './shape-key.ts';
export { SQL_TEXT_FUNCTIONS, type SqlTextUse } from './sql-functions.ts';
