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
  // 9: audit entries say what made the call, and carry the audit key's signature (docs/audit.md).
  async (db) => {
    await db.schema.alterTable('warden_audit').addColumn('via', 'text').execute();
    await db.schema.alterTable('warden_audit').addColumn('key_id', 'text').execute();
    await db.schema.alterTable('warden_audit').addColumn('sig', 'text').execute();
  },
];

/** Runs the migrations not yet applied, under a lock on PostgreSQL so replicas migrate once. */
export async function migrateSchema(db: Db, kind: StoreKind): Promise<void> {
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
    for (let v = current; v < MIGRATIONS.length; v++) await MIGRATIONS[v]!(trx, kind);
    if (current < MIGRATIONS.length) {
      await trx
        .insertInto('warden_meta')
        .values({ key: 'schema_version', value: String(MIGRATIONS.length) })
        .onConflict((oc) => oc.column('key').doUpdateSet({ value: String(MIGRATIONS.length) }))
        .execute();
    }
  });
}
