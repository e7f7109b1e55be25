/**
 * Proxied sessions of every protocol on SQL (one table, `protocol` tells them apart), with their
 * timelines (events, written in chunks) and their recordings (frames, written in pieces).
 */
import type { SessionEnd, SessionEventRecord, SessionRecord } from '../../ports/proxy.ts';
import type { SessionFilter, SessionStore } from '../store.ts';
import { type Db, num, numOrNull, type SessionRow } from './tables.ts';

/** Most sessions one list returns. */
const MAX_LIST = 1000;

/** The columns of a session record (the legacy `recording` text is read on its own). */
const SESSION_COLUMNS = [
  'id',
  'protocol',
  'grant_id',
  'requester',
  'target',
  'level',
  'login',
  'client_address',
  'started_at',
  'ended_at',
  'end_reason',
  'summary',
] as const;

function fromSessionRow(row: Omit<SessionRow, 'recording'>): SessionRecord {
  return {
    id: row.id,
    protocol: row.protocol as SessionRecord['protocol'],
    grantId: row.grant_id,
    requester: row.requester,
    target: row.target,
    level: row.level,
    login: row.login,
    clientAddress: row.client_address,
    startedAt: num(row.started_at),
    endedAt: numOrNull(row.ended_at),
    endReason: row.end_reason,
    summary: JSON.parse(row.summary) as Record<string, unknown>,
  };
}

export function createSessionQueries(db: Db): SessionStore {
  return {
    async insertSession(session: SessionRecord): Promise<void> {
      await db
        .insertInto('warden_sessions')
        .values({
          id: session.id,
          protocol: session.protocol,
          grant_id: session.grantId,
          requester: session.requester,
          target: session.target,
          level: session.level,
          login: session.login,
          client_address: session.clientAddress,
          started_at: session.startedAt,
          ended_at: session.endedAt,
          end_reason: session.endReason,
          summary: JSON.stringify(session.summary),
          recording: null,
        })
        .execute();
    },

    async endSession(id: string, end: SessionEnd): Promise<void> {
      await db
        .updateTable('warden_sessions')
        .set({ ended_at: end.endedAt, end_reason: end.endReason, summary: JSON.stringify(end.summary) })
        .where('id', '=', id)
        .execute();
    },

    async appendSessionEvents(events: readonly SessionEventRecord[]): Promise<void> {
      const bySession = new Map<string, SessionEventRecord[]>();
      for (const event of events) {
        const list = bySession.get(event.sessionId);
        if (list) list.push(event);
        else bySession.set(event.sessionId, [event]);
      }
      for (const [sessionId, list] of bySession) {
        await db
          .insertInto('warden_session_events')
          .values({
            session_id: sessionId,
            first_seq: list[0]!.seq,
            last_seq: list[list.length - 1]!.seq,
            at: list[0]!.at,
            events: JSON.stringify(list.map((e) => [e.seq, e.at, e.kind, e.data])),
          })
          .execute();
      }
    },

    async appendSessionFrames(sessionId: string, seq: number, piece: Uint8Array): Promise<void> {
      await db
        .insertInto('warden_session_frames')
        // As a Buffer: node-postgres sends only Buffers as bytea (a bare Uint8Array would go as JSON).
        .values({
          session_id: sessionId,
          seq,
          data: Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength),
        })
        .execute();
    },

    async listSessions(filter: SessionFilter): Promise<SessionRecord[]> {
      let query = db.selectFrom('warden_sessions').select(SESSION_COLUMNS);
      if (filter.protocol) query = query.where('protocol', '=', filter.protocol);
      if (filter.target) query = query.where('target', '=', filter.target);
      if (filter.requester) query = query.where('requester', '=', filter.requester);
      if (filter.grantId) query = query.where('grant_id', '=', filter.grantId);
      const rows = await query
        .orderBy('started_at', 'desc')
        .orderBy('id', 'desc')
        .limit(Math.min(filter.limit ?? 100, MAX_LIST))
        .execute();
      return rows.map(fromSessionRow);
    },

    async getSession(id: string): Promise<SessionRecord | undefined> {
      const row = await db
        .selectFrom('warden_sessions')
        .select(SESSION_COLUMNS)
        .where('id', '=', id)
        .executeTakeFirst();
      return row ? fromSessionRow(row) : undefined;
    },

    async listSessionEvents(sessionId: string): Promise<SessionEventRecord[]> {
      const rows = await db
        .selectFrom('warden_session_events')
        .select('events')
        .where('session_id', '=', sessionId)
        .orderBy('first_seq')
        .execute();
      return rows.flatMap((row) =>
        (JSON.parse(row.events) as [number, number, string, Record<string, unknown>][]).map(
          ([seq, at, kind, data]) => ({
            sessionId,
            seq,
            at,
            kind,
            data,
          }),
        ),
      );
    },

    async readSessionFrames(sessionId: string): Promise<Uint8Array[]> {
      const rows = await db
        .selectFrom('warden_session_frames')
        .select('data')
        .where('session_id', '=', sessionId)
        .orderBy('seq')
        .execute();
      return rows.map((row) => row.data);
    },

    async readLegacyRecording(sessionId: string): Promise<string | null> {
      const row = await db
        .selectFrom('warden_sessions')
        .select('recording')
        .where('id', '=', sessionId)
        .executeTakeFirst();
      return row?.recording ?? null;
    },
  };
}
