/**
 * One client connection: the IO shell around the pure cores. Startup (TLS, SCRAM-SHA-256 with the
 * grant's proxy password), the upstream login with the minted credential, then the relay, with
 * backpressure both ways, a handshake deadline, and an end at the grant's expiry or revocation
 * with a FATAL ErrorResponse that says why. Its start, its end and its blocked statements go to
 * the broker's audit log as the SSH proxy's logins and blocked commands do.
 */
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import type { GrantChange, ProxiedGrant } from '../../broker/ports/proxy.ts';
import {
  createMockScramVerifier,
  parseScramVerifier,
  SCRAM_SHA_256,
  ScramServerSession,
} from './auth/scram.ts';
import { buildCatalog, CATALOG_SQL, type Catalog } from './catalog.ts';
import { isPgProxyError, PgProxyAuthError, PgProxyError } from './errors.ts';
import { buildSchemaSnapshot, ROUTINE_NAMES_SQL, relationsSql } from './guard-catalog.ts';
import { decodeParameterStatus } from './protocol/backend-parser.ts';
import { isProtocolError } from './protocol/errors.ts';
import {
  decodeSaslInitialResponse,
  type FrontendMessage,
  FrontendParser,
  type StartupMessage,
} from './protocol/frontend-parser.ts';
import {
  encodeMessages,
  type NoticeInput,
  writeAuthenticationOk,
  writeAuthenticationSasl,
  writeAuthenticationSaslContinue,
  writeAuthenticationSaslFinal,
  writeBackendKeyData,
  writeEncryptionResponse,
  writeErrorResponse,
  writeReadyForQuery,
} from './protocol/serializer.ts';
import { SessionRecorder } from './recorder.ts';
import { type BlockedStatement, PgRelay } from './relay.ts';
import type { PgProxyServerContext } from './server.ts';
import { SessionGuard } from './session-guard.ts';
import { checkStartupParameters } from './startup-parameters.ts';
import { adoptWithStaticReads } from './static-read.ts';
import { connectUpstream, type UpstreamConnection } from './upstream.ts';

type State = 'startup' | 'lookup' | 'auth' | 'connecting' | 'ready' | 'closed';

/** Longest single timer Node accepts, in ms. */
const MAX_TIMER = 0x7fffffff;
/**
 * Blocked statements audited one by one per session; the rest are counted in the session's end
 * entry. A client that pipelines blocked statements cannot grow the audit log (or this process's
 * queue of audit writes) without bound; its timeline still records every one.
 */
export const MAX_AUDITED_BLOCKS = 100;
/** Statement text kept in an audit entry (masked, as recorded). */
const MAX_AUDITED_SQL = 500;

/** A proxied client connection (see the module comment). */
export class PgProxySession {
  /** The key this proxy issued to the client for CancelRequest. */
  readonly processId: number;
  readonly secretKey: number;
  private state: State = 'startup';
  private client: Socket;
  private readonly raw: Socket;
  private readonly server: PgProxyServerContext;
  private readonly parser = new FrontendParser();
  private tls = false;
  private startup: StartupMessage | undefined;
  private grant: ProxiedGrant | undefined;
  private scram: ScramServerSession | undefined;
  private upstream: UpstreamConnection | undefined;
  private relay: PgRelay | undefined;
  private recorder: SessionRecorder | undefined;
  private handshakeTimer: NodeJS.Timeout | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;
  private readonly clientPausedBy = new Set<string>();
  private upstreamPaused = false;
  private endReason = 'client disconnected';
  private refusedStatements = 0;
  /** Resolves once the session is closed and recorded. */
  readonly closed: Promise<void>;
  private resolveClosed!: () => void;

  /** `accepted` is a new connection, paused (its reads move to a socket with a static buffer). */
  constructor(accepted: Socket, server: PgProxyServerContext, processId: number) {
    const socket = adoptWithStaticReads(accepted, this.onRawData);
    this.raw = socket;
    this.client = socket;
    this.server = server;
    this.processId = processId;
    this.secretKey = randomBytes(4).readInt32BE(0);
    this.closed = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
    socket.setNoDelay(true);
    socket.on('error', () => this.close('client connection error'));
    socket.on('close', () => this.close(this.endReason));
    this.handshakeTimer = setTimeout(
      () =>
        this.fail(new PgProxyError('ERR_PGPROXY_HANDSHAKE_TIMEOUT', 'the login did not complete in time')),
      server.handshakeTimeoutMs,
    );
  }

  /** Bytes queued in this process for either socket (what backpressure keeps bounded). */
  get bufferedBytes(): number {
    return this.client.writableLength + (this.upstream?.socket.writableLength ?? 0);
  }

  /** The grant this session runs under, once authenticated. */
  get grantId(): string | undefined {
    return this.grant?.grantId;
  }

  /** Acts on a grant change from the broker. */
  onGrantChange(change: GrantChange): void {
    if (!this.grant || change.grantId !== this.grant.grantId) return;
    if (change.type === 'extended') {
      this.grant = { ...this.grant, expiresAt: change.expiresAt };
      this.armExpiry();
      return;
    }
    this.terminate(`terminating connection: ${change.detail}`, `grant ${change.reason}`);
  }

  /** Ends the session with a FATAL message to the client (grant ended, proxy shutting down). */
  terminate(message: string, reason: string): void {
    if (this.state === 'closed') return;
    this.endReason = reason;
    this.sendFatal({ severity: 'FATAL', code: '57P01', message });
    this.close(reason);
  }

  /** Forwards a CancelRequest for this session to its upstream backend. */
  async cancel(): Promise<void> {
    const grant = this.grant;
    const upstream = this.upstream;
    if (!grant || !upstream) return;
    this.recorder?.record('cancel', {});
    if (this.relay?.cancelHeld()) return;
    await this.server.cancelUpstream(
      grant.upstream.host,
      grant.upstream.port,
      upstream.processId,
      upstream.secretKey,
      grant.upstream.tls,
    );
  }

  // ------------------------------------------------------------------ client bytes

  /** Plaintext reads (static buffer): true when views of `chunk` wait in the server's socket. */
  private readonly onRawData = (chunk: Buffer): boolean => {
    this.onClientData(chunk);
    return (this.upstream?.socket.writableLength ?? 0) > 0;
  };

  private readonly onClientData = (chunk: Buffer): void => {
    if (this.state === 'closed') return;
    try {
      if (this.state === 'ready') this.relayClient(chunk);
      else this.parser.feed(chunk, (message) => this.onStartupMessage(message));
    } catch (error) {
      this.fail(error);
    }
  };

  private relayClient(chunk: Buffer): void {
    const upstream = this.upstream!.socket;
    this.relay!.feedClient(chunk);
    if (this.relay!.terminated) {
      this.endReason = 'client terminated';
      upstream.end();
      this.close('client terminated');
      return;
    }
    if (upstream.writableNeedDrain && !this.clientPausedBy.has('upstream')) {
      this.pauseClient('upstream');
      upstream.once('drain', () => this.resumeClient('upstream'));
    }
    if (this.recorder?.full && !this.clientPausedBy.has('recorder')) {
      this.pauseClient('recorder');
      this.recorder.whenDrained(() => this.resumeClient('recorder'));
    }
  }

  /** Reads from the server (static buffer): true when views of `chunk` wait in the client's socket. */
  private readonly onUpstreamData = (chunk: Buffer): boolean => {
    if (this.state !== 'ready') return false;
    const client = this.client;
    try {
      this.relay!.feedUpstream(chunk);
    } catch (error) {
      this.fail(error);
      return false;
    }
    if (client.writableNeedDrain && !this.upstreamPaused) {
      // A slow client slows the server: nothing more is read until the client caught up.
      const upstream = this.upstream!.socket;
      this.upstreamPaused = true;
      upstream.pause();
      client.once('drain', () => {
        this.upstreamPaused = false;
        upstream.resume();
      });
    }
    return client.writableLength > 0;
  };

  private pauseClient(reason: string): void {
    this.clientPausedBy.add(reason);
    this.client.pause();
  }

  private resumeClient(reason: string): void {
    this.clientPausedBy.delete(reason);
    if (this.clientPausedBy.size === 0 && this.state !== 'closed') this.client.resume();
  }

  // ------------------------------------------------------------------ startup

  private onStartupMessage(message: FrontendMessage): void {
    switch (message.type) {
      case 'sslRequest': {
        const context = this.server.target.tls;
        if (!context || this.tls || this.state !== 'startup') {
          this.raw.write(encodeMessages((w) => writeEncryptionResponse(w, false)));
          return;
        }
        this.raw.write(encodeMessages((w) => writeEncryptionResponse(w, true)));
        const secure = new TLSSocket(this.raw, { isServer: true, secureContext: context });
        secure.on('data', this.onClientData);
        secure.on('error', () => this.close('TLS error'));
        this.client = secure;
        this.tls = true;
        return;
      }
      case 'gssEncRequest':
        this.client.write(encodeMessages((w) => writeEncryptionResponse(w, false)));
        return;
      case 'cancelRequest':
        this.server.cancel(message.processId, message.secretKey);
        this.close('cancel request');
        return;
      case 'startup':
        this.onStartup(message);
        return;
      case 'authResponse':
        this.onAuthResponse(message.body);
        return;
      default:
        throw new PgProxyError('ERR_PGPROXY_PROTOCOL', `unexpected ${message.type} message during login`);
    }
  }

  private onStartup(message: StartupMessage): void {
    if (!this.tls && !this.server.target.allowPlaintext) {
      throw new PgProxyError(
        'ERR_PGPROXY_TLS_REQUIRED',
        'this Warden proxy accepts TLS connections only (use sslmode=require)',
      );
    }
    const replication = message.parameters.get('replication');
    if (
      replication !== undefined &&
      replication !== 'false' &&
      replication !== 'off' &&
      replication !== '0'
    ) {
      throw new PgProxyError(
        'ERR_PGPROXY_UNSUPPORTED',
        'replication connections are not supported through Warden',
      );
    }
    this.startup = message;
    const user = message.parameters.get('user') ?? '';
    this.state = 'lookup';
    this.server.ports.grants
      .lookup(this.server.target.name, user)
      .catch(() => undefined)
      .then((grant) => {
        if (this.state !== 'lookup') return;
        this.grant = grant;
        // An unknown user runs the same exchange against a fake verifier: no user enumeration.
        const verifier = grant
          ? parseScramVerifier(grant.verifier)
          : createMockScramVerifier(user, this.server.mockSecret);
        this.scram = new ScramServerSession({ verifier });
        this.state = 'auth';
        this.client.write(encodeMessages((w) => writeAuthenticationSasl(w, [SCRAM_SHA_256])));
      })
      .catch((error) => this.fail(error));
  }

  private onAuthResponse(body: Buffer): void {
    if (this.state !== 'auth' || !this.scram) {
      throw new PgProxyError('ERR_PGPROXY_PROTOCOL', 'authentication message out of order');
    }
    const user = this.startup!.parameters.get('user') ?? '';
    try {
      if (this.scram.authenticated) throw new Error('already authenticated');
      if (!this.clientFirstSeen) {
        const initial = decodeSaslInitialResponse(body);
        if (initial.mechanism !== SCRAM_SHA_256 || !initial.data)
          throw new Error('unsupported SASL mechanism');
        const serverFirst = this.scram.handleClientFirst(initial.data);
        this.clientFirstSeen = true;
        this.client.write(encodeMessages((w) => writeAuthenticationSaslContinue(w, serverFirst)));
        return;
      }
      const serverFinal = this.scram.handleClientFinal(body);
      if (!this.grant) throw new Error('unknown user');
      this.client.write(encodeMessages((w) => writeAuthenticationSaslFinal(w, serverFinal)));
    } catch (error) {
      this.server.logger.debug(
        { err: (error as Error).message, user: user.slice(0, 63) },
        'proxy login failed',
      );
      throw new PgProxyAuthError(user);
    }
    const database = this.startup!.parameters.get('database') ?? user;
    if (database !== this.grant.upstream.database) {
      throw new PgProxyError(
        'ERR_PGPROXY_DATABASE',
        `this grant reaches database "${this.grant.upstream.database}" only, not "${database.slice(0, 63)}"`,
      );
    }
    this.state = 'connecting';
    this.pauseClient('connecting');
    void this.connect();
  }

  private clientFirstSeen = false;

  private async connect(): Promise<void> {
    const grant = this.grant!;
    const catalogKey = `${grant.target}/${grant.upstream.database}`;
    const needCatalog = this.server.target.masker.config.columns.length > 0;
    let catalog: Catalog | undefined = needCatalog ? this.server.catalogs.get(catalogKey) : undefined;
    let snapshot = this.server.schemaSnapshots.get(catalogKey);
    // Read after login, pipelined: the masking catalog, the session's search_path (startup
    // options, role and database settings included), the guardrails' catalog.
    const queries: string[] = [];
    const maskingAt = needCatalog && !catalog ? queries.push(CATALOG_SQL) - 1 : -1;
    const pathAt = queries.push('SHOW search_path') - 1;
    const relationsAt = snapshot ? -1 : queries.push(relationsSql()) - 1;
    const namesAt = snapshot ? -1 : queries.push(ROUTINE_NAMES_SQL) - 1;
    let upstream: UpstreamConnection;
    try {
      upstream = await connectUpstream(
        {
          host: grant.upstream.host,
          port: grant.upstream.port,
          database: grant.upstream.database,
          user: grant.upstream.user,
          password: grant.upstream.password.reveal(),
          tls: grant.upstream.tls,
        },
        checkStartupParameters(this.startup!.parameters, (sql) =>
          this.server.target.guardrails.check(sql, { level: grant.level, groups: grant.groups }),
        ),
        { timeoutMs: this.server.handshakeTimeoutMs, initialQueries: queries },
      );
    } catch (error) {
      this.fail(error);
      return;
    }
    const masking = maskingAt >= 0 ? upstream.results[maskingAt] : undefined;
    if (masking?.error) {
      upstream.socket.destroy();
      this.fail(new PgProxyError('ERR_PGPROXY_UPSTREAM', `catalog query failed: ${masking.error}`));
      return;
    }
    if (this.state !== 'connecting') {
      upstream.socket.destroy();
      return;
    }
    if (masking) {
      catalog = buildCatalog(masking.rows, Date.now());
      this.server.catalogs.set(catalogKey, catalog);
    }
    if (!snapshot) {
      const ok = (at: number) => (upstream.results[at]?.error ? undefined : upstream.results[at]?.rows);
      snapshot = buildSchemaSnapshot(ok(relationsAt), ok(namesAt), this.server.clock());
      this.server.schemaSnapshots.set(catalogKey, snapshot);
    }
    const shownPath = upstream.results[pathAt];
    const guard = new SessionGuard({
      level: grant.level,
      groups: grant.groups,
      user: grant.upstream.user,
      searchPath: shownPath && !shownPath.error ? (shownPath.rows[0]?.[0] ?? undefined) : undefined,
      snapshot,
      clock: this.server.clock,
      onSchemaChange: () => this.server.schemaSnapshots.invalidate(catalogKey),
    });
    // The logged-in connection moves to a socket that reads into a reusable buffer.
    upstream.socket = adoptWithStaticReads(upstream.socket, this.onUpstreamData);
    this.upstream = upstream;
    const recorder = new SessionRecorder(
      this.server.ports.sessions,
      {
        id: `s_${randomBytes(9).toString('base64url')}`,
        protocol: 'postgres',
        grantId: grant.grantId,
        requester: grant.requester,
        target: grant.target,
        level: grant.level,
        login: grant.upstream.user,
        clientAddress: `${this.raw.remoteAddress ?? '?'}:${this.raw.remotePort ?? 0}`,
        startedAt: Date.now(),
        endedAt: null,
        endReason: null,
        summary: {},
      },
      { onError: (error) => this.server.logger.error({ err: (error as Error).message }, 'recording failed') },
    );
    this.recorder = recorder;
    const params = this.startup!.parameters;
    const connected = {
      user: params.get('user') ?? '',
      database: grant.upstream.database,
      application: params.get('application_name') ?? '',
      tls: this.tls,
    };
    recorder.record('connect', connected);
    this.audit('postgres.session_start', {
      client: recorder.session.clientAddress,
      database: connected.database,
      application: connected.application.slice(0, 64),
      tls: connected.tls,
    });
    this.relay = new PgRelay({
      guardrails: this.server.target.guardrails,
      masker: this.server.target.masker,
      level: grant.level,
      groups: grant.groups,
      guard,
      ...(this.server.target.levels ? { levels: this.server.target.levels } : {}),
      recordRows: this.server.target.recordRows,
      catalog,
      toUpstream: upstream.socket,
      toClient: this.client,
      record: (kind, data, at) => recorder.record(kind, data, at),
      onBlocked: this.onBlocked,
      onUnknownTable: () => this.server.catalogs.invalidate(catalogKey),
      clientEncoding: upstream.parameterStatus
        .map((status) => decodeParameterStatus(status))
        .findLast((status) => status.name === 'client_encoding')?.value,
      ...(this.server.ports.reviews ? this.reviewOptions(grant, recorder.session.id) : {}),
    });
    const socket = upstream.socket;
    socket.on('error', () => this.close('database connection error'));
    socket.on('close', () => {
      if (this.state === 'ready') {
        this.endReason = 'database closed the connection';
        this.client.end();
      }
      this.close(this.endReason);
    });
    clearTimeout(this.handshakeTimer);
    this.client.write(
      encodeMessages((w) => {
        writeAuthenticationOk(w);
        for (const status of upstream.parameterStatus) w.writeBytes(status);
        for (const notice of upstream.notices) w.writeBytes(notice);
        writeBackendKeyData(w, this.processId, this.secretKey);
        writeReadyForQuery(w, upstream.status);
      }),
    );
    this.state = 'ready';
    this.armExpiry();
    this.resumeClient('connecting');
  }

  /** A refused statement, audited when it is refused (up to {@link MAX_AUDITED_BLOCKS}). */
  private readonly onBlocked = (blocked: BlockedStatement): void => {
    if (++this.refusedStatements > MAX_AUDITED_BLOCKS) return;
    this.audit('postgres.statement_blocked', {
      statement: blocked.statement.slice(0, MAX_AUDITED_SQL),
      rule: blocked.rule,
      ...(blocked.review ? { review: blocked.review } : {}),
    });
  };

  /**
   * Appends an audit entry about this session's grant (as the SSH proxy does); a failure is logged,
   * never the session's end.
   */
  private audit(action: string, data: Record<string, unknown>): void {
    const grant = this.grant!;
    this.server.ports.audit
      .record(grant.requester, action, grant.grantId, {
        target: grant.target,
        account: grant.upstream.user,
        ...(this.recorder ? { session: this.recorder.session.id } : {}),
        ...data,
      })
      .catch((error) => this.server.logger.error({ err: (error as Error).message }, 'audit failed'));
  }

  /** Statement review: a held statement stops reading the client until its outcome. */
  private reviewOptions(grant: ProxiedGrant, sessionId: string) {
    return {
      reviewer: this.server.ports.reviews!,
      review: { grantId: grant.grantId, sessionId },
      onHold: (holding: boolean) => {
        if (holding) this.pauseClient('review');
        else if (this.relay!.terminated) {
          this.endReason = 'client terminated';
          this.upstream!.socket.end();
          this.close('client terminated');
        } else this.resumeClient('review');
      },
      onFail: (error: unknown) => this.fail(error),
    };
  }

  private armExpiry(): void {
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    const grant = this.grant;
    if (!grant || this.state === 'closed') return;
    const left = grant.expiresAt - this.server.clock();
    if (left <= 0) {
      this.terminate('terminating connection: the grant expired', 'grant expired');
      return;
    }
    this.expiryTimer = setTimeout(() => this.armExpiry(), Math.min(left, MAX_TIMER));
    this.expiryTimer.unref();
  }

  // ------------------------------------------------------------------ endings

  private fail(error: unknown): void {
    if (this.state === 'closed') return;
    let notice: NoticeInput;
    if (isProtocolError(error)) {
      notice = { severity: 'FATAL', code: '08P01', message: `invalid frontend message: ${error.message}` };
      this.endReason = `protocol error (${error.code})`;
    } else if (isPgProxyError(error)) {
      notice = { severity: 'FATAL', code: error.sqlState, message: error.message };
      this.endReason = `${error.code}`;
    } else {
      notice = { severity: 'FATAL', code: 'XX000', message: 'internal proxy error' };
      this.endReason = 'internal error';
      this.server.logger.error({ err: (error as Error)?.message }, 'proxy session failed');
    }
    this.sendFatal(notice);
    this.close(this.endReason);
  }

  private sendFatal(notice: NoticeInput): void {
    try {
      this.client.end(encodeMessages((w) => writeErrorResponse(w, notice)));
    } catch {
      this.client.destroy();
    }
  }

  private close(reason: string): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    clearTimeout(this.handshakeTimer);
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    // Give a FATAL message queued by end() a moment to leave before the socket is torn down.
    const client = this.client;
    if (client.writableEnded) setTimeout(() => client.destroy(), 1000).unref();
    else client.destroy();
    const upstream = this.upstream?.socket;
    // A Terminate passed on is let out before the connection goes.
    if (upstream?.writableEnded) setTimeout(() => upstream.destroy(), 1000).unref();
    else upstream?.destroy();
    this.server.forget(this);
    const relay = this.relay;
    relay?.close();
    const stats = relay?.stats;
    if (this.recorder) {
      this.audit('postgres.session_end', {
        reason,
        statements: stats?.statements ?? 0,
        blocked: stats?.blocked ?? 0,
        ...(this.refusedStatements > MAX_AUDITED_BLOCKS
          ? { blocked_not_audited: this.refusedStatements - MAX_AUDITED_BLOCKS }
          : {}),
      });
    }
    const done = this.recorder ? this.recorder.end(reason, stats ? { ...stats } : {}) : Promise.resolve();
    void done.finally(() => this.resolveClosed());
  }
}
