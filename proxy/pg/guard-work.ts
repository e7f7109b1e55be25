/**
 * The work behind a guardrail decision that needs the server: waiting until the statements it
 * may depend on ran (the session guard's barrier), reading what the guard asks for (the session's
 * search_path, its temporary relations, the catalog after DDL), reading the bodies of the
 * functions a statement calls and checking again, and taking the planner's estimates for rules
 * with `max_rows`. Statements go out through the relay as jobs (backchannel.ts): sandboxed at a
 * sync boundary, as Parse/Bind/Execute with a Flush inside a client's unfinished batch. The
 * decision for a text or a Parse is never taken before its reads are done.
 */
import type { EstimateRequest, EstimateResult, SqlGuardrails, Verdict } from '../guardrails/sql/index.ts';
import {
  EXPLAIN_PREFIX,
  type InternalStep,
  type JobOutcome,
  lastSets,
  readWriteEstimates,
  sandboxSteps,
  tableSizeSql,
} from './backchannel.ts';
import type { BindMessage } from './protocol/frontend-parser.ts';
import type { TransactionStatus } from './protocol/message-codes.ts';
import type { SessionGuard } from './session-guard.ts';

/** Rounds of reading function bodies and checking again before a call chain is given up on. */
const MAX_BODY_ROUNDS = 10;

/** What the work needs of the relay. */
export interface GuardWorkHost {
  readonly guard: SessionGuard;
  readonly guardrails: SqlGuardrails;
  /** The session's reserved savepoint name. */
  readonly savepoint: string;
  /** True while the client's extended-protocol batch has messages sent and no Sync yet. */
  inBatch(): boolean;
  /** The id of the current (or next) batch. */
  batch(): number;
  /** True when nothing sent awaits its replies. */
  quiet(): boolean;
  /** The transaction status of the last ReadyForQuery. */
  status(): TransactionStatus;
  /** Sends a job and resolves with its outcome. */
  run(steps: readonly InternalStep[], flush: boolean): Promise<JobOutcome>;
  /** Sends a Flush (replies of an unfinished batch are then sent). */
  flush(): void;
  /** Resolves once `condition()` holds (tested after each message from the server). */
  when(condition: () => boolean): Promise<void>;
}

/** A check made now: its verdict and the function names whose bodies it lacked. */
export interface QuickCheck {
  readonly verdict: Verdict;
  readonly misses: readonly string[];
}

/** The decision work of one session (see the module comment). */
export class GuardWork {
  /**
   * Whether the client's unfinished batch broke while Warden's statements ran inside it: `ours`
   * when one of them failed (the server now skips to the Sync), `theirs` when an earlier client
   * message had failed (the server skipped Warden's statements too). Reset by {@link begin}.
   */
  broken: 'ours' | 'theirs' | undefined;
  /** The error that broke the batch, when ours. */
  brokenReason: string | undefined;

  constructor(private readonly host: GuardWorkHost) {}

  /** Starts the work on one held message. */
  begin(): void {
    this.broken = undefined;
    this.brokenReason = undefined;
  }

  /**
   * Checks `sql` now when nothing must be waited for or read first; undefined when the work must
   * run (hold the message and call {@link settle}).
   */
  quick(sql: string, inBatch: boolean): QuickCheck | undefined {
    const { guard, guardrails } = this.host;
    if (guard.mustWait(this.host.batch(), inBatch) || guard.reads()) return undefined;
    const verdict = guardrails.check(sql, guard.ctx);
    return { verdict, misses: guard.takeMisses() };
  }

  /**
   * The verdict on `sql` once every unit it may depend on ran, what the guard asked for was
   * read, and the bodies of the functions it calls are known. `first` is a quick check already made.
   */
  async settle(sql: string, inBatch: boolean, first?: QuickCheck): Promise<Verdict> {
    const { guard, guardrails } = this.host;
    let check = first;
    for (let round = 0; round < MAX_BODY_ROUNDS; round++) {
      if (!check) {
        await this.ready(inBatch);
        check = { verdict: guardrails.check(sql, guard.ctx), misses: guard.takeMisses() };
      }
      if (check.misses.length === 0) return check.verdict;
      const [rows] = await this.read([guard.bodiesSql(check.misses)], inBatch);
      if (!guard.applyBodies(check.misses, rows)) return unreadableBodies(check.misses);
      check = undefined;
    }
    return unreadableBodies([]);
  }

  /** Settles a text's pending estimates (the relay holds it meanwhile). */
  async estimate(verdict: Verdict, inBatch: boolean): Promise<Verdict> {
    const requests = verdict.pendingEstimates ?? [];
    const results = await this.estimates(requests, inBatch, undefined);
    return this.host.guardrails.applyEstimates(verdict, results);
  }

  /** Settles a prepared statement's pending estimates with a Bind's parameters. */
  async estimateBind(
    verdict: Verdict,
    types: readonly number[],
    bind: BindMessage,
    inBatch: boolean,
  ): Promise<Verdict> {
    const requests = verdict.pendingEstimates ?? [];
    const results = await this.estimates(requests, inBatch, { types, bind });
    return this.host.guardrails.applyEstimates(verdict, results);
  }

  // ------------------------------------------------------------------ steps

  /** Waits for the barrier, then reads what the guard asks for (repeating if that changes). */
  private async ready(inBatch: boolean): Promise<void> {
    const { guard } = this.host;
    for (let round = 0; round < 3; round++) {
      if (guard.mustWait(this.host.batch(), inBatch)) {
        if (inBatch) this.host.flush();
        await this.host.when(() => !guard.mustWait(this.host.batch(), inBatch));
      }
      const reads = guard.reads();
      if (!reads) return;
      const statements = guard.readStatements(reads);
      const rows = await this.read(
        statements.map((s) => s.sql),
        inBatch,
      );
      guard.applyReads(reads, new Map(statements.map((s, i) => [s.kind, rows[i]])));
      // A read that failed leaves its doubt: checked with the conservative state this time.
      if (guard.mustWait(this.host.batch(), inBatch)) continue;
      return;
    }
  }

  /** Runs read-only statements; the rows of each, or undefined for one that failed. */
  private async read(
    statements: readonly string[],
    inBatch: boolean,
  ): Promise<((string | null)[][] | undefined)[]> {
    const outcome = await this.runSteps(
      statements.map((sql) => (inBatch ? { statement: sql } : { query: sql })),
      inBatch,
    );
    if (!outcome) return statements.map(() => undefined);
    return outcome.results.map((result) => lastSets(result, 1)?.[0]);
  }

  /**
   * Runs `statements` as a job: inside the client's batch as they are, with a Flush; else at a
   * sync boundary (waiting for quiet), sandboxed. Undefined when nothing can run (a failed block).
   */
  private async runSteps(
    statements: readonly InternalStep[],
    inBatch: boolean,
  ): Promise<{ results: JobOutcome['steps'] } | undefined> {
    if (inBatch) {
      if (this.broken) return undefined;
      const outcome = await this.host.run(statements, true);
      const failed = outcome.steps.find((step) => step.error);
      if (failed) {
        this.broken = 'ours';
        this.brokenReason = `${failed.error!.code} ${failed.error!.message}`.slice(0, 300);
      } else if (outcome.steps.some((step) => step.skipped)) {
        this.broken = 'theirs';
      }
      return { results: outcome.steps };
    }
    await this.host.when(() => this.host.quiet());
    const sandbox = sandboxSteps(statements, this.host.status(), this.host.savepoint);
    if (!sandbox) return undefined;
    const outcome = await this.host.run(sandbox.steps, false);
    return { results: sandbox.at.map((i) => outcome.steps[i]!) };
  }

  /** Takes each request's EXPLAIN and the size of the relations it writes. */
  private async estimates(
    requests: readonly EstimateRequest[],
    inBatch: boolean,
    bound: { types: readonly number[]; bind: BindMessage } | undefined,
  ): Promise<Map<number, EstimateResult>> {
    const results = new Map<number, EstimateResult>();
    if (requests.length === 0) return results;
    const steps: InternalStep[] = [];
    const extended = inBatch || bound !== undefined;
    for (const request of requests) {
      const explain = `${EXPLAIN_PREFIX}${request.sql}`;
      const sizes = tableSizeSql(request.writes);
      if (!extended) {
        steps.push({ query: `${explain}; ${sizes}` });
        continue;
      }
      steps.push(
        bound
          ? {
              statement: explain,
              types: bound.types,
              formats: bound.bind.parameterFormats,
              values: bound.bind.parameters,
            }
          : { statement: explain },
        { statement: sizes },
      );
    }
    const outcome = await this.runSteps(steps, inBatch);
    requests.forEach((request, i) => {
      if (!outcome) {
        results.set(request.id, undefined);
        return;
      }
      let plan: (string | null)[][] | undefined;
      let sizes: (string | null)[][] | undefined;
      if (!extended) {
        const sets = lastSets(outcome.results[i], 2);
        plan = sets?.[0];
        sizes = sets?.[1];
      } else {
        plan = lastSets(outcome.results[2 * i], 1)?.[0];
        sizes = lastSets(outcome.results[2 * i + 1], 1)?.[0];
      }
      results.set(request.id, readWriteEstimates(plan?.[0]?.[0], sizes));
    });
    return results;
  }
}

/** A call whose body could not be read (the read failed, or calls nest without end): refused. */
function unreadableBodies(names: readonly string[]): Verdict {
  return {
    action: 'block',
    rule: 'unreadable-function',
    message: `Warden could not read the definition of ${names.length > 0 ? names.slice(0, 3).join(', ') : 'a called function'}`,
    statements: [],
  };
}
