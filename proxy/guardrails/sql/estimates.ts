/**
 * The planner's estimate of the rows a write touches, for rules with `max_rows` (the default
 * pack's `blast-radius`). The guardrails stay pure and synchronous: `check` returns, with its
 * verdict, the estimates it still needs (`Verdict.pendingEstimates`); the relay takes them on the
 * session's own connection (`EXPLAIN` without ANALYZE, so it sees the session's temporary tables
 * and transaction and runs nothing) and hands them to `applyEstimates`, which returns the final
 * verdict. Only writes pay for this: reads never carry a pending estimate.
 */
import type { QualifiedName } from './names.ts';

/** One `EXPLAIN` the relay must run. */
export interface EstimateRequest {
  /** Key of the answer in the map given to `applyEstimates`. */
  readonly id: number;
  /** The statement to prefix with `EXPLAIN (FORMAT JSON)`: never executed. */
  readonly sql: string;
  /** Relations written by the operations waiting for this estimate (as written). */
  readonly writes: readonly QualifiedName[];
}

/** The plan's estimate for one written relation (one ModifyTable node of the plan). */
export interface WriteEstimate {
  /** The relation the plan writes, schema-qualified as the plan names it. */
  readonly relation: QualifiedName;
  /** Estimated rows the node touches (the `Plan Rows` of its input). */
  readonly rows: number;
  /** Rows of the relation (`pg_class.reltuples`, or the plan's scan estimate); undefined if unknown. */
  readonly tableRows?: number;
}

/** An estimate taken, or `undefined` when it could not be (EXPLAIN failed, timed out). */
export type EstimateResult = readonly WriteEstimate[] | undefined;

/** Takes estimates on the session's connection (implemented by the relay in phase B). */
export interface RowEstimator {
  estimate(request: EstimateRequest): Promise<EstimateResult>;
}
