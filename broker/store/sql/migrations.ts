/** The store's schema: ordered migrations, each run once and recorded in `warden_meta`. */
import { sql } from 'kysely';
import type { StoreKind } from '../store.ts';
import type { Db } from './tables.ts';

/** The ordered schema migrations; each runs once, recorded in warden_meta. */
const MIGRATIONS: ((db: Db, kind: StoreKind) => Promise<void>)[] = [
  async (db) => {
    await db.schema
      .createTable('warden_requests')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('parent_id', 'text')
      .addColumn('requester', 'text', (c) => c.notNull())
      .addColumn('target', 'text', (c) => c.notNull())
      .addColumn('level', 'text', (c) => c.notNull())
      .addColumn('duration_ms', 'bigint', (c) => c.notNull())
      .addColumn('reason', 'text', (c) => c.notNull())
      .addColumn('state', 'text', (c) => c.notNull())
      .addColumn('rule', 'text', (c) => c.notNull())
      .addColumn('decision', 'text', (c) => c.notNull())
      .addColumn('break_glass', 'integer', (c) => c.notNull())
      .addColumn('source', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('pending_until', 'bigint', (c) => c.notNull())
      .addColumn('decided_at', 'bigint')
      .addColumn('activated_at', 'bigint')
      .addColumn('expires_at', 'bigint')
      .addColumn('ended_at', 'bigint')
      .addColumn('end_reason', 'text')
      .addColumn('ended_by', 'text')
      .addColumn('reminded_at', 'bigint')
      .addColumn('expiring_notified_at', 'bigint')
      .addColumn('error', 'text')
      .addColumn('version', 'integer', (c) => c.notNull())
      .addColumn('meta', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createIndex('warden_requests_state')
      .on('warden_requests')
      .columns(['state', 'expires_at'])
      .execute();
    await db.schema
      .createIndex('warden_requests_requester')
      .on('warden_requests')
      .columns(['requester', 'created_at'])
      .execute();
    await db.schema
      .createTable('warden_approvals')
      .addColumn('request_id', 'text', (c) => c.notNull())
      .addColumn('approver', 'text', (c) => c.notNull())
      .addColumn('verdict', 'text', (c) => c.notNull())
      .addColumn('reason', 'text')
      .addColumn('at', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('warden_approvals_pk', ['request_id', 'approver'])
      .execute();
    await db.schema
      .createTable('warden_credentials')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('request_id', 'text', (c) => c.notNull())
      .addColumn('target', 'text', (c) => c.notNull())
      .addColumn('provider', 'text', (c) => c.notNull())
      .addColumn('handle', 'text', (c) => c.notNull())
      .addColumn('state', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('expires_at', 'bigint', (c) => c.notNull())
      .addColumn('revoked_at', 'bigint')
      .addColumn('attempts', 'integer', (c) => c.notNull())
      .addColumn('next_attempt_at', 'bigint')
      .addColumn('last_error', 'text')
      .addColumn('lease_owner', 'text')
      .addColumn('lease_until', 'bigint')
      .execute();
    await db.schema
      .createIndex('warden_credentials_state')
      .on('warden_credentials')
      .columns(['state', 'expires_at'])
      .execute();
    await db.schema
      .createIndex('warden_credentials_request')
      .on('warden_credentials')
      .columns(['request_id'])
      .execute();
    await db.schema
      .createTable('warden_audit')
      .addColumn('seq', 'bigint', (c) => c.primaryKey())
      .addColumn('at', 'bigint', (c) => c.notNull())
      .addColumn('actor', 'text', (c) => c.notNull())
      .addColumn('action', 'text', (c) => c.notNull())
      .addColumn('subject', 'text', (c) => c.notNull())
      .addColumn('data', 'text', (c) => c.notNull())
      .addColumn('prev_hash', 'text', (c) => c.notNull())
      .addColumn('hash', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('warden_once')
      .addColumn('key', 'text', (c) => c.primaryKey())
      .addColumn('expires_at', 'bigint', (c) => c.notNull())
      .execute();
  },
  // 2: proxied sessions and their recordings.
  async (db) => {
    await db.schema
      .createTable('warden_sessions')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('request_id', 'text', (c) => c.notNull())
      .addColumn('target', 'text', (c) => c.notNull())
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('requester', 'text', (c) => c.notNull())
      .addColumn('login', 'text', (c) => c.notNull())
      .addColumn('client', 'text', (c) => c.notNull())
      .addColumn('started_at', 'bigint', (c) => c.notNull())
      .addColumn('ended_at', 'bigint')
      .addColumn('end_reason', 'text')
      .addColumn('recording', 'text')
      .addColumn('meta', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createIndex('warden_sessions_request')
      .on('warden_sessions')
      .columns(['request_id', 'started_at'])
      .execute();
  },
  // 3: proxied Postgres sessions and their timelines, in chunks.
  async (db) => {
    await db.schema
      .createTable('warden_pg_sessions')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('protocol', 'text', (c) => c.notNull())
      .addColumn('grant_id', 'text', (c) => c.notNull())
      .addColumn('requester', 'text', (c) => c.notNull())
      .addColumn('target', 'text', (c) => c.notNull())
      .addColumn('level', 'text', (c) => c.notNull())
      .addColumn('client_address', 'text', (c) => c.notNull())
      .addColumn('started_at', 'bigint', (c) => c.notNull())
      .addColumn('ended_at', 'bigint')
      .addColumn('end_reason', 'text')
      .addColumn('summary', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createIndex('warden_pg_sessions_started')
      .on('warden_pg_sessions')
      .columns(['started_at'])
      .execute();
    await db.schema
      .createTable('warden_pg_session_chunks')
      .addColumn('session_id', 'text', (c) => c.notNull())
      .addColumn('first_seq', 'integer', (c) => c.notNull())
      .addColumn('last_seq', 'integer', (c) => c.notNull())
      .addColumn('at', 'bigint', (c) => c.notNull())
      .addColumn('events', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('warden_pg_session_chunks_pk', ['session_id', 'first_seq'])
      .execute();
  },
  // 4: SCRAM verifiers of proxy passwords, so proxied grants survive a restart (never a password).
  async (db) => {
    await db.schema
      .createTable('warden_proxy_verifiers')
      .addColumn('target', 'text', (c) => c.notNull())
      .addColumn('user_name', 'text', (c) => c.notNull())
      .addColumn('grant_id', 'text', (c) => c.notNull())
      .addColumn('verifier', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('warden_proxy_verifiers_pk', ['target', 'user_name'])
      .execute();
    await db.schema
      .createIndex('warden_proxy_verifiers_grant')
      .on('warden_proxy_verifiers')
      .columns(['grant_id'])
      .execute();
  },
  // 5: SSH recordings in pieces, so no single write of a long session blocks the proxy.
  async (db) => {
    await db.schema
      .createTable('warden_ssh_recording_chunks')
      .addColumn('session_id', 'text', (c) => c.notNull())
      .addColumn('seq', 'integer', (c) => c.notNull())
      .addColumn('data', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('warden_ssh_recording_chunks_pk', ['session_id', 'seq'])
      .execute();
  },
  // 6: statements held by the Postgres proxy for review.
  async (db) => {
    await db.schema
      .createTable('warden_reviews')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('grant_id', 'text', (c) => c.notNull())
      .addColumn('requester', 'text', (c) => c.notNull())
      .addColumn('target', 'text', (c) => c.notNull())
      .addColumn('level', 'text', (c) => c.notNull())
      .addColumn('session_id', 'text', (c) => c.notNull())
      .addColumn('statement', 'text', (c) => c.notNull())
      .addColumn('rule', 'text', (c) => c.notNull())
      .addColumn('message', 'text', (c) => c.notNull())
      .addColumn('state', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('deadline', 'bigint', (c) => c.notNull())
      .addColumn('decided_at', 'bigint')
      .addColumn('decided_by', 'text')
      .addColumn('decision_reason', 'text')
      .addColumn('version', 'integer', (c) => c.notNull())
      .addColumn('meta', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createIndex('warden_reviews_state')
      .on('warden_reviews')
      .columns(['state', 'created_at'])
      .execute();
  },
  // 7: SSH recordings as pieces of binary frames, stored as written (rendered as asciicast on read).
  async (db, kind) => {
    await db.schema
      .createTable('warden_ssh_recording_frames')
      .addColumn('session_id', 'text', (c) => c.notNull())
      .addColumn('seq', 'integer', (c) => c.notNull())
      .addColumn('data', kind === 'postgres' ? 'bytea' : 'blob', (c) => c.notNull())
      .addPrimaryKeyConstraint('warden_ssh_recording_frames_pk', ['session_id', 'seq'])
      .execute();
  },
  // 8: when the process holding a reviewed statement last said it still waits.
  async (db) => {
    await db.schema.alterTable('warden_reviews').addColumn('held_at', 'bigint').execute();
  },
  // 9: what an ending grant becomes once its credentials are gone (`expired` | `revoked`).
  async (db) => {
    await db.schema.alterTable('warden_requests').addColumn('end_state', 'text').execute();
    await db
      .updateTable('warden_requests')
      .set({ end_state: sql`state` })
      .where('state', 'in', ['expired', 'revoked'])
      .execute();
  },
  // 10: audit entries say what made the call, and carry the audit key's signature (docs/audit.md).
  async (db) => {
    await db.schema.alterTable('warden_audit').addColumn('via', 'text').execute();
    await db.schema.alterTable('warden_audit').addColumn('key_id', 'text').execute();
    await db.schema.alterTable('warden_audit').addColumn('sig', 'text').execute();
  },
  // 11: one session model for every protocol (see migrateToOneSessionModel).
  migrateToOneSessionModel,
  // 12: chat message references, so any process can update a request's messages and find its thread.
  async (db) => {
    await db.schema
      .createTable('warden_chat_messages')
      .addColumn('chat', 'text', (c) => c.notNull())
      .addColumn('subject', 'text', (c) => c.notNull())
      .addColumn('subject_id', 'text', (c) => c.notNull())
      .addColumn('ref', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('warden_chat_messages_pk', ['chat', 'subject', 'subject_id'])
      .execute();
    await db.schema
      .createIndex('warden_chat_messages_ref')
      .unique()
      .on('warden_chat_messages')
      .columns(['chat', 'ref'])
      .execute();
  },
  // 13: conversation references for proactive 1:1 messages (Teams), by chat user and by person.
  async (db) => {
    await db.schema
      .createTable('warden_chat_conversations')
      .addColumn('chat', 'text', (c) => c.notNull())
      .addColumn('user_id', 'text', (c) => c.notNull())
      .addColumn('person_id', 'text', (c) => c.notNull())
      .addColumn('conversation_id', 'text', (c) => c.notNull())
      .addColumn('service_url', 'text', (c) => c.notNull())
      .addColumn('tenant_id', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('warden_chat_conversations_pk', ['chat', 'user_id'])
      .execute();
    await db.schema
      .createIndex('warden_chat_conversations_person')
      .on('warden_chat_conversations')
      .columns(['chat', 'person_id', 'updated_at'])
      .execute();
  },
];

/** The schema version that moved every protocol's sessions into one table (tests start before it). */
export const ONE_SESSION_MODEL_VERSION = MIGRATIONS.indexOf(migrateToOneSessionModel) + 1;

/**
 * Migration 9. Postgres sessions (`warden_pg_sessions`, timelines in `warden_pg_session_chunks`)
 * and SSH sessions (`warden_sessions`, recordings in `warden_ssh_recording_frames`, or as text
 * before migration 7) become one `warden_sessions` table with a `protocol` column, its timelines
 * in `warden_session_events` and its recordings in `warden_session_frames`. The two big tables are
 * renamed, not copied. SSH sessions took no level: theirs is their grant's. Text recordings written
 * in pieces (migrations 5 to 7) are joined into the session's `recording` column, as reading them
 * did. Postgres sessions took no login either: theirs stays empty.
 */
async function migrateToOneSessionModel(db: Db): Promise<void> {
  await db.schema.alterTable('warden_sessions').renameTo('warden_ssh_sessions_v8').execute();
  // Index names are per schema on PostgreSQL: the old ones go before the new table takes them.
  await db.schema.dropIndex('warden_sessions_request').execute();
  await db.schema
    .createTable('warden_sessions')
    .addColumn('id', 'text', (c) => c.notNull())
    .addColumn('protocol', 'text', (c) => c.notNull())
    .addColumn('grant_id', 'text', (c) => c.notNull())
    .addColumn('requester', 'text', (c) => c.notNull())
    .addColumn('target', 'text', (c) => c.notNull())
    .addColumn('level', 'text', (c) => c.notNull())
    .addColumn('login', 'text', (c) => c.notNull())
    .addColumn('client_address', 'text', (c) => c.notNull())
    .addColumn('started_at', 'bigint', (c) => c.notNull())
    .addColumn('ended_at', 'bigint')
    .addColumn('end_reason', 'text')
    .addColumn('summary', 'text', (c) => c.notNull())
    .addColumn('recording', 'text')
    .addPrimaryKeyConstraint('warden_sessions_id_pk', ['id'])
    .execute();
  await sql`
    insert into warden_sessions (id, protocol, grant_id, requester, target, level, login,
      client_address, started_at, ended_at, end_reason, summary, recording)
    select id, protocol, grant_id, requester, target, level, '', client_address, started_at,
      ended_at, end_reason, summary, null
    from warden_pg_sessions`.execute(db);
  await sql`
    insert into warden_sessions (id, protocol, grant_id, requester, target, level, login,
      client_address, started_at, ended_at, end_reason, summary, recording)
    select s.id, s.kind, s.request_id, s.requester, s.target, coalesce(r.level, ''), s.login,
      s.client, s.started_at, s.ended_at, s.end_reason, s.meta, s.recording
    from warden_ssh_sessions_v8 s left join warden_requests r on r.id = s.request_id`.execute(db);
  const pieced = await sql<{ session_id: string }>`
    select distinct session_id from warden_ssh_recording_chunks`.execute(db);
  for (const { session_id } of pieced.rows) {
    const pieces = await sql<{ data: string }>`
      select data from warden_ssh_recording_chunks where session_id = ${session_id} order by seq`.execute(db);
    await db
      .updateTable('warden_sessions')
      .set({ recording: pieces.rows.map((piece) => piece.data).join('') })
      .where('id', '=', session_id)
      .where('recording', 'is', null)
      .execute();
  }
  await db.schema.dropTable('warden_ssh_sessions_v8').execute();
  await db.schema.dropTable('warden_pg_sessions').execute();
  await db.schema.dropTable('warden_ssh_recording_chunks').execute();
  await db.schema.alterTable('warden_pg_session_chunks').renameTo('warden_session_events').execute();
  await db.schema.alterTable('warden_ssh_recording_frames').renameTo('warden_session_frames').execute();
  await db.schema
    .createIndex('warden_sessions_started')
    .on('warden_sessions')
    .columns(['started_at'])
    .execute();
  await db.schema
    .createIndex('warden_sessions_grant')
    .on('warden_sessions')
    .columns(['grant_id', 'started_at'])
    .execute();
}

/** The schema version the migrations lead to. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/**
 * Runs the migrations not yet applied, under a lock on PostgreSQL so replicas migrate once.
 * `version` stops earlier (tests build stores of an older shape).
 */
export async function migrateSchema(db: Db, kind: StoreKind, version = SCHEMA_VERSION): Promise<void> {
  await db.schema
    .createTable('warden_meta')
    .ifNotExists()
    .addColumn('key', 'text', (c) => c.primaryKey())
    .addColumn('value', 'text', (c) => c.notNull())
    .execute();
  await db.transaction().execute(async (trx) => {
    if (kind === 'postgres') await sql`select pg_advisory_xact_lock(7467001)`.execute(trx);
    const row = await trx
      .selectFrom('warden_meta')
      .select('value')
      .where('key', '=', 'schema_version')
      .executeTakeFirst();
    const current = row ? Number(row.value) : 0;
    for (let v = current; v < version; v++) await MIGRATIONS[v]!(trx, kind);
    if (current < version) {
      await trx
        .insertInto('warden_meta')
        .values({ key: 'schema_version', value: String(version) })
        .onConflict((oc) => oc.column('key').doUpdateSet({ value: String(version) }))
        .execute();
    }
  });
}
