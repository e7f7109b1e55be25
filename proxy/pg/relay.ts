/**
 * The protocol core of a proxied session once both sides are logged in: client messages in,
 * bytes for the server out (statements checked by the guardrails); server messages in, bytes
 * for the client out (values masked). No sockets or timers: the session feeds chunks and sends
 * what comes out. Three parts of it live beside it: result planning (which columns of a result
 * to mask, `result-plan.ts`), the statement log (the timeline and counters, `statement-log.ts`)
 * and the review hold (statements waiting for an approver, `review-hold.ts`).
 *
 * Blocked statements are not answered by the proxy itself, which would reorder replies under
 * pipelining: the message is replaced by a statement the server rejects with a syntax error
 * naming a per-session token, and that error is replaced by the guardrail's ErrorResponse
 * (SQLSTATE 42501). The server thus fails the implicit transaction, skips to Sync and reports
 * the transaction status exactly as it would for a permission error.
 *
 * Replies are matched to requests with a queue of what each client message makes the server
 * send (Parse → ParseComplete, Describe → RowDescription/NoData, Execute → rows and
 * CommandComplete, Sync/Query → ReadyForQuery; an error skips to the next Sync). It tells which
 * columns of each DataRow to mask, even for portals executed without a Describe (the proxy then
 * sends its own Describe and keeps the answer).
 *
 * A statement a rule sends to review (a Query or a Parse) is held: later client messages are
 * kept in order (bounded) until the reviewer's outcome, then the held message is forwarded, or
 * substituted like a blocked statement, and the kept input is processed.
 *
 * Statements whose verdict needs the server (an estimate for a `max_rows` rule, the session's
 * search_path or temporary relations read back, the bodies of called functions) are held by the
 * guard hold (`guard-hold.ts`) while the guard work (`guard-work.ts`) runs Warden's own statements
 * on this connection as jobs in the same reply queue (`backchannel.ts`); the session's guardrail
 * state is the session guard's (`session-guard.ts`).
 *
 * Why this file is longer than 600 lines (about 1,400): what is left is the two directions of one
 * state machine and the decisions that feed it. They share the reply queue (client messages,
 * Warden's jobs, substitutions), the batch and transaction state the guard work waits on, the
 * prepared statements' and portals' state and the COPY plans; the per-message dispatch is the hot
 * path (every DataRow run goes through it). Everything with a state of its own was split out (the
 * files named above, result planning, the statement log, the review hold, the row rewriter);
 * cutting the rest would put one queue's bookkeeping behind host interfaces as wide as the class.
 */
import { randomBytes } from 'node:crypto';
import type { StatementReviewer } from '../../broker/ports/proxy.ts';
import {
  isAsciiSafeEncoding,
  type SessionImpact,
  type SqlGuardrails,
  type StatementReport,
  type Verdict,
} from '../guardrails/sql/index.ts';
import type { Masker } from '../masking/index.ts';
import { InternalJob, type InternalStep, type JobOutcome } from './backchannel.ts';
import { remember } from './bounded-names.ts';
import type { Catalog } from './catalog.ts';
import { type ByteSink, ChunkOutput } from './chunk-output.ts';
import { CopyOutMasker, type CopyOutPlan } from './copy-masking.ts';
import { PgProxyError } from './errors.ts';
import { GuardHold } from './guard-hold.ts';
import { GuardWork, type GuardWorkHost } from './guard-work.ts';
import {
  BackendParser,
  decodeCommandComplete,
  decodeCopyResponse,
  decodeErrorResponse,
  decodeNoticeResponse,
  decodeNotificationResponse,
  decodeParameterStatus,
  decodeReadyForQuery,
  decodeRowDescription,
  type FieldDescription,
} from './protocol/backend-parser.ts';
import {
  type BindMessage,
  type FrontendMessage,
  FrontendParser,
  type ParseMessage,
  type QueryMessage,
} from './protocol/frontend-parser.ts';
import { BackendCode, TransactionStatus } from './protocol/message-codes.ts';
import {
  type NoticeInput,
  writeBind,
  writeCopyData,
  writeDescribe,
  writeErrorResponse,
  writeFlush,
  writeNoticeResponse,
  writeParameterStatus,
  writeParse,
  writeQuery,
} from './protocol/serializer.ts';
import { FALLBACK_PLAN, type ResultPlan, ResultPlanner } from './result-plan.ts';
import { type HeldMessage, type HoldHost, type HoldOutcome, ReviewHold, refusalOf } from './review-hold.ts';
import { type RowHooks, RowRewriter } from './row-rewriter.ts';
import { SessionGuard, type Unit } from './session-guard.ts';
import { MAX_RECORDED_ROWS, type RelayStats, StatementLog, type StatementRecord } from './statement-log.ts';

export type { RelayStats } from './statement-log.ts';

/**
 * ErrorResponse/NoticeResponse fields the server fills itself and that never repeat data:
 * severity (S, V), SQLSTATE (C), positions (P, p), source file, line and routine (F, L, R). Every
 * other field, known or not, goes through the detectors: `RAISE ... USING COLUMN = ..., TABLE =
 * ..., SCHEMA = ..., DATATYPE = ..., CONSTRAINT = ...` lets SQL put any value in s, t, c, d, n.
 */
const SERVER_FIELDS = new Set(['S', 'V', 'C', 'P', 'p', 'F', 'L', 'R']);

type Pending =
  | { t: 'parse' }
  | { t: 'bind'; portal: string; statement: string; formats: number[] }
  | { t: 'describe'; kind: 'statement' | 'portal'; name: string; internal: boolean }
  | { t: 'execute'; portal: string; stmt: StatementRecord | undefined; unit: Unit | undefined }
  | { t: 'close'; kind: 'statement' | 'portal'; name: string }
  | { t: 'sync'; batch: number }
  | {
      t: 'query';
      stmt: StatementRecord | undefined;
      batch: number;
      unit?: Unit | undefined;
      /** CommandComplete tags, kept for a unit (a COMMIT that answers ROLLBACK). */
      tags?: string[];
      failed?: boolean;
    }
  /** Warden's own statements (backchannel.ts): their replies never reach the client. */
  | { t: 'internal'; job: InternalJob };

interface PreparedStatement {
  /** The statement's text as recorded (masked, cut). */
  recorded: string;
  /** Plans by result formats (`Bind`'s), computed once. */
  plans: Map<string, ResultPlan | null>;
  /** From Describe: undefined until known, null for statements that return no rows. */
  fields: FieldDescription[] | null | undefined;
  /** A COPY TO's masking plan (null: no column rules apply). */
  copy?: CopyOutPlan | null;
  /** Parameter types as the Parse gave them (for Warden's EXPLAIN of a Bind). */
  types?: readonly number[];
  /** What its execution changes in the session, and its reports (see session-guard.ts). */
  impact?: SessionImpact;
  reports?: readonly StatementReport[];
  /** Its verdict while estimates are pending: each Bind is estimated with its parameters. */
  pending?: Verdict;
}

interface Portal {
  statement: string;
  /** undefined until known; null when no column needs masking. */
  plan: ResultPlan | null | undefined;
  /** The client asked to describe it: the answer arrives before any of its rows. */
  described?: boolean;
  /** Its parameters as recorded (masked). */
  params: string[];
  /** Its statement's COPY TO plan, as it was when bound. */
  copy?: CopyOutPlan | null;
}

/** The session facts and hooks a relay runs with. */
export interface RelayOptions {
  guardrails: SqlGuardrails;
  masker: Masker;
  level: string;
  groups: readonly string[];
  /** Every level of the target: a blocked statement's hint says which of them would allow it. */
  levels?: readonly string[];
  recordRows: boolean;
  catalog: Catalog | undefined;
  /** The server's socket. */
  toUpstream: ByteSink;
  /** The client's socket. */
  toClient: ByteSink;
  /** Receives finished timeline entries; `at` is when the entry finished (the relay's clock). */
  record: (kind: string, data: Record<string, unknown>, at: number) => void;
  /** Called once when a result names a table the catalog does not know. */
  onUnknownTable?: () => void;
  clock?: () => number;
  /** Token of the replacement statements; random by default. */
  token?: string;
  /** The session's `client_encoding` at login (ParameterStatus); UTF8 by default. */
  clientEncoding?: string;
  /** Decides on statements a rule sends to review; without it they are refused (fail closed). */
  reviewer?: StatementReviewer;
  /** Grant and session ids the reviewer is told. */
  review?: { grantId: string; sessionId: string };
  /** Called with true when a statement is held (stop reading the client), false when released. */
  onHold?: (holding: boolean) => void;
  /** Called when processing the kept input after a release fails: end the session. */
  onFail?: (error: unknown) => void;
  /**
   * The session's guardrail state (search_path, temporary relations, catalog, function bodies,
   * estimates on this connection). Without one the relay asks the server nothing: writes that a
   * `max_rows` rule judges are taken as unestimated.
   */
  guard?: SessionGuard;
  /**
   * Told of each statement the proxy refuses, when it refuses it (before the server's reply,
   * so a client that leaves at once is told of too): its recorded text, the rule, its review.
   */
  onBlocked?: (blocked: BlockedStatement) => void;
}

/** A statement the proxy refused (see {@link RelayOptions.onBlocked}). */
export interface BlockedStatement {
  /** As recorded: masked and cut. */
  statement: string;
  rule: string;
  /** The outcome of its review, when a rule held it. */
  review?: Record<string, unknown>;
}

/** The relay of one session (see the module comment). */
export class PgRelay {
  /** Session counters (the statement log's). */
  readonly stats: RelayStats;
  private readonly frontend = new FrontendParser({ phase: 'normal' });
  private readonly backend = new BackendParser();
  private readonly upstreamOut: ChunkOutput;
  private readonly clientOut: ChunkOutput;
  private readonly options: RelayOptions;
  private readonly clock: () => number;
  private readonly guard: SessionGuard;
  private readonly work: GuardWork;
  private readonly guardHold: GuardHold;
  /** Id of the current extended-protocol batch (the next one once a Sync or Query ended it). */
  private batchId = 0;
  /** Client messages of the current batch were sent and no Sync yet. */
  private batchOpen = false;
  /** An error arrived for a client message of the current batch. */
  private batchFailed = false;
  /** Transaction status of the last ReadyForQuery of a client batch. */
  private lastStatus: TransactionStatus = TransactionStatus.Idle;
  private readonly waiters: { condition: () => boolean; resolve: () => void }[] = [];
  /** Binds whose estimate was taken with their Parse's (see onParse). */
  private readonly estimatedBinds = new WeakSet<BindMessage>();
  /** The checked verdict of a Parse held for review (kept for its later Binds). */
  private heldChecked: Verdict | undefined;
  /** Nesting of output brackets outside a feed (the holds' replays, Warden's own jobs). */
  private outputDepth = 0;
  /** Which outputs a feed has open, and which a bracket opened. */
  private upstreamOpen = false;
  private clientOpen = false;
  private bracketed: { upstream: boolean; client: boolean } = { upstream: false, client: false };
  /** Prefix of Warden's own statement, portal and savepoint names in this session. */
  private readonly namePrefix: string;
  private holdingNotified = false;
  private readonly statements = new Map<string, PreparedStatement>();
  private readonly portals = new Map<string, Portal>();
  private readonly pending: Pending[] = [];
  private pendingHead = 0;
  private readonly substitutions = new Map<number, { segment: number; error: NoticeInput }>();
  private readonly token: string;
  private readonly tokenPrefix: string;
  private substitutionCount = 0;
  private syncsSent = 0;
  private syncsReceived = 0;
  private queryPlan: ResultPlan | null = null;
  private readonly planner: ResultPlanner;
  private readonly detectorsOn: boolean;
  private readonly log: StatementLog;
  private readonly review: ReviewHold;
  /** True once the client sent Terminate. */
  terminated = false;

  constructor(options: RelayOptions) {
    this.options = options;
    this.clock = options.clock ?? Date.now;
    this.guard =
      options.guard ??
      new SessionGuard({
        level: options.level,
        groups: options.groups,
        user: '',
        searchPath: undefined,
        snapshot: undefined,
        clock: this.clock,
        live: false,
      });
    this.upstreamOut = new ChunkOutput(options.toUpstream);
    this.clientOut = new ChunkOutput(options.toClient);
    this.token = options.token ?? randomBytes(8).toString('hex');
    this.tokenPrefix = `warden_blocked_${this.token}_`;
    this.planner = new ResultPlanner({
      masker: options.masker,
      catalog: options.catalog,
      recordRows: options.recordRows,
      onUnknownTable: options.onUnknownTable,
    });
    this.detectorsOn = this.planner.detectorsOn;
    this.log = new StatementLog({
      masker: options.masker,
      clock: this.clock,
      record: options.record,
      inFlight: () => this.inFlight,
    });
    this.stats = this.log.stats;
    this.review = new ReviewHold({
      reviewer: options.reviewer,
      ids: options.review ?? { grantId: '', sessionId: '' },
      clock: this.clock,
      host: this.holdHost,
      onHold: () => this.updateHold(),
      onFail: options.onFail,
    });
    this.guardHold = new GuardHold({
      receive: (message) => this.onClientMessage(message),
      beginOutput: () => this.beginOutput(),
      endOutput: () => this.endOutput(),
      onHold: () => this.updateHold(),
      onFail: (error) => this.options.onFail?.(error),
    });
    this.namePrefix = `warden_${this.token}`;
    const host: GuardWorkHost = {
      guard: this.guard,
      guardrails: options.guardrails,
      savepoint: this.namePrefix,
      inBatch: () => this.batchOpen,
      batch: () => this.batchId,
      quiet: () => this.inFlight === 0,
      status: () => this.lastStatus,
      run: (steps, flush) => this.runJob(steps, flush),
      flush: () => this.withOutput(() => writeFlush(this.upstreamOut.writer())),
      when: (condition) => this.when(condition),
    };
    this.work = new GuardWork(host);
    if (options.clientEncoding) this.clientEncoding = options.clientEncoding;
    this.rows = new RowRewriter(options.masker);
  }

  /** Statements sent to the server whose replies have not all arrived. */
  get inFlight(): number {
    return this.pending.length - this.pendingHead;
  }

  /** Feeds bytes from the client. Throws a ProtocolError or PgProxyError: end the session. */
  feedClient(chunk: Buffer): void {
    this.upstreamOut.begin(chunk);
    this.upstreamOpen = true;
    try {
      this.frontend.feed(chunk, (message) => this.onClientMessage(message));
    } finally {
      this.upstreamOpen = false;
      this.upstreamOut.end();
    }
  }

  /** Feeds bytes from the server. Throws a ProtocolError or PgProxyError: end the session. */
  feedUpstream(chunk: Buffer): void {
    this.clientOut.begin(chunk);
    this.clientOpen = true;
    try {
      this.backend.feed(chunk, this.onServerFrame, this.onServerRows);
    } finally {
      this.clientOpen = false;
      this.clientOut.end();
    }
    if (this.waiters.length > 0) this.wakeWaiters();
  }

  // ------------------------------------------------------------------ client → server

  private onClientMessage(message: FrontendMessage): void {
    if (this.review.holding) {
      this.review.keep(message);
      return;
    }
    if (this.guardHold.holding) {
      this.guardHold.keep(message);
      return;
    }
    const out = this.upstreamOut;
    switch (message.type) {
      case 'query':
        this.onQuery(message);
        return;
      case 'parse':
        this.onParse(message);
        return;
      case 'bind':
        this.onBind(message);
        return;
      case 'describe': {
        this.pushExtended({ t: 'describe', kind: message.kind, name: message.name, internal: false });
        const portal = message.kind === 'portal' ? this.portals.get(message.name) : undefined;
        if (portal) portal.described = true;
        out.pass(message.raw);
        return;
      }
      case 'execute': {
        const portal = this.portals.get(message.portal);
        if (portal?.plan === undefined && !portal?.described) {
          // Masking needs the result's columns: ask for them and keep the answer to ourselves.
          this.pushExtended({ t: 'describe', kind: 'portal', name: message.portal, internal: true });
          writeDescribe(out.writer(), 'portal', message.portal);
        }
        const statement = portal ? this.statements.get(portal.statement) : undefined;
        const stmt = this.log.start(statement?.recorded ?? '', 'extended', undefined, true);
        if (stmt && portal && portal.params.length > 0) stmt.params = portal.params;
        const unit =
          statement?.impact && statement.reports
            ? this.guard.track(statement.reports, statement.impact, this.batchId, 'execute')
            : undefined;
        const entry: Pending = { t: 'execute', portal: message.portal, stmt, unit };
        this.pushExtended(entry);
        if (portal?.copy !== undefined) this.copyPlans.set(entry, [portal.copy]);
        out.pass(message.raw);
        return;
      }
      case 'close':
        this.pushExtended({ t: 'close', kind: message.kind, name: message.name });
        out.pass(message.raw);
        return;
      case 'sync':
        this.pushSync({ t: 'sync', batch: this.batchId });
        out.pass(message.raw);
        return;
      case 'functionCall': {
        // The fast-path interface calls functions by OID (lo_import, ...) out of the guardrails' sight.
        const verdict: Verdict = {
          action: 'block',
          rule: 'function-call',
          message: 'fast-path function calls are not allowed through Warden',
          statements: [],
        };
        const call = `<function call oid ${message.functionOid}>`;
        const stmt = this.log.start(call, 'function', verdict);
        this.reportBlocked(stmt, call, verdict.rule);
        this.pushSync({ t: 'query', stmt, batch: this.batchId });
        writeQuery(out.writer(), this.substitute(verdict));
        return;
      }
      case 'terminate':
        this.terminated = true;
        out.pass(message.raw);
        return;
      case 'flush':
      case 'copyData':
      case 'copyDone':
      case 'copyFail':
        out.pass(message.raw);
        return;
      default:
        throw new PgProxyError('ERR_PGPROXY_PROTOCOL', `unexpected ${message.type} message after startup`);
    }
  }

  // ------------------------------------------------------------------ deciding

  /**
   * A simple Query: checked now when nothing must be waited for or read first and no estimate is
   * needed; else held while the guard work runs (see guard-work.ts).
   */
  private onQuery(message: QueryMessage): void {
    const inBatch = this.batchOpen;
    const quick = this.work.quick(message.sql, inBatch);
    if (quick && quick.misses.length === 0 && (!quick.verdict.pendingEstimates || !this.guard.live)) {
      this.actQuery(message, this.unestimated(quick.verdict));
      return;
    }
    const started = this.clock();
    this.guardHold.start(
      async () => {
        this.work.begin();
        let verdict = await this.work.settle(message.sql, inBatch, quick);
        if (verdict.pendingEstimates) verdict = await this.work.estimate(verdict, inBatch);
        return { verdict, broken: this.work.broken };
      },
      ({ verdict, broken }) => {
        if (broken) this.answerBroken(message, broken);
        else this.actQuery(message, verdict, this.clock() - started);
      },
    );
  }

  /**
   * A Parse: checked like a Query. A write whose estimate a rule needs is held, when it starts a
   * batch, until its Bind arrives: the estimate is taken with the Bind's parameters, sandboxed,
   * before anything of the batch reaches the server. Later Binds are estimated each (onBind).
   */
  private onParse(message: ParseMessage): void {
    const inBatch = this.batchOpen;
    const quick = this.work.quick(message.sql, inBatch);
    const live = this.guard.live;
    if (quick && quick.misses.length === 0 && (!quick.verdict.pendingEstimates || inBatch || !live)) {
      this.actParse(message, quick.verdict, quick.verdict);
      return;
    }
    const started = this.clock();
    this.guardHold.start(
      async () => {
        this.work.begin();
        const checked = await this.work.settle(message.sql, inBatch, quick);
        if (!checked.pendingEstimates || inBatch)
          return { checked, verdict: checked, broken: this.work.broken };
        const bind = (await this.guardHold.waitForKept((m) => bindOf(m, message.name))) as
          | BindMessage
          | undefined;
        if (!bind) return { checked, verdict: checked, broken: undefined };
        const verdict = await this.work.estimateBind(checked, message.parameterTypes, bind, false);
        this.estimatedBinds.add(bind);
        return { checked, verdict, broken: undefined };
      },
      ({ checked, verdict, broken }) => {
        if (broken) this.answerBroken(message, broken);
        else this.actParse(message, verdict, checked, this.clock() - started);
      },
    );
  }

  /** A Bind of a statement whose writes a rule judges by estimate: estimated with its parameters. */
  private onBind(message: BindMessage): void {
    const statement = this.statements.get(message.statement);
    const pending = statement?.pending;
    if (!pending || this.estimatedBinds.has(message)) {
      this.actBind(message, undefined);
      return;
    }
    if (!this.guard.live) {
      this.actBind(message, this.unestimated(pending));
      return;
    }
    const inBatch = this.batchOpen;
    const started = this.clock();
    this.guardHold.start(
      async () => {
        this.work.begin();
        const verdict = await this.work.estimateBind(pending, statement.types ?? [], message, inBatch);
        return { verdict, broken: this.work.broken };
      },
      ({ verdict, broken }) => {
        if (broken) this.answerBroken(message, broken);
        else this.actBind(message, verdict, this.clock() - started);
      },
    );
  }

  /** Without a server to ask (unit tests), pending estimates are settled as not taken. */
  private unestimated(verdict: Verdict): Verdict {
    return verdict.pendingEstimates ? this.options.guardrails.applyEstimates(verdict, new Map()) : verdict;
  }

  /**
   * The held message's batch broke while Warden's own statements ran inside it (no Sync yet):
   * `ours` when one of them failed (the client's message gets the error it caused), `theirs` when
   * an earlier client message had failed (the server skips this one too, and answers nothing).
   */
  private answerBroken(message: QueryMessage | ParseMessage | BindMessage, broken: 'ours' | 'theirs'): void {
    this.batchFailed = true;
    if (message.type === 'query') {
      // The client's Query ends the broken batch as its Sync would: it gets the error, then RFQ.
      const stmt = this.log.start(message.sql, 'simple', undefined);
      this.pushSync({ t: 'query', stmt, batch: this.batchId });
      writeQuery(this.upstreamOut.writer(), this.substituteError(this.brokenError(broken)));
      return;
    }
    if (broken === 'theirs') return;
    writeErrorResponse(this.clientOut.writer(), this.brokenError(broken));
  }

  private brokenError(broken: 'ours' | 'theirs'): NoticeInput {
    return {
      severity: 'ERROR',
      code: broken === 'ours' ? '42501' : '25P02',
      message:
        broken === 'ours'
          ? `Warden could not check this statement: ${this.work.brokenReason ?? 'its check failed'}`
          : 'an earlier statement of this batch failed',
      extra: [['R', 'warden_guardrail']],
    };
  }

  private actQuery(message: QueryMessage, checked: Verdict, heldMs?: number): void {
    const verdict = this.finish(checked, message.sql);
    if (verdict.action === 'review') {
      this.review.hold(message, verdict, this.log.recordedSql(message.sql));
      return;
    }
    const out = this.upstreamOut;
    const stmt = this.log.start(message.sql, 'simple', verdict);
    if (stmt && heldMs !== undefined) stmt.heldMs = heldMs;
    const unit = verdict.action === 'allow' ? this.guard.unitFor(verdict, this.batchId, 'query') : undefined;
    const entry: Pending = { t: 'query', stmt, batch: this.batchId, unit };
    this.pushSync(entry);
    this.attachCopyPlans(entry);
    if (verdict.action === 'allow' && this.rewritten !== undefined) writeQuery(out.writer(), this.rewritten);
    else if (verdict.action === 'allow') out.pass(message.raw);
    else {
      this.reportBlocked(stmt, message.sql, verdict.rule);
      writeQuery(out.writer(), this.substitute(verdict, message.sql));
    }
  }

  /** `verdict` decides; `checked` (with its pending estimates) is kept for the statement's later Binds. */
  private actParse(message: ParseMessage, decided: Verdict, checked: Verdict, heldMs?: number): void {
    const verdict = this.finish(decided);
    if (verdict.action === 'review') {
      this.heldChecked = checked;
      this.review.hold(message, verdict, this.log.recordedSql(message.sql));
      return;
    }
    const out = this.upstreamOut;
    this.pushExtended({ t: 'parse' });
    if (verdict.action === 'allow') {
      this.rememberStatement(message, checked, this.checkedCopies.pop());
      out.pass(message.raw);
    } else {
      const stmt = this.log.start(message.sql, 'extended', verdict);
      if (stmt && heldMs !== undefined) stmt.heldMs = heldMs;
      this.log.record(stmt, 'blocked');
      this.reportBlocked(stmt, message.sql, verdict.rule);
      this.statements.delete(message.name);
      writeParse(out.writer(), { name: message.name, sql: this.substitute(verdict, message.sql) });
    }
  }

  private rememberStatement(
    message: ParseMessage,
    checked: Verdict,
    copy: CopyOutPlan | null | undefined,
  ): void {
    remember(this.statements, message.name, {
      recorded: this.log.recordedSql(message.sql),
      plans: new Map(),
      fields: undefined,
      copy,
      types: message.parameterTypes,
      ...(checked.impact ? { impact: checked.impact, reports: checked.statements.map((s) => s.report) } : {}),
      ...(checked.pendingEstimates ? { pending: checked } : {}),
    });
  }

  /** A Bind, passed (`verdict` undefined or allow), held for review, or refused. */
  private actBind(message: BindMessage, decided: Verdict | undefined, heldMs?: number): void {
    const verdict = decided && this.finish(decided);
    if (!verdict || verdict.action === 'allow') {
      this.passBind(message);
      return;
    }
    const statement = this.statements.get(message.statement);
    const text = this.bindText(message, statement);
    if (verdict.action === 'review') {
      this.review.hold(message, verdict, text);
      return;
    }
    const stmt = this.log.start(text, 'extended', verdict, true);
    if (stmt && heldMs !== undefined) stmt.heldMs = heldMs;
    this.log.record(stmt, 'blocked');
    this.reportBlocked(stmt, text, verdict.rule);
    this.refuseBind(message, this.substitute(verdict));
  }

  private passBind(message: BindMessage): void {
    this.pushExtended({
      t: 'bind',
      portal: message.portal,
      statement: message.statement,
      formats: message.resultFormats,
    });
    const statement = this.statements.get(message.statement);
    const portal: Portal = {
      statement: message.statement,
      plan: statement && this.planOf(statement, message.resultFormats),
      params: this.log.maskParams(message.parameters, message.parameterFormats),
      copy: statement?.copy,
    };
    remember(this.portals, message.portal, portal);
    this.upstreamOut.pass(message.raw);
  }

  /** Sends, in the Bind's place, one of a statement that does not exist (the server's error is replaced). */
  private refuseBind(message: BindMessage, missing: string): void {
    this.pushExtended({ t: 'bind', portal: message.portal, statement: missing, formats: [] });
    this.portals.delete(message.portal);
    writeBind(this.upstreamOut.writer(), { portal: message.portal, statement: missing });
  }

  /** A Bind as recorded: its statement's text and its parameters (masked). */
  private bindText(message: BindMessage, statement: PreparedStatement | undefined): string {
    const params = this.log.maskParams(message.parameters, message.parameterFormats);
    return `${statement?.recorded ?? ''}${params.length > 0 ? ` -- parameters: ${params.join(', ')}` : ''}`;
  }

  /**
   * The verdict as acted on: prepared statements remembered, COPY TO plans made (a COPY whose
   * masking cannot be planned is refused), review refused where no reviewer is wired. `sql` is
   * given for a simple query only: a lone COPY or LOCK of a masked table is rewritten to read its
   * masking view (a Parse of one is sent as written, and the database refuses it).
   */
  private finish(verdict: Verdict, sql?: string): Verdict {
    this.checkedCopies.length = 0;
    this.rewritten = undefined;
    if (verdict.action === 'allow') {
      // A lone COPY or LOCK of a masked table reads its masking view instead (simple queries;
      // a Parse of one is sent as written and refused by the database).
      const only = sql !== undefined && verdict.statements.length === 1 ? verdict.statements[0]! : undefined;
      this.rewritten = only && this.planner.rewriteForMaskingViews(only.report, sql!);
      if (this.rewritten !== undefined) {
        if (only?.report.copy) this.checkedCopies.push(null);
        return verdict;
      }
      for (const statement of verdict.statements) {
        const prepares = statement.report.prepares;
        if (prepares) remember(this.guard.ctx.prepared, prepares.name, prepares.statement);
        // COPY TO carries no RowDescription: its masking is planned from the statement, queued in
        // statement order (null when no column rule applies).
        const copy = this.planner.planCopy(statement.report, this.clientEncoding);
        if (copy === undefined) continue;
        if ('refusal' in copy) {
          this.checkedCopies.length = 0;
          return {
            action: 'block',
            rule: 'masked-copy',
            message: copy.refusal,
            statements: verdict.statements,
          };
        }
        this.checkedCopies.push(copy.plan);
      }
      return verdict;
    }
    if (verdict.action === 'review' && !this.review.available) {
      // No reviewer is wired to this proxy: a statement that needs review is refused (fail closed).
      return {
        ...verdict,
        action: 'block',
        message: `${verdict.message ?? 'this statement needs review'} (statement review is not available on this proxy)`,
      };
    }
    return verdict;
  }

  /** The statement sent instead of the one just checked (a masking view's COPY or LOCK). */
  private rewritten: string | undefined;

  /** COPY TO plans of the statement being checked, in statement order. */
  private readonly checkedCopies: (CopyOutPlan | null)[] = [];
  /** COPY TO plans of queries and executes awaiting their CopyOutResponse, in order. */
  private readonly copyPlans = new WeakMap<Pending, (CopyOutPlan | null)[]>();
  /** The masker of the COPY TO in progress, if it has column rules. */
  private copyMasker: CopyOutMasker | null = null;
  /** The session's client_encoding, kept up to date from ParameterStatus. */
  private clientEncoding = 'UTF8';

  private attachCopyPlans(entry: Pending): void {
    if (this.checkedCopies.length === 0) return;
    this.copyPlans.set(entry, [...this.checkedCopies]);
    this.checkedCopies.length = 0;
  }

  /** Starts masking a COPY TO by its plan; the response must match what was planned. */
  private startCopyOut(columns: number): void {
    const head = this.head();
    const plans = head ? this.copyPlans.get(head) : undefined;
    if (!plans?.length) {
      // Every COPY TO STDOUT was planned when checked: one that was not cannot be masked by column.
      if (this.options.masker.config.columns.length === 0) return;
      throw new PgProxyError('ERR_PGPROXY_UNMASKABLE', 'a COPY TO that Warden did not plan cannot be masked');
    }
    const plan = plans.shift();
    if (!plan) return;
    if (!isAsciiSafeEncoding(this.clientEncoding)) {
      throw new PgProxyError(
        'ERR_PGPROXY_UNMASKABLE',
        `COPY output in ${this.clientEncoding} cannot be masked`,
      );
    }
    if (plan.rules.length !== columns) {
      throw new PgProxyError(
        'ERR_PGPROXY_UNMASKABLE',
        `COPY returns ${columns} columns where ${plan.rules.length} were planned`,
      );
    }
    const stmt = head?.t === 'query' || head?.t === 'execute' ? head.stmt : undefined;
    this.copyMasker = new CopyOutMasker(plan, this.options.masker, this.detectorsOn, (counts) =>
      this.log.count(counts, stmt),
    );
  }

  /** Registers a blocked statement and returns the SQL the server will reject in its place. */
  private substitute(verdict: Verdict, sql?: string): string {
    const rule = verdict.rule ?? 'guardrail';
    return this.substituteError({
      severity: 'ERROR',
      code: '42501',
      message: `Warden blocked this statement (rule ${rule}): ${verdict.message ?? 'not allowed'}`,
      hint: this.blockedHint(rule, sql),
      extra: [['R', 'warden_guardrail']],
    });
  }

  /**
   * What the person can do about a block: name the levels of the target whose guardrails would let
   * the statement through, or say that none does (asking for another grant would not help).
   */
  private blockedHint(rule: string, sql: string | undefined): string {
    if (rule === 'unparseable') return 'Warden could not parse the statement and refuses what it cannot read';
    const none = 'no level of this target allows it';
    // These refusals do not depend on the level: masking and the fast-path apply to every grant.
    if (rule === 'masked-copy' || rule === 'function-call') return none;
    const levels = this.options.levels;
    if (!levels || sql === undefined) return "the guardrails of this grant's level refuse it";
    const ctx = this.guard.ctx;
    const allowing: string[] = [];
    const sized: string[] = [];
    for (const level of levels) {
      if (level === ctx.level) continue;
      const verdict = this.options.guardrails.check(sql, { ...ctx, level });
      if (verdict.action === 'block') continue;
      // A max_rows rule of that level still needs the estimate: it may refuse the write too.
      (verdict.pendingEstimates ? sized : allowing).push(level);
    }
    // The checks above are for the hint only: function names they missed are not this session's.
    this.guard.takeMisses();
    const quoted = (list: string[]) => list.map((l) => `"${l}"`).join(' or ');
    if (allowing.length > 0) {
      return `a grant at level ${quoted(allowing)} allows it (${allowing.length === 1 ? 'that level' : 'those levels'} may still send it for review)`;
    }
    if (sized.length > 0)
      return `a grant at level ${quoted(sized)} may allow it, depending on the rows it touches`;
    return none;
  }

  /** Tells {@link RelayOptions.onBlocked} of a refused statement (`stmt`: its entry, if one is kept). */
  private reportBlocked(
    stmt: StatementRecord | undefined,
    sql: string,
    rule: string | undefined,
    review?: Record<string, unknown>,
  ): void {
    const onBlocked = this.options.onBlocked;
    if (!onBlocked) return;
    onBlocked({
      statement: stmt?.sql ?? this.log.recordedSql(sql),
      rule: rule ?? 'guardrail',
      ...(review ? { review } : {}),
    });
  }

  /** Registers a refused statement and returns the SQL the server will reject in its place. */
  private substituteError(error: NoticeInput): string {
    this.stats.blocked++;
    const n = ++this.substitutionCount;
    this.substitutions.set(n, { segment: this.syncsSent, error });
    return `${this.tokenPrefix}${n}`;
  }

  // ------------------------------------------------------------------ statement review

  /** Whether a statement is held for review. */
  get holding(): boolean {
    return this.review.holding;
  }

  /**
   * Ends the wait of a held statement on a client's CancelRequest: the statement fails with
   * SQLSTATE 57014 and the review is withdrawn. False when nothing is held (cancel the server's work).
   */
  cancelHeld(): boolean {
    return this.review.cancel();
  }

  /** Withdraws a held statement's review and Warden's own work (the session ended); nothing more is sent. */
  close(): void {
    this.review.close();
    this.guardHold.close();
    this.waiters.length = 0;
  }

  /** What the review hold asks of the relay: the wire side of a released statement. */
  private readonly holdHost: HoldHost = {
    settle: (message, verdict, outcome, review) => this.settleHeld(message, verdict, outcome, review),
    receive: (message) => this.onClientMessage(message),
    beginOutput: () => this.beginOutput(),
    endOutput: () => this.endOutput(),
  };

  /** Forwards an approved held statement, or substitutes its refusal like a blocked one. */
  private settleHeld(
    message: HeldMessage,
    verdict: Verdict,
    outcome: HoldOutcome,
    review: Record<string, unknown>,
  ): void {
    const rule = verdict.rule ?? 'guardrail';
    const checked = this.heldChecked;
    this.heldChecked = undefined;
    if (outcome.decision === 'approved') {
      this.forwardApproved(message, verdict, checked ?? verdict, review);
      return;
    }
    const out = this.upstreamOut;
    const refused = this.substituteError(refusalOf(rule, outcome));
    const text =
      message.type === 'bind' ? this.bindText(message, this.statements.get(message.statement)) : message.sql;
    const stmt = this.log.start(
      text,
      message.type === 'query' ? 'simple' : 'extended',
      verdict,
      message.type === 'bind',
    );
    if (stmt) {
      stmt.verdict = { action: 'block', rule };
      stmt.review = review;
    }
    this.reportBlocked(stmt, text, rule, review);
    if (message.type === 'query') {
      this.pushSync({ t: 'query', stmt, batch: this.batchId });
      writeQuery(out.writer(), refused);
    } else if (message.type === 'parse') {
      this.pushExtended({ t: 'parse' });
      this.log.record(stmt, 'blocked');
      this.statements.delete(message.name);
      writeParse(out.writer(), { name: message.name, sql: refused });
    } else {
      this.log.record(stmt, 'blocked');
      this.refuseBind(message, refused);
    }
  }

  private forwardApproved(
    message: HeldMessage,
    verdict: Verdict,
    checked: Verdict,
    review: Record<string, unknown>,
  ): void {
    const rule = verdict.rule ?? 'guardrail';
    if (message.type === 'query') {
      const approved = this.finish({ ...verdict, action: 'allow' });
      const stmt = this.log.start(message.sql, 'simple', undefined);
      if (stmt) {
        stmt.verdict = { action: 'review', rule };
        stmt.review = review;
      }
      const unit = this.guard.unitFor(approved, this.batchId, 'query');
      const entry: Pending = { t: 'query', stmt, batch: this.batchId, unit };
      this.pushSync(entry);
      this.attachCopyPlans(entry);
    } else if (message.type === 'parse') {
      this.pushExtended({ t: 'parse' });
      this.finish({ ...checked, action: 'allow' });
      this.rememberStatement(message, checked, this.checkedCopies.pop());
      this.log.note('review', { sql: this.log.recordedSql(message.sql), protocol: 'extended', rule, review });
    } else {
      this.log.note('review', {
        sql: this.bindText(message, this.statements.get(message.statement)),
        protocol: 'extended',
        rule,
        review,
      });
      this.passBind(message);
      return;
    }
    this.upstreamOut.pass(message.raw);
  }

  /** The plan of a prepared statement's result in `formats`; undefined while its columns are unknown. */
  private planOf(statement: PreparedStatement, formats: readonly number[]): ResultPlan | null | undefined {
    if (statement.fields === undefined) return undefined;
    if (statement.fields === null) return null;
    const key = formats.join(',');
    let plan = statement.plans.get(key);
    if (plan === undefined) {
      plan = this.planner.plan(statement.fields, formats);
      statement.plans.set(key, plan);
    }
    return plan;
  }

  /** A client message of an extended-protocol batch. */
  private pushExtended(entry: Pending): void {
    this.pending.push(entry);
    this.batchOpen = true;
  }

  /** A batch's ReadyForQuery: the guard confirms or undoes what its units changed. */
  private endBatch(batch: number, status: TransactionStatus, failed: boolean): void {
    this.guard.batchEnded(batch, status, failed);
    this.batchFailed = false;
  }

  /** A Sync or a Query (or what stands for one): it ends the batch. */
  private pushSync(entry: Pending): void {
    this.pending.push(entry);
    this.batchOpen = false;
    this.batchId++;
    this.syncsSent++;
  }

  // ------------------------------------------------------------------ Warden's own statements

  private runJob(steps: readonly InternalStep[], flush: boolean): Promise<JobOutcome> {
    return new Promise((resolve) => {
      const job = new InternalJob(steps, this.namePrefix, flush, resolve);
      this.pending.push({ t: 'internal', job });
      this.withOutput(() => this.upstreamOut.send(job.bytes));
    });
  }

  private when(condition: () => boolean): Promise<void> {
    if (condition()) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ condition, resolve }));
  }

  /** Resolves the waits whose condition now holds (after each reply from the server). */
  private wakeWaiters(): void {
    for (let i = 0; i < this.waiters.length; i++) {
      const waiter = this.waiters[i]!;
      if (!waiter.condition()) continue;
      this.waiters.splice(i--, 1);
      waiter.resolve();
    }
  }

  /** Runs `fn` with both outputs open: inside a feed they already are. */
  private withOutput(fn: () => void): void {
    this.beginOutput();
    try {
      fn();
    } finally {
      this.endOutput();
    }
  }

  private beginOutput(): void {
    if (this.outputDepth++ > 0) return;
    this.bracketed = { upstream: !this.upstreamOpen, client: !this.clientOpen };
    if (this.bracketed.upstream) this.upstreamOut.begin(EMPTY);
    if (this.bracketed.client) this.clientOut.begin(EMPTY);
  }

  private endOutput(): void {
    if (--this.outputDepth > 0) return;
    if (this.bracketed.upstream) this.upstreamOut.end();
    if (this.bracketed.client) this.clientOut.end();
    this.bracketed = { upstream: false, client: false };
  }

  /** Tells the session whether any hold (review or Warden's own work) keeps the client waiting. */
  private updateHold(): void {
    const holding = this.review.holding || this.guardHold.holding;
    if (holding === this.holdingNotified) return;
    this.holdingNotified = holding;
    this.options.onHold?.(holding);
  }

  private head(): Pending | undefined {
    return this.pending[this.pendingHead];
  }

  private shift(): Pending | undefined {
    const entry = this.pending[this.pendingHead];
    if (entry === undefined) return undefined;
    this.pending[this.pendingHead++] = undefined as unknown as Pending;
    if (this.pendingHead > 1024 && this.pendingHead * 2 > this.pending.length) {
      this.pending.splice(0, this.pendingHead);
      this.pendingHead = 0;
    }
    return entry;
  }

  // ------------------------------------------------------------------ server → client

  private readonly onServerFrame = (code: number, raw: Buffer): void => this.onServerMessage(code, raw);
  private readonly onServerRows = (chunk: Buffer, start: number, end: number): void =>
    this.onDataRows(chunk, start, end);

  private onServerMessage(code: number, raw: Buffer): void {
    const out = this.clientOut;
    const first = this.pending[this.pendingHead];
    if (
      first?.t === 'internal' &&
      code !== BackendCode.ParameterStatus &&
      code !== BackendCode.NotificationResponse
    ) {
      // A reply to Warden's own statements: never the client's.
      if (first.job.feed(code, raw)) this.shift();
      return;
    }
    switch (code) {
      case BackendCode.DataRow:
        // A row that arrived split across chunks (whole rows come in runs to onDataRows).
        this.onDataRows(raw, 0, raw.length);
        return;
      case BackendCode.CommandComplete: {
        const head = this.head();
        const rows = readRowCount(raw);
        this.stats.rows += rows;
        if (head?.t === 'execute') {
          if (head.stmt) head.stmt.rows += rows;
          this.shift();
          this.log.record(head.stmt);
          if (head.unit) this.guard.ran(head.unit, [decodeCommandComplete(raw)]);
        } else if (head?.t === 'query') {
          if (head.stmt) head.stmt.rows += rows;
          if (head.unit) {
            head.tags ??= [];
            head.tags.push(decodeCommandComplete(raw));
          }
        }
        out.pass(raw);
        return;
      }
      case BackendCode.ReadyForQuery: {
        const status = decodeReadyForQuery(raw);
        this.lastStatus = status;
        // An idle session keeps no row buffers.
        this.rows.dropSpares();
        for (;;) {
          const entry = this.shift();
          if (!entry) break;
          if (entry.t === 'execute') {
            this.log.record(entry.stmt, 'skipped');
            if (entry.unit) this.guard.skipped(entry.unit);
          }
          if (entry.t === 'query') {
            this.log.record(entry.stmt);
            if (entry.unit) {
              if (entry.failed) this.guard.failed(entry.unit, status);
              else this.guard.ran(entry.unit, entry.tags ?? []);
            }
            this.endBatch(entry.batch, status, entry.failed === true);
            break;
          }
          if (entry.t === 'sync') {
            this.endBatch(entry.batch, status, this.batchFailed);
            break;
          }
        }
        this.syncsReceived++;
        this.queryPlan = null;
        for (const [n, s] of this.substitutions)
          if (s.segment < this.syncsReceived) this.substitutions.delete(n);
        out.pass(raw);
        return;
      }
      case BackendCode.ParseComplete:
      case BackendCode.BindComplete:
      case BackendCode.CloseComplete: {
        const head = this.shift();
        if (head?.t === 'close') {
          if (head.kind === 'statement') this.statements.delete(head.name);
          else this.portals.delete(head.name);
        }
        out.pass(raw);
        return;
      }
      case BackendCode.RowDescription:
        this.onRowDescription(raw);
        return;
      case BackendCode.NoData:
        this.onDescription(raw, null, null);
        return;
      case BackendCode.EmptyQueryResponse:
      case BackendCode.PortalSuspended: {
        const head = this.head();
        if (head?.t === 'execute') {
          this.shift();
          this.log.record(head.stmt);
          if (head.unit) this.guard.ran(head.unit, ['']);
        } else if (head?.t === 'query' && head.unit) {
          head.tags ??= [];
          head.tags.push('');
        }
        out.pass(raw);
        return;
      }
      case BackendCode.ErrorResponse:
        this.onError(raw);
        return;
      case BackendCode.NoticeResponse:
        this.onNotice(raw);
        return;
      case BackendCode.CopyOutResponse:
      case BackendCode.CopyBothResponse: {
        const copy = decodeCopyResponse(raw);
        if (copy.direction === 'both') {
          throw new PgProxyError('ERR_PGPROXY_UNSUPPORTED', 'replication is not supported through Warden');
        }
        if (copy.format === 1 && this.detectorsOn) {
          throw new PgProxyError(
            'ERR_PGPROXY_UNMASKABLE',
            'binary COPY TO cannot be masked: use text or csv format',
          );
        }
        this.startCopyOut(copy.columnFormats.length);
        out.pass(raw);
        return;
      }
      case BackendCode.CopyData:
        this.onCopyData(raw);
        return;
      case BackendCode.CopyDone: {
        const rest = this.copyMasker?.finish();
        this.copyMasker = null;
        if (rest) writeCopyData(out.writer(), rest);
        out.pass(raw);
        return;
      }
      case BackendCode.NotificationResponse:
        this.onNotification(raw);
        return;
      case BackendCode.ParameterStatus: {
        const status = decodeParameterStatus(raw);
        if (status.name === 'client_encoding') this.clientEncoding = status.value;
        // `set_config('application_name', (SELECT ...), false)` makes the server report any
        // value back: every reported value goes through the detectors.
        const masked = this.options.masker.maskValue(status.value);
        if (!masked.changed) {
          out.pass(raw);
          return;
        }
        const head = this.head();
        this.log.count(masked.counts, head?.t === 'query' || head?.t === 'execute' ? head.stmt : undefined);
        writeParameterStatus(out.writer(), status.name, masked.text);
        return;
      }
      default:
        // Authentication, BackendKeyData, CopyInResponse, ...
        out.pass(raw);
        return;
    }
  }

  private onRowDescription(raw: Buffer): void {
    const head = this.head();
    if (head?.t === 'describe' && head.kind === 'statement') {
      this.onDescription(raw, decodeRowDescription(raw), null);
      return;
    }
    this.onDescription(raw, undefined, this.planner.planRowDescription(raw));
  }

  /**
   * RowDescription or NoData: the columns of a statement (`fields`, null for NoData), or the
   * masking plan of a portal or query result.
   */
  private onDescription(
    raw: Buffer,
    fields: FieldDescription[] | null | undefined,
    plan: ResultPlan | null,
  ): void {
    const head = this.head();
    if (head?.t === 'describe') {
      this.shift();
      if (head.kind === 'statement') {
        const statement = this.statements.get(head.name);
        if (statement) {
          statement.fields = fields ?? null;
          statement.plans.clear();
        }
      } else {
        const portal = this.portals.get(head.name);
        if (portal) portal.plan = plan;
      }
      if (head.internal) return;
    } else if (fields !== null) {
      this.queryPlan = plan;
    }
    this.clientOut.pass(raw);
  }

  /** A run of whole DataRows `data[start, end)`: masked in one pass by the result's plan. */
  private onDataRows(data: Buffer, start: number, end: number): void {
    const head = this.head();
    if (head?.t === 'internal') {
      head.job.rows(data, start, end);
      return;
    }
    let plan: ResultPlan | null = FALLBACK_PLAN;
    let stmt: StatementRecord | undefined;
    if (head?.t === 'execute') {
      // A portal whose columns are still unknown cannot be left unmasked: scan every column.
      const portalPlan = this.portals.get(head.portal)?.plan;
      if (portalPlan !== undefined) plan = portalPlan;
      stmt = head.stmt;
    } else if (head?.t === 'query') {
      plan = this.queryPlan;
      stmt = head.stmt;
    }
    const whole = start === 0 && end === data.length;
    if (plan === null) {
      this.clientOut.pass(whole ? data : data.subarray(start, end));
      return;
    }
    const hooks = this.rowHooks;
    hooks.stmt = stmt;
    hooks.onRow =
      this.options.recordRows && stmt && (stmt.sample?.length ?? 0) < MAX_RECORDED_ROWS
        ? this.onSampledRow
        : null;
    const hitsBefore = plan.hitCount;
    const rewritten = this.rows.rewrite(data, start, end, plan, hooks);
    if (hitsBefore === 0 && plan.hitCount > 0) this.log.hitPlans.push(plan);
    // Once the client's socket has taken the run, its buffer serves a later one.
    if (rewritten !== null) this.clientOut.send(rewritten, () => this.rows.recycle(rewritten));
    else this.clientOut.pass(whole ? data : data.subarray(start, end));
  }

  private readonly rows: RowRewriter;
  private readonly rowHooks: RowHooks & { stmt: StatementRecord | undefined } = {
    stmt: undefined,
    onScanned: (counts) => this.log.count(counts, this.rowHooks.stmt),
    onRow: null,
  };
  private readonly onSampledRow = (bytes: Buffer, start: number, end: number): boolean =>
    this.log.sampleRow(this.rowHooks.stmt!, bytes, start, end);

  private onCopyData(raw: Buffer): void {
    if (this.copyMasker) {
      const payload = raw.subarray(5);
      const rows = this.copyMasker.feed(payload);
      // Whole rows with nothing masked come back as a view of the payload: forward the message.
      if (
        rows.length === payload.length &&
        rows.buffer === payload.buffer &&
        rows.byteOffset === payload.byteOffset
      )
        this.clientOut.pass(raw);
      else if (rows.length > 0) writeCopyData(this.clientOut.writer(), rows);
      return;
    }
    if (!this.detectorsOn) {
      this.clientOut.pass(raw);
      return;
    }
    const data = raw.subarray(5);
    const result = this.options.masker.maskBuffer(data);
    if (!result.changed) {
      this.clientOut.pass(raw);
      return;
    }
    const head = this.head();
    this.log.count(result.counts, head?.t === 'query' || head?.t === 'execute' ? head.stmt : undefined);
    writeCopyData(this.clientOut.writer(), result.buffer);
  }

  /** NOTIFY payloads are data too: they go through the detectors. */
  private onNotification(raw: Buffer): void {
    const notification = decodeNotificationResponse(raw);
    const result = this.options.masker.maskValue(notification.payload);
    if (!result.changed) {
      this.clientOut.pass(raw);
      return;
    }
    this.log.count(result.counts, undefined);
    this.clientOut
      .writer()
      .startMessage(BackendCode.NotificationResponse)
      .writeInt32(notification.processId)
      .writeCString(notification.channel)
      .writeCString(result.text)
      .endMessage();
  }

  private onError(raw: Buffer): void {
    // A COPY that fails midway: its unfinished row is dropped.
    this.copyMasker = null;
    const error = decodeErrorResponse(raw);
    const head = this.head();
    let replaced: NoticeInput | undefined;
    // A refused statement fails as a syntax error, a refused Bind as a missing statement (26000).
    if ((error.code === '42601' || error.code === '26000') && this.substitutions.size > 0) {
      const at = error.message.indexOf(this.tokenPrefix);
      if (at >= 0) {
        const n = Number.parseInt(error.message.slice(at + this.tokenPrefix.length), 10);
        replaced = this.substitutions.get(n)?.error;
        this.substitutions.delete(n);
      }
    }
    if (!replaced) this.stats.errors++;
    const summary = replaced ? undefined : this.maskFields(error.fields, head);
    const message = replaced ? undefined : `${error.code} ${summary!.get('M') ?? ''}`;
    if (head?.t === 'query') {
      if (head.stmt && message) head.stmt.error = message;
      head.failed = true;
    } else if (head && head.t !== 'sync') {
      // An extended-protocol error: the server skips everything up to the next Sync.
      this.batchFailed = true;
      for (let entry = this.head(); entry && entry.t !== 'sync'; entry = this.head()) {
        if (entry.t === 'internal') {
          // Warden's statements queued behind the failed message are skipped too.
          if (entry.job.skippedByServer()) break;
          this.shift();
          continue;
        }
        this.shift();
        if (entry.t === 'query' && entry.unit) this.guard.skipped(entry.unit);
        if (entry.t === 'execute') {
          if (entry.stmt) {
            if (message) entry.stmt.error = message;
            this.log.record(entry.stmt, entry === head ? undefined : 'skipped');
          }
          if (entry.unit) this.guard.skipped(entry.unit);
        }
      }
    }
    if (replaced) writeErrorResponse(this.clientOut.writer(), replaced);
    else if (summary === error.fields) this.clientOut.pass(raw);
    else writeErrorResponse(this.clientOut.writer(), summary!);
  }

  private onNotice(raw: Buffer): void {
    const notice = decodeNoticeResponse(raw);
    const head = this.head();
    const fields = this.maskFields(notice.fields, head);
    if (fields === notice.fields) this.clientOut.pass(raw);
    else writeNoticeResponse(this.clientOut.writer(), fields);
  }

  /** Masks the fields that may repeat data (DETAIL: `Key (email)=(a@b.com) already exists`). */
  private maskFields(fields: Map<string, string>, head: Pending | undefined): Map<string, string> {
    let out = fields;
    for (const [key, value] of fields) {
      if (SERVER_FIELDS.has(key)) continue;
      const result = this.options.masker.maskValue(value);
      if (!result.changed) continue;
      if (out === fields) out = new Map(fields);
      out.set(key, result.text);
      this.log.count(result.counts, head?.t === 'query' || head?.t === 'execute' ? head.stmt : undefined);
    }
    return out;
  }
}

const EMPTY = Buffer.alloc(0);

/**
 * What a Parse held for its estimate makes of a later kept message: its Bind, or the end of the
 * wait (a Sync or Query ends the batch without binding it; a Close or another Parse replaces it).
 */
function bindOf(message: FrontendMessage, statement: string): 'found' | 'stop' | 'skip' {
  if (message.type === 'bind') return message.statement === statement ? 'found' : 'skip';
  // A Flush may mean the client waits for the replies so far (ParseComplete) before it binds:
  // waiting on for its Bind would deadlock, so the Bind is estimated when it comes (onBind).
  if (
    message.type === 'sync' ||
    message.type === 'flush' ||
    message.type === 'query' ||
    message.type === 'terminate'
  )
    return 'stop';
  if (message.type === 'parse' && message.name === statement) return 'stop';
  if (message.type === 'close' && message.kind === 'statement' && message.name === statement) return 'stop';
  return 'skip';
}

/** The row count at the end of a CommandComplete tag (`SELECT 3`, `INSERT 0 1`), 0 if none. */
function readRowCount(raw: Buffer): number {
  let end = raw.length - 1;
  let value = 0;
  let scale = 1;
  while (end > 5 && raw[end - 1]! >= 0x30 && raw[end - 1]! <= 0x39) {
    value += (raw[end - 1]! - 0x30) * scale;
    scale *= 10;
    end--;
  }
  return value;
}
