/** Proxied Postgres sessions and their timelines on SQL. */
import type { SessionEventRecord, SessionFilter, SessionRecord, SessionStore } from '../store.ts';
import type { Db, PgSessionRow } from './tables.ts';

function fromSessionRow(row: PgSessionRow): SessionRecord {
  return {
    id: row.id,
    protocol: row.protocol,
    grantId: row.grant_id,
    requester: row.requester,
    target: row.target,
    level: row.level,
    clientAddress: row.client_address,
    startedAt: Number(row.started_at),
    endedAt: row.ended_at === null ? null : Number(row.ended_at),
    endReason: row.end_reason,
    summary: JSON.parse(row.summary) as Record<string, unknown>,
  };
}

export function createSessionQueries(db: Db): SessionStore {
  return {
    async insertSession(session: SessionRecord): Promise<void> {
      await db
        .insertInto('warden_pg_sessions')
        .values({
          id: session.id,
          protocol: session.protocol,
          grant_id: session.grantId,
          requester: session.requester,
          target: session.target,
          level: session.level,
          client_address: session.clientAddress,
          started_at: session.startedAt,
          ended_at: session.endedAt,
          end_reason: session.endReason,
          summary: JSON.stringify(session.summary),
        })
        .execute();
    },

    async endSession(
      id: string,
      end: { endedAt: number; endReason: string; summary: Record<string, unknown> },
    ): Promise<void> {
      await db
        .updateTable('warden_pg_sessions')
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
          .insertInto('warden_pg_session_chunks')
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

    async listSessions(filter: SessionFilter): Promise<SessionRecord[]> {
      let query = db.selectFrom('warden_pg_sessions').selectAll();
      if (filter.target) query = query.where('target', '=', filter.target);
      if (filter.requester) query = query.where('requester', '=', filter.requester);
      if (filter.grantId) query = query.where('grant_id', '=', filter.grantId);
      const rows = await query
        .orderBy('started_at', 'desc')
        .limit(filter.limit ?? 100)
        .execute();
      return rows.map(fromSessionRow);
    },

    async getSession(id: string): Promise<SessionRecord | undefined> {
      const row = await db
        .selectFrom('warden_pg_sessions')
        .selectAll()
        .where('id', '=', id)
        .executeTakeFirst();
      return row ? fromSessionRow(row) : undefined;
    },

    async listSessionEvents(sessionId: string): Promise<SessionEventRecord[]> {
      const rows = await db
        .selectFrom('warden_pg_session_chunks')
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
  };
}
