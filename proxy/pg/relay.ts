/**
 * The protocol core of a proxied session once both sides are logged in: client messages in,
 * bytes for the server out (statements checked by the guardrails); server messages in, bytes
 * for the client out (values masked); a timeline of statements out. No sockets or timers: the
 * session feeds chunks and sends what comes out.
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
 */
import { randomBytes } from 'node:crypto';
import {
  DEFAULT_REVIEW_TIMEOUT_MS,
  isAsciiSafeEncoding,
  type SqlGuardrails,
  type StatementReport,
  type Verdict,
} from '../guardrails/sql/index.ts';
import { addCounts, type ColumnRule, type MaskCounts, type Masker } from '../masking/index.ts';
import type { ReviewOutcome, StatementReviewer } from '../statement-reviewer.ts';
import type { Catalog } from './catalog.ts';
import { type ByteSink, ChunkOutput } from './chunk-output.ts';
import { CopyOutMasker, type CopyOutPlan, planCopyOut } from './copy-masking.ts';
import { PgProxyError } from './errors.ts';
import {
  BackendParser,
  DataRowLocator,
  decodeCopyResponse,
  decodeErrorResponse,
  decodeNoticeResponse,
  decodeNotificationResponse,
  decodeParameterStatus,
  decodeRowDescription,
  type FieldDescription,
} from './protocol/backend-parser.ts';
import {
  type FrontendMessage,
  FrontendParser,
  type ParseMessage,
  type QueryMessage,
} from './protocol/frontend-parser.ts';
import { BackendCode } from './protocol/message-codes.ts';
import {
  type NoticeInput,
  writeCopyData,
  writeDescribe,
  writeErrorResponse,
  writeNoticeResponse,
  writeParse,
  writeQuery,
} from './protocol/serializer.ts';
import { ColumnOp, type RowHooks, type RowPlan, RowRewriter } from './row-rewriter.ts';

/** Most prepared statements / portals / SQL PREPAREs remembered per session (oldest forgotten). */
const MAX_NAMES = 10_000;
/** Most bytes of client input kept while a statement is held for review. */
export const MAX_HELD_INPUT = 1024 * 1024;
/** Most statements awaiting their replies whose details are recorded. */
const MAX_PENDING = 100_000;
/** Recorded text is cut to this many characters. */
const MAX_RECORDED_SQL = 4_000;
const MAX_RECORDED_PARAMS = 32;
const MAX_RECORDED_PARAM = 200;
/** Masked result rows kept per statement when `recordRows` is on. */
export const MAX_RECORDED_ROWS = 100;
/** ErrorResponse/NoticeResponse fields that may repeat data and are masked. */
const MASKED_FIELDS = new Set(['M', 'D', 'H', 'W', 'q', 'p']);
/** Most result shapes planned per session before the cache starts over. */
const MAX_PLANS = 256;
/**
 * Types whose text form cannot hold anything a built-in detector looks for (no `@` or letters,
 * at most 10 digits, no digit groups with separators: cards need 13 digits, SSNs and phone
 * numbers need separators): bool, int2, int4, oid, date, time, timestamp, timestamptz, interval,
 * timetz, uuid. Their values skip the content scan unless custom patterns are configured (a
 * pattern may match anything). Floats and int8 stay scanned (a card number fits in them).
 */
const UNSCANNED_TYPES: ReadonlySet<number> = new Set([
  16, 21, 23, 26, 1082, 1083, 1114, 1184, 1186, 1266, 2950,
]);
const NO_TYPES: ReadonlySet<number> = new Set();
/** Types whose binary form is their text (text, varchar, bpchar, name, json, unknown). */
const TEXT_TYPES = new Set([25, 1043, 1042, 19, 114, 705]);

/** What to do to each column of a result; null when no column needs anything (zero-copy). */
type ResultPlan = RowPlan;

const REDACTED = Buffer.from('[REDACTED]');

/** One statement's entry in the timeline, filled in as replies arrive. */
interface StatementRecord {
  sql: string;
  params?: string[];
  startedAt: number;
  rows: number;
  error?: string;
  verdict?: { action: string; rule?: string };
  masked?: Record<string, number>;
  sample?: string[][];
  protocol: 'simple' | 'extended' | 'function';
  /** The outcome of its review, when a rule held it. */
  review?: Record<string, unknown>;
}

/** A statement held for review and the client input that arrived after it. */
interface Held {
  message: QueryMessage | ParseMessage;
  verdict: Verdict;
  reviewId: string | undefined;
  startedAt: number;
  abort: AbortController;
  queued: FrontendMessage[];
  queuedBytes: number;
}

type Pending =
  | { t: 'parse' }
  | { t: 'bind'; portal: string; statement: string; formats: number[] }
  | { t: 'describe'; kind: 'statement' | 'portal'; name: string; internal: boolean }
  | { t: 'execute'; portal: string; stmt: StatementRecord | undefined }
  | { t: 'close'; kind: 'statement' | 'portal'; name: string }
  | { t: 'sync' }
  | { t: 'query'; stmt: StatementRecord | undefined };

interface PreparedStatement {
  /** The statement's text as recorded (masked, cut). */
  recorded: string;
  /** Plans by result formats (`Bind`'s), computed once. */
  plans: Map<string, ResultPlan | null>;
  /** From Describe: undefined until known, null for statements that return no rows. */
  fields: FieldDescription[] | null | undefined;
  /** A COPY TO's masking plan (null: no column rules apply). */
  copy?: CopyOutPlan | null;
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

/**
 * A copy of a client message that owns its bytes. Messages are views of the received chunk, and
 * the session reads into one reused buffer (static-read.ts): a message kept past the chunk (held
 * for review) must not be overwritten by the next read.
 */
function detach(message: FrontendMessage): FrontendMessage {
  let copy: FrontendMessage | undefined;
  new FrontendParser({ phase: 'normal' }).feed(Buffer.from(message.raw), (parsed) => {
    copy = parsed;
  });
  return copy ?? message;
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
}

/** Session counters for the recording's summary. */
export interface RelayStats {
  statements: number;
  blocked: number;
  errors: number;
  rows: number;
  masked: Record<string, number>;
}

function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

/** The relay of one session (see the module comment). */
export class PgRelay {
  readonly stats: RelayStats = { statements: 0, blocked: 0, errors: 0, rows: 0, masked: {} };
  private readonly frontend = new FrontendParser({ phase: 'normal' });
  private readonly backend = new BackendParser();
  private readonly upstreamOut: ChunkOutput;
  private readonly clientOut: ChunkOutput;
  private readonly options: RelayOptions;
  private readonly clock: () => number;
  private readonly ctx: { level: string; groups: readonly string[]; prepared: Map<string, StatementReport> };
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
  private readonly detectorsOn: boolean;
  private readonly unscannedTypes: ReadonlySet<number>;
  private locator: DataRowLocator | null = null;
  private unknownTableReported = false;
  /** True once the client sent Terminate. */
  terminated = false;
  private held: Held | null = null;
  private closed = false;

  constructor(options: RelayOptions) {
    this.options = options;
    this.clock = options.clock ?? Date.now;
    this.ctx = { level: options.level, groups: options.groups, prepared: new Map() };
    this.upstreamOut = new ChunkOutput(options.toUpstream);
    this.clientOut = new ChunkOutput(options.toClient);
    this.token = options.token ?? randomBytes(8).toString('hex');
    this.tokenPrefix = `warden_blocked_${this.token}_`;
    const config = options.masker.config;
    this.detectorsOn = config.patterns.length > 0 || Object.values(config.detectors).some((s) => s !== null);
    this.unscannedTypes = config.patterns.length > 0 ? NO_TYPES : UNSCANNED_TYPES;
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
    try {
      this.frontend.feed(chunk, (message) => this.onClientMessage(message));
    } finally {
      this.upstreamOut.end();
    }
  }

  /** Feeds bytes from the server. Throws a ProtocolError or PgProxyError: end the session. */
  feedUpstream(chunk: Buffer): void {
    this.clientOut.begin(chunk);
    try {
      this.backend.feed(chunk, this.onServerFrame, this.onServerRows);
    } finally {
      this.clientOut.end();
    }
  }

  // ------------------------------------------------------------------ client → server

  private onClientMessage(message: FrontendMessage): void {
    if (this.held) {
      this.keep(this.held, message);
      return;
    }
    const out = this.upstreamOut;
    switch (message.type) {
      case 'query': {
        const verdict = this.check(message.sql);
        if (verdict.action === 'review') {
          this.hold(message, verdict);
          return;
        }
        const stmt = this.startStatement(message.sql, 'simple', verdict);
        const entry: Pending = { t: 'query', stmt };
        this.push(entry);
        this.attachCopyPlans(entry);
        if (verdict.action === 'allow') out.pass(message.raw);
        else writeQuery(out.writer(), this.substitute(verdict, message.sql));
        this.syncsSent++;
        return;
      }
      case 'parse': {
        const verdict = this.check(message.sql);
        if (verdict.action === 'review') {
          this.hold(message, verdict);
          return;
        }
        this.push({ t: 'parse' });
        if (verdict.action === 'allow') {
          this.remember(this.statements, message.name, {
            recorded: this.recordedSql(message.sql),
            plans: new Map(),
            fields: undefined,
            copy: this.checkedCopies.pop(),
          });
          out.pass(message.raw);
        } else {
          this.record(this.startStatement(message.sql, 'extended', verdict), 'blocked');
          this.statements.delete(message.name);
          writeParse(out.writer(), { name: message.name, sql: this.substitute(verdict, message.sql) });
        }
        return;
      }
      case 'bind': {
        this.push({
          t: 'bind',
          portal: message.portal,
          statement: message.statement,
          formats: message.resultFormats,
        });
        const statement = this.statements.get(message.statement);
        const portal: Portal = {
          statement: message.statement,
          plan: statement && this.planOf(statement, message.resultFormats),
          params: this.maskParams(message.parameters, message.parameterFormats),
          copy: statement?.copy,
        };
        this.remember(this.portals, message.portal, portal);
        out.pass(message.raw);
        return;
      }
      case 'describe': {
        this.push({ t: 'describe', kind: message.kind, name: message.name, internal: false });
        const portal = message.kind === 'portal' ? this.portals.get(message.name) : undefined;
        if (portal) portal.described = true;
        out.pass(message.raw);
        return;
      }
      case 'execute': {
        const portal = this.portals.get(message.portal);
        if (portal?.plan === undefined && !portal?.described) {
          // Masking needs the result's columns: ask for them and keep the answer to ourselves.
          this.push({ t: 'describe', kind: 'portal', name: message.portal, internal: true });
          writeDescribe(out.writer(), 'portal', message.portal);
        }
        const recorded = portal ? this.statements.get(portal.statement)?.recorded : undefined;
        const stmt = this.startStatement(recorded ?? '', 'extended', undefined, true);
        if (stmt && portal && portal.params.length > 0) stmt.params = portal.params;
        const entry: Pending = { t: 'execute', portal: message.portal, stmt };
        this.push(entry);
        if (portal?.copy !== undefined) this.copyPlans.set(entry, [portal.copy]);
        out.pass(message.raw);
        return;
      }
      case 'close':
        this.push({ t: 'close', kind: message.kind, name: message.name });
        out.pass(message.raw);
        return;
      case 'sync':
        this.push({ t: 'sync' });
        this.syncsSent++;
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
        const stmt = this.startStatement(`<function call oid ${message.functionOid}>`, 'function', verdict);
        this.push({ t: 'query', stmt });
        writeQuery(out.writer(), this.substitute(verdict));
        this.syncsSent++;
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

  private check(sql: string): Verdict {
    const verdict = this.options.guardrails.check(sql, this.ctx);
    this.checkedCopies.length = 0;
    if (verdict.action === 'allow') {
      for (const statement of verdict.statements) {
        const prepares = statement.report.prepares;
        if (prepares) this.remember(this.ctx.prepared, prepares.name, prepares.statement);
        const refusal = this.planCopy(statement.report);
        if (refusal !== undefined) {
          this.checkedCopies.length = 0;
          return { action: 'block', rule: 'masked-copy', message: refusal, statements: verdict.statements };
        }
      }
      return verdict;
    }
    if (verdict.action === 'review' && !this.options.reviewer) {
      // No reviewer is wired to this proxy: a statement that needs review is refused (fail closed).
      return {
        ...verdict,
        action: 'block',
        message: `${verdict.message ?? 'this statement needs review'} (statement review is not available on this proxy)`,
      };
    }
    return verdict;
  }

  /**
   * COPY TO carries no RowDescription: the masking of a COPY TO STDOUT is planned from the
   * statement (see copy-masking.ts) and queued in {@link checkedCopies}, in statement order (null
   * when no column rule applies); returns the refusal of one that cannot be masked.
   */
  private planCopy(report: StatementReport): string | undefined {
    const copy = report.copy;
    if (!copy || copy.from || !copy.client) return undefined;
    if (!this.copiesMaskedColumns(report)) {
      this.checkedCopies.push(null);
      return undefined;
    }
    if (!isAsciiSafeEncoding(this.clientEncoding)) {
      return `COPY output in client_encoding ${this.clientEncoding} cannot be masked by column: use UTF8`;
    }
    const plan = planCopyOut(copy, this.options.catalog, this.options.masker);
    if ('refusal' in plan) {
      if (plan.unknownTable && !this.unknownTableReported) {
        this.unknownTableReported = true;
        this.options.onUnknownTable?.();
      }
      return plan.refusal;
    }
    this.checkedCopies.push(plan);
    return undefined;
  }

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
      this.count(counts, stmt),
    );
  }

  /**
   * True when a COPY reads a table with a rule-masked column. A relation the catalog does not know
   * counts as masked (fail closed).
   */
  private copiesMaskedColumns(report: StatementReport): boolean {
    const rules = this.options.masker.config.columns;
    if (report.kind !== 'copy' || report.effects.includes('write') || rules.length === 0) return false;
    return report.relations.some((relation) => {
      let masked = this.maskedRelations.get(relation);
      if (masked === undefined) {
        masked = this.hasMaskedColumn(relation);
        this.remember(this.maskedRelations, relation, masked);
      }
      return masked;
    });
  }

  private readonly maskedRelations = new Map<string, boolean>();

  private hasMaskedColumn(relation: string): boolean {
    const catalog = this.options.catalog;
    const dot = relation.lastIndexOf('.');
    const schema = dot < 0 ? undefined : relation.slice(0, dot);
    const table = relation.slice(dot + 1);
    let known = false;
    for (const [oid, name] of catalog?.tables ?? []) {
      if (name.table !== table || (schema !== undefined && name.schema !== schema)) continue;
      known = true;
      const columns = [...(catalog!.attributes.get(oid)?.values() ?? [])];
      const masked = this.options.masker.resolveColumns(
        new Map([[oid, name]]),
        columns.map((column, i) => ({ tableOid: oid, attnum: i + 1, name: column })),
        new Map(),
      );
      if (masked.some((rule) => rule !== null && rule.style !== 'none')) return true;
    }
    return !known;
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
    if (sql === undefined || rule === 'masked-copy' || rule === 'function-call') return none;
    const levels = this.options.levels;
    if (!levels) return "the guardrails of this grant's level refuse it";
    const allowing = levels.filter(
      (level) =>
        level !== this.ctx.level &&
        this.options.guardrails.check(sql, { ...this.ctx, level }).action !== 'block',
    );
    if (allowing.length === 0) return none;
    const names = allowing.map((l) => `"${l}"`).join(' or ');
    return `a grant at level ${names} allows it (${allowing.length === 1 ? 'that level' : 'those levels'} may still send it for review)`;
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
    return this.held !== null;
  }

  /** Holds a statement and asks the reviewer; the client's later input is kept until the outcome. */
  private hold(message: QueryMessage | ParseMessage, verdict: Verdict): void {
    const held: Held = {
      message: detach(message) as QueryMessage | ParseMessage,
      verdict,
      reviewId: undefined,
      startedAt: this.clock(),
      abort: new AbortController(),
      queued: [],
      queuedBytes: 0,
    };
    this.held = held;
    this.options.onHold?.(true);
    const ids = this.options.review ?? { grantId: '', sessionId: '' };
    this.options
      .reviewer!.review(
        {
          grantId: ids.grantId,
          sessionId: ids.sessionId,
          statement: this.recordedSql(message.sql),
          rule: verdict.rule ?? 'guardrail',
          message: verdict.message ?? 'this statement needs review',
          timeoutMs: verdict.timeoutMs ?? DEFAULT_REVIEW_TIMEOUT_MS,
        },
        held.abort.signal,
      )
      .then(
        (outcome) => this.release(held, outcome),
        () => this.release(held, { decision: 'expired', reviewId: '', reason: 'review unavailable' }),
      );
  }

  private keep(held: Held, message: FrontendMessage): void {
    held.queuedBytes += message.raw.length;
    if (held.queuedBytes > MAX_HELD_INPUT) {
      throw new PgProxyError(
        'ERR_PGPROXY_HELD_INPUT',
        `more than ${MAX_HELD_INPUT} bytes arrived while a statement waited for review`,
      );
    }
    held.queued.push(detach(message));
  }

  /**
   * Ends the wait of a held statement on a client's CancelRequest: the statement fails with
   * SQLSTATE 57014 and the review is withdrawn. False when nothing is held (cancel the server's work).
   */
  cancelHeld(): boolean {
    const held = this.held;
    if (!held) return false;
    held.abort.abort();
    this.release(held, { decision: 'cancelled' });
    return true;
  }

  /** Withdraws a held statement's review (the session ended); nothing more is sent. */
  close(): void {
    this.closed = true;
    this.held?.abort.abort();
  }

  private release(held: Held, outcome: ReviewOutcome | { decision: 'cancelled' }): void {
    if (this.held !== held || this.closed) return;
    this.held = null;
    const { message, verdict } = held;
    const rule = verdict.rule ?? 'guardrail';
    const review: Record<string, unknown> = {
      outcome: outcome.decision,
      waitedMs: this.clock() - held.startedAt,
    };
    if ('reviewId' in outcome && outcome.reviewId) review.id = outcome.reviewId;
    if ('by' in outcome) review.by = outcome.by;
    if ('reason' in outcome && outcome.reason) review.reason = outcome.reason;
    const out = this.upstreamOut;
    out.begin(EMPTY);
    try {
      if (outcome.decision === 'approved') this.forwardApproved(message, rule, review);
      else {
        const refused = this.substituteError(refusalOf(rule, outcome));
        const stmt = this.startStatement(
          message.sql,
          message.type === 'query' ? 'simple' : 'extended',
          verdict,
        );
        if (stmt) {
          stmt.verdict = { action: 'block', rule };
          stmt.review = review;
        }
        if (message.type === 'query') {
          this.push({ t: 'query', stmt });
          writeQuery(out.writer(), refused);
          this.syncsSent++;
        } else {
          this.push({ t: 'parse' });
          this.record(stmt, 'blocked');
          this.statements.delete(message.name);
          writeParse(out.writer(), { name: message.name, sql: refused });
        }
      }
      let next = held.queued.shift();
      while (next) {
        this.onClientMessage(next);
        const again = this.held as Held | null;
        if (again) {
          // Another held statement: the rest waits behind it.
          again.queued.push(...held.queued);
          again.queuedBytes += held.queuedBytes;
          return;
        }
        next = held.queued.shift();
      }
    } catch (error) {
      this.options.onFail?.(error);
      return;
    } finally {
      out.end();
    }
    this.options.onHold?.(false);
  }

  private forwardApproved(
    message: QueryMessage | ParseMessage,
    rule: string,
    review: Record<string, unknown>,
  ): void {
    if (message.type === 'query') {
      const stmt = this.startStatement(message.sql, 'simple', undefined);
      if (stmt) {
        stmt.verdict = { action: 'review', rule };
        stmt.review = review;
      }
      this.push({ t: 'query', stmt });
      this.syncsSent++;
    } else {
      this.push({ t: 'parse' });
      const recorded = this.recordedSql(message.sql);
      this.remember(this.statements, message.name, { recorded, plans: new Map(), fields: undefined });
      this.options.record('review', { sql: recorded, protocol: 'extended', rule, review }, this.clock());
    }
    this.upstreamOut.pass(message.raw);
  }

  private maskParams(values: readonly (Buffer | null)[], formats: readonly number[]): string[] {
    const out: string[] = [];
    const masker = this.options.masker;
    const count = Math.min(values.length, MAX_RECORDED_PARAMS);
    for (let i = 0; i < count; i++) {
      const value = values[i];
      const format = formats.length === 0 ? 0 : formats.length === 1 ? formats[0] : formats[i];
      if (value === null || value === undefined) out.push('NULL');
      else if (format === 1) out.push(`<binary ${value.length} bytes>`);
      else {
        const masked = masker.maskBuffer(
          value.length > MAX_RECORDED_PARAM ? value.subarray(0, MAX_RECORDED_PARAM) : value,
        );
        out.push(masked.buffer.toString('utf8'));
      }
    }
    return out;
  }

  /** A statement's text as recorded: masked, and cut to {@link MAX_RECORDED_SQL}. */
  private recordedSql(sql: string): string {
    return this.options.masker.maskValue(truncate(sql, MAX_RECORDED_SQL)).text;
  }

  /** The plan of a prepared statement's result in `formats`; undefined while its columns are unknown. */
  private planOf(statement: PreparedStatement, formats: readonly number[]): ResultPlan | null | undefined {
    if (statement.fields === undefined) return undefined;
    if (statement.fields === null) return null;
    const key = formats.join(',');
    let plan = statement.plans.get(key);
    if (plan === undefined) {
      plan = this.planFor(statement.fields, formats);
      statement.plans.set(key, plan);
    }
    return plan;
  }

  private startStatement(
    sql: string,
    protocol: StatementRecord['protocol'],
    verdict: Verdict | undefined,
    recorded = false,
  ): StatementRecord | undefined {
    this.stats.statements++;
    if (this.inFlight >= MAX_PENDING) return undefined;
    const text = recorded ? sql : this.recordedSql(sql);
    const stmt: StatementRecord = { sql: text, startedAt: this.clock(), rows: 0, protocol };
    if (verdict && verdict.action !== 'allow')
      stmt.verdict = { action: verdict.action, ...(verdict.rule ? { rule: verdict.rule } : {}) };
    return stmt;
  }

  private record(stmt: StatementRecord | undefined, outcome?: string): void {
    if (this.hitPlans.length > 0) this.flushHits(stmt);
    if (!stmt) return;
    const now = this.clock();
    const data: Record<string, unknown> = {
      sql: stmt.sql,
      protocol: stmt.protocol,
      ms: now - stmt.startedAt,
      rows: stmt.rows,
    };
    if (stmt.params) data.params = stmt.params;
    if (stmt.verdict) data.verdict = stmt.verdict;
    if (stmt.error) data.error = stmt.error;
    if (stmt.masked) data.masked = stmt.masked;
    if (stmt.review) data.review = stmt.review;
    if (stmt.sample) data.result = stmt.sample;
    if (outcome) data.outcome = outcome;
    this.options.record(stmt.verdict?.action === 'block' ? 'blocked' : 'statement', data, now);
  }

  private push(entry: Pending): void {
    this.pending.push(entry);
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

  private remember<V>(map: Map<string, V>, name: string, value: V): void {
    map.delete(name);
    map.set(name, value);
    if (map.size > MAX_NAMES) map.delete(map.keys().next().value!);
  }

  // ------------------------------------------------------------------ server → client

  private readonly onServerFrame = (code: number, raw: Buffer): void => this.onServerMessage(code, raw);
  private readonly onServerRows = (chunk: Buffer, start: number, end: number): void =>
    this.onDataRows(chunk, start, end);

  private onServerMessage(code: number, raw: Buffer): void {
    const out = this.clientOut;
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
          this.record(head.stmt);
        } else if (head?.t === 'query' && head.stmt) {
          head.stmt.rows += rows;
        }
        out.pass(raw);
        return;
      }
      case BackendCode.ReadyForQuery: {
        for (;;) {
          const entry = this.shift();
          if (!entry) break;
          if (entry.t === 'execute') this.record(entry.stmt, 'skipped');
          if (entry.t === 'query') {
            this.record(entry.stmt);
            break;
          }
          if (entry.t === 'sync') break;
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
          this.record(head.stmt);
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
        out.pass(raw);
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
    // Results of the same shape come back again and again: plan them once per session.
    const key = raw.toString('latin1');
    let plan = this.planCache.get(key);
    if (plan === undefined) {
      const fields = decodeRowDescription(raw);
      plan = this.planFor(
        fields,
        fields.map((f) => f.format),
      );
      if (this.planCache.size >= MAX_PLANS) this.planCache.clear();
      this.planCache.set(key, plan);
    }
    this.onDescription(raw, undefined, plan);
  }

  private readonly planCache = new Map<string, ResultPlan | null>();

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

  /** Decides per column: mask by rule, scan with detectors, nullify (binary masked) or skip. */
  private planFor(fields: readonly FieldDescription[], formats: readonly number[]): ResultPlan | null {
    const masker = this.options.masker;
    const catalog = this.options.catalog;
    let rules: (ColumnRule | null)[];
    if (masker.config.columns.length === 0) rules = fields.map(() => null);
    else {
      const tables = catalog?.tables ?? new Map();
      if (!this.unknownTableReported && fields.some((f) => f.tableOid !== 0 && !tables.has(f.tableOid))) {
        this.unknownTableReported = true;
        this.options.onUnknownTable?.();
      }
      rules = masker.resolveColumns(
        tables,
        fields.map((f) => ({ tableOid: f.tableOid, attnum: f.columnAttribute, name: f.name })),
        catalog?.attributes ?? new Map(),
      );
    }
    let any = false;
    const ops = new Uint8Array(fields.length);
    for (let i = 0; i < fields.length; i++) {
      const field = fields[i]!;
      const format = formats.length === 0 ? 0 : formats.length === 1 ? formats[0] : formats[i];
      const binary = format === 1;
      const rule = rules[i];
      let op: ColumnOp;
      if (rule && rule.style !== 'none') {
        op = binary
          ? ColumnOp.Nullify
          : rule.style === 'redact'
            ? ColumnOp.Constant
            : rule.style === 'last4'
              ? ColumnOp.Last4
              : rule.style === 'hash'
                ? ColumnOp.Hash
                : ColumnOp.Rule;
      } else if (rule || !this.detectorsOn || this.unscannedTypes.has(field.typeOid)) op = ColumnOp.Skip;
      else op = binary && !TEXT_TYPES.has(field.typeOid) ? ColumnOp.Skip : ColumnOp.Scan;
      if (op !== ColumnOp.Skip) any = true;
      ops[i] = op;
    }
    if (!any && !this.options.recordRows) return null;
    return {
      ops,
      rules,
      constants: rules.map((rule) => (rule?.style === 'redact' ? REDACTED : null)),
      labels: rules.map((rule) => (rule && rule.style !== 'none' ? `column:${rule.match}` : null)),
      hits: new Int32Array(rules.length),
      hitCount: 0,
    };
  }

  /** A run of whole DataRows `data[start, end)`: masked in one pass by the result's plan. */
  private onDataRows(data: Buffer, start: number, end: number): void {
    const head = this.head();
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
    if (hitsBefore === 0 && plan.hitCount > 0) this.hitPlans.push(plan);
    if (rewritten !== null) this.clientOut.send(rewritten);
    else this.clientOut.pass(whole ? data : data.subarray(start, end));
  }

  private readonly rows: RowRewriter;
  private readonly rowHooks: RowHooks & { stmt: StatementRecord | undefined } = {
    stmt: undefined,
    onScanned: (counts) => this.count(counts, this.rowHooks.stmt),
    onRow: null,
  };
  private readonly onSampledRow = (bytes: Buffer, start: number, end: number): boolean =>
    this.sampleRow(this.rowHooks.stmt!, bytes, start, end);

  /** Plans with rule hits not yet added to the counts. */
  private readonly hitPlans: ResultPlan[] = [];

  /** Adds up the rule hits of the rows seen so far (to `stmt`, the statement they belong to). */
  private flushHits(stmt: StatementRecord | undefined): void {
    for (const plan of this.hitPlans) {
      const counts: Record<string, number> = {};
      for (let i = 0; i < plan.hits.length; i++) {
        const n = plan.hits[i]!;
        if (n === 0) continue;
        const label = plan.labels[i]!;
        counts[label] = (counts[label] ?? 0) + n;
        plan.hits[i] = 0;
      }
      plan.hitCount = 0;
      this.count(counts, stmt);
    }
    this.hitPlans.length = 0;
  }

  /** Keeps the masked values of a row as sent for the recording (`record_rows`); false once full. */
  private sampleRow(stmt: StatementRecord, bytes: Buffer, start: number, end: number): boolean {
    if (!stmt.sample) stmt.sample = [];
    if (stmt.sample.length >= MAX_RECORDED_ROWS) return false;
    if (!this.locator) this.locator = new DataRowLocator();
    const locator = this.locator;
    const count = locator.locate(start === 0 && end === bytes.length ? bytes : bytes.subarray(start, end));
    const row: string[] = [];
    for (let i = 0; i < count; i++) {
      const value = locator.value(i);
      row.push(value === null ? 'NULL' : truncate(value.toString('utf8'), MAX_RECORDED_PARAM));
    }
    stmt.sample.push(row);
    return stmt.sample.length < MAX_RECORDED_ROWS;
  }

  private count(counts: MaskCounts, stmt: StatementRecord | undefined): void {
    addCounts(this.stats.masked, counts);
    if (!stmt) return;
    if (!stmt.masked) stmt.masked = {};
    addCounts(stmt.masked, counts);
  }

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
    this.count(result.counts, head?.t === 'query' || head?.t === 'execute' ? head.stmt : undefined);
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
    this.count(result.counts, undefined);
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
    if (error.code === '42601' && this.substitutions.size > 0) {
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
    } else if (head && head.t !== 'sync') {
      // An extended-protocol error: the server skips everything up to the next Sync.
      while (this.head() && this.head()!.t !== 'sync') {
        const entry = this.shift()!;
        if (entry.t === 'execute' && entry.stmt) {
          if (message) entry.stmt.error = message;
          this.record(entry.stmt, entry === head ? undefined : 'skipped');
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
      if (!MASKED_FIELDS.has(key)) continue;
      const result = this.options.masker.maskValue(value);
      if (!result.changed) continue;
      if (out === fields) out = new Map(fields);
      out.set(key, result.text);
      this.count(result.counts, head?.t === 'query' || head?.t === 'execute' ? head.stmt : undefined);
    }
    return out;
  }
}

const EMPTY = Buffer.alloc(0);

/** The error a client gets for a held statement that does not run. */
function refusalOf(
  rule: string,
  outcome: Exclude<ReviewOutcome, { decision: 'approved' }> | { decision: 'cancelled' },
): NoticeInput {
  if (outcome.decision === 'cancelled') {
    return {
      severity: 'ERROR',
      code: '57014',
      message: `canceling statement due to user request (it was waiting for review under rule ${rule})`,
      extra: [['R', 'warden_review']],
    };
  }
  const why =
    outcome.decision === 'denied'
      ? `denied by ${outcome.by}${outcome.reason ? `: ${outcome.reason}` : ''}`
      : `review timed out${outcome.reason && outcome.reason !== 'timed out' ? ` (${outcome.reason})` : ''}`;
  return {
    severity: 'ERROR',
    code: '42501',
    message: `Warden blocked this statement (rule ${rule}): ${why}`,
    extra: [['R', 'warden_review']],
  };
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

/** Used when a result's columns are unknown: every value goes through the detectors. */
const FALLBACK_PLAN: ResultPlan = {
  ops: new Uint8Array(0),
  rules: [],
  constants: [],
  labels: [],
  hits: new Int32Array(0),
  hitCount: 0,
};
