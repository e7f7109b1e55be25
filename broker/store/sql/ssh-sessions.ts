/** Proxied SSH sessions and their recordings on SQL. */
import type { Selectable } from 'kysely';
import type { SshSessionRecord } from '../../model.ts';
import type { SshSessionStore } from '../store.ts';
import { type Db, num, numOrNull, type SshSessionRow } from './tables.ts';

function fromSshSessionRow(row: Partial<Selectable<SshSessionRow>>): SshSessionRecord {
  return {
    id: row.id!,
    requestId: row.request_id!,
    target: row.target!,
    kind: row.kind!,
    requester: row.requester!,
    login: row.login!,
    client: row.client!,
    startedAt: num(row.started_at),
    endedAt: numOrNull(row.ended_at),
    endReason: row.end_reason ?? null,
    recording: row.recording ?? null,
    meta: JSON.parse(row.meta ?? '{}'),
  };
}

export function createSshSessionQueries(db: Db): SshSessionStore {
  return {
    async insertSshSession(session: SshSessionRecord): Promise<void> {
      await db
        .insertInto('warden_sessions')
        .values({
          id: session.id,
          request_id: session.requestId,
          target: session.target,
          kind: session.kind,
          requester: session.requester,
          login: session.login,
          client: session.client,
          started_at: session.startedAt,
          ended_at: session.endedAt,
          end_reason: session.endReason,
          recording: session.recording,
          meta: JSON.stringify(session.meta),
        })
        .execute();
    },

    async finishSshSession(
      id: string,
      patch: Pick<SshSessionRecord, 'endedAt' | 'endReason' | 'recording' | 'meta'>,
    ): Promise<void> {
      await db
        .updateTable('warden_sessions')
        .set({
          ended_at: patch.endedAt,
          end_reason: patch.endReason,
          recording: patch.recording,
          meta: JSON.stringify(patch.meta),
        })
        .where('id', '=', id)
        .execute();
    },

    async getSshSession(id: string): Promise<SshSessionRecord | undefined> {
      const row = await db.selectFrom('warden_sessions').selectAll().where('id', '=', id).executeTakeFirst();
      if (!row) return undefined;
      const session = fromSshSessionRow(row);
      // Recordings stored as asciicast text: before migration 4, whole in the row; before migration 7,
      // in pieces. Later ones are frames (readSshRecording).
      if (session.recording === null && session.endedAt !== null) {
        const chunks = await db
          .selectFrom('warden_ssh_recording_chunks')
          .select('data')
          .where('session_id', '=', id)
          .orderBy('seq')
          .execute();
        if (chunks.length > 0) session.recording = chunks.map((c) => c.data).join('');
      }
      return session;
    },

    async appendSshRecording(id: string, seq: number, piece: Uint8Array): Promise<void> {
      await db
        .insertInto('warden_ssh_recording_frames')
        // As a Buffer: node-postgres sends only Buffers as bytea (a bare Uint8Array would go as JSON).
        .values({ session_id: id, seq, data: Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength) })
        .execute();
    },

    async readSshRecording(id: string): Promise<Uint8Array[]> {
      const rows = await db
        .selectFrom('warden_ssh_recording_frames')
        .select('data')
        .where('session_id', '=', id)
        .orderBy('seq')
        .execute();
      return rows.map((row) => row.data);
    },

    async listSshSessions(filter: { requestId?: string; limit?: number }): Promise<SshSessionRecord[]> {
      let q = db
        .selectFrom('warden_sessions')
        .select([
          'id',
          'request_id',
          'target',
          'kind',
          'requester',
          'login',
          'client',
          'started_at',
          'ended_at',
          'end_reason',
          'meta',
        ]);
      if (filter.requestId) q = q.where('request_id', '=', filter.requestId);
      const rows = await q
        .orderBy('started_at', 'desc')
        .limit(Math.min(filter.limit ?? 100, 1000))
        .execute();
      return rows.map(fromSshSessionRow);
    },
  };
}
