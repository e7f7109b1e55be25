/**
 * The Postgres provider against a real PostgreSQL 15 with the README's admin: a non-superuser
 * CREATEROLE role (`warden`). Regression tests of issue 12: revocation that finishes with such an
 * admin, objects a grant created that must not outlive it, roles Warden did not mint, a
 * revocation that keeps failing, and a lost admin connection.
 */

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import type { ConfigInput } from '../../../../broker/config/schema.ts';
import type { PostgresIssuedCredential } from '../../../../broker/events/events.ts';
import type { AccessRequest, CredentialRecord } from '../../../../broker/model.ts';
import { PostgresCredential } from '../../../../broker/providers/postgres/credential.ts';
import {
  type BrokerFixture,
  buildTestConfig,
  createTargetDatabase,
  startBrokerFixture,
  TEST_ADMIN_USER,
  waitFor,
} from '../../../helpers/broker-fixture.ts';
import { createDatabase, execSql, type PgCluster, startPgCluster } from '../../../helpers/pg-cluster.ts';

const MARKER = 'warden___minted';

async function query<T extends pg.QueryResultRow>(
  cluster: PgCluster,
  database: string,
  text: string,
  params: unknown[] = [],
): Promise<T[]> {
  const client = new pg.Client({ connectionString: cluster.urlFor(database) });
  await client.connect();
  try {
    return (await client.query<T>(text, params)).rows;
  } finally {
    await client.end();
  }
}

async function loginAs(
  credential: PostgresIssuedCredential,
  database = credential.database,
): Promise<pg.Client> {
  const client = new pg.Client({
    host: credential.host,
    port: credential.port,
    database,
    user: credential.user,
    password: credential.password.reveal(),
  });
  client.on('error', () => {});
  await client.connect();
  return client;
}

function credentialOf(fx: BrokerFixture, request: AccessRequest): PostgresIssuedCredential {
  const event = fx.events.find((e) => e.type === 'grant.active' && e.request.id === request.id);
  if (event?.type !== 'grant.active' || !(event.credential instanceof PostgresCredential)) {
    throw new Error(`grant ${request.id} did not activate: ${request.state} ${request.error ?? ''}`);
  }
  return event.credential;
}

async function roleOf(cluster: PgCluster, name: string): Promise<{ rolcanlogin: boolean } | undefined> {
  return (
    await query<{ rolcanlogin: boolean }>(
      cluster,
      'postgres',
      'SELECT rolcanlogin FROM pg_roles WHERE rolname = $1',
      [name],
    )
  )[0];
}

const database = (fx: BrokerFixture) => {
  const target = fx.config.targets['app-db']!;
  if (target.kind !== 'postgres') throw new Error('postgres target');
  return target.admin.database;
};

/** Auto-approved grants (carol is on call) on every level of app-db. */
function openRules(): Partial<ConfigInput> {
  return {
    rules: [
      {
        name: 'any-level',
        targets: ['app-db'],
        duration: { default: '30m', max: '2h' },
        approvers: ['manager', { group: 'dba' }],
        auto_approve: { groups: ['oncall'] },
      },
    ],
  };
}

describe('postgres provider with a CREATEROLE admin', () => {
  let cluster: PgCluster;

  before(async () => {
    cluster = await startPgCluster();
  });
  after(async () => {
    await cluster?.stop();
  });

  it('the test admin is the README one: CREATEROLE, not a superuser', async () => {
    const fx = await startBrokerFixture('embedded', cluster);
    try {
      const [admin] = await query<{ rolsuper: boolean; rolcreaterole: boolean }>(
        cluster,
        'postgres',
        'SELECT rolsuper, rolcreaterole FROM pg_roles WHERE rolname = $1',
        [TEST_ADMIN_USER],
      );
      assert.deepEqual(admin, { rolsuper: false, rolcreaterole: true });
    } finally {
      await fx.close();
    }
  });

  describe('owned objects (drop, the default)', () => {
    let fx: BrokerFixture;
    before(async () => {
      fx = await startBrokerFixture('embedded', cluster);
      await execSql(
        cluster,
        database(fx),
        "CREATE SCHEMA sandbox; GRANT USAGE, CREATE ON SCHEMA sandbox TO PUBLIC; DO $$ BEGIN CREATE ROLE bystander LOGIN PASSWORD 'bystander'; EXCEPTION WHEN duplicate_object THEN NULL; END $$",
      );
    });
    after(() => fx?.close());

    it('revoking a grant that created a table, a sequence, a view and a SECURITY DEFINER function removes them all', async () => {
      const grant = await fx.app.broker.request({
        requester: 'carol',
        target: 'app-db',
        level: 'read',
        duration: '30m',
        reason: 'builds things',
        source: 'cli',
      });
      assert.equal(grant.state, 'active');
      const credential = credentialOf(fx, grant);
      const client = await loginAs(credential);
      await client.query(`
        CREATE TABLE sandbox.notes (id serial PRIMARY KEY, body text);
        CREATE SEQUENCE sandbox.counter;
        CREATE VIEW sandbox.invoice_view AS SELECT customer FROM public.invoices;
        CREATE FUNCTION sandbox.peek() RETURNS bigint LANGUAGE sql SECURITY DEFINER AS 'SELECT count(*) FROM public.invoices';
        CREATE FUNCTION sandbox.stamp() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN NEW.body := NEW.body || ''!''; RETURN NEW; END';
        CREATE TRIGGER stamp BEFORE INSERT ON sandbox.notes FOR EACH ROW EXECUTE FUNCTION sandbox.stamp();
      `);
      await client.end();
      const bystander = {
        ...credential,
        user: 'bystander',
        password: { reveal: () => 'bystander' },
      } as PostgresIssuedCredential;
      const other = await loginAs(bystander);
      assert.deepEqual((await other.query('SELECT sandbox.peek() AS n')).rows, [{ n: '2' }]);

      const revoked = await fx.app.broker.revoke(grant.id, { id: 'root', admin: true }, 'done building');
      assert.equal(revoked.state, 'revoked');
      assert.equal(await roleOf(cluster, credential.user), undefined);
      await assert.rejects(other.query('SELECT sandbox.peek()'), /does not exist/);
      await other.end();
      const left = await query(
        cluster,
        database(fx),
        "SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'sandbox' UNION ALL SELECT proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'sandbox'",
      );
      assert.deepEqual(left, []);
      const audit = await fx.store.readAudit({ limit: 1000 });
      const entry = audit.find((e) => e.action === 'credential.revoked' && e.subject === grant.id);
      assert.ok(entry, 'credential.revoked is audited');
      const acting = entry.data.acting_objects_removed as string[];
      assert.ok(acting.includes('function sandbox.peek()'), acting.join('; '));
      assert.ok(acting.includes('view sandbox.invoice_view'), acting.join('; '));
      assert.ok(
        acting.some((a) => a.startsWith('trigger stamp on table sandbox.notes')),
        acting.join('; '),
      );
      assert.ok(!acting.some((a) => a.includes('sandbox.counter')), 'a plain sequence does not act');
      assert.equal(entry.data.owned_objects_policy, 'drop');
      assert.ok((entry.data.owned_objects as number) >= 6);
    });

    it('objects a grant created in another database of the server are dropped there too', async () => {
      const other = await createDatabase(cluster, 'other');
      await execSql(cluster, other, 'GRANT CREATE ON SCHEMA public TO PUBLIC');
      const grant = await fx.app.broker.request({
        requester: 'carol',
        target: 'app-db',
        level: 'read',
        duration: '30m',
        reason: 'wanders off',
        source: 'cli',
      });
      const credential = credentialOf(fx, grant);
      const client = await loginAs(credential, other);
      await client.query('CREATE TABLE stash (x int)');
      await client.end();
      const revoked = await fx.app.broker.revoke(grant.id, { id: 'root', admin: true });
      assert.equal(revoked.state, 'revoked');
      assert.equal(await roleOf(cluster, credential.user), undefined);
      assert.deepEqual(await query(cluster, other, "SELECT 1 FROM pg_class WHERE relname = 'stash'"), []);
    });
  });

  describe('owned objects reassigned', () => {
    let fx: BrokerFixture;
    before(async () => {
      await execSql(
        cluster,
        'postgres',
        'DO $$ BEGIN CREATE ROLE app_keeper NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$; GRANT app_keeper TO warden',
      );
      const probe = await createTargetDatabase(cluster);
      const base = buildTestConfig(cluster, probe);
      const target = (base.targets as Record<string, Record<string, unknown>>)['app-db']!;
      fx = await startBrokerFixture('embedded', cluster, {
        targets: {
          'app-db': { ...target, owned_objects: { reassign_to: 'app_keeper' } },
        } as unknown as ConfigInput['targets'],
      });
      await execSql(
        cluster,
        database(fx),
        "CREATE TABLE invoices (customer text); INSERT INTO invoices VALUES ('acme'); CREATE SCHEMA keep; GRANT USAGE, CREATE ON SCHEMA keep TO PUBLIC",
      );
    });
    after(() => fx?.close());

    it('hands tables to the configured role and still drops what would act after the grant', async () => {
      const grant = await fx.app.broker.request({
        requester: 'carol',
        target: 'app-db',
        level: 'read',
        duration: '30m',
        reason: 'keeps a table',
        source: 'cli',
      });
      const credential = credentialOf(fx, grant);
      const client = await loginAs(credential);
      await client.query(`
        CREATE TABLE keep.results (n int);
        CREATE FUNCTION keep.leak() RETURNS bigint LANGUAGE sql SECURITY DEFINER AS 'SELECT count(*) FROM public.invoices';
        CREATE FUNCTION keep.plain(int) RETURNS int LANGUAGE sql AS 'SELECT $1 + 1';
        CREATE VIEW keep.window_on AS SELECT customer FROM public.invoices;
        ALTER DEFAULT PRIVILEGES IN SCHEMA keep GRANT SELECT ON TABLES TO PUBLIC;
      `);
      await client.end();
      const revoked = await fx.app.broker.revoke(grant.id, { id: 'root', admin: true });
      assert.equal(revoked.state, 'revoked', revoked.error ?? '');
      assert.equal(await roleOf(cluster, credential.user), undefined);
      const rows = await query<{ name: string; owner: string }>(
        cluster,
        database(fx),
        `SELECT c.relname AS name, pg_get_userbyid(c.relowner) AS owner FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'keep'
         UNION ALL SELECT p.proname, pg_get_userbyid(p.proowner) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'keep' ORDER BY 1`,
      );
      assert.deepEqual(rows, [
        { name: 'plain', owner: 'app_keeper' },
        { name: 'results', owner: 'app_keeper' },
      ]);
      const acl = await query(
        cluster,
        database(fx),
        "SELECT 1 FROM pg_default_acl d JOIN pg_namespace n ON n.oid = d.defaclnamespace WHERE n.nspname = 'keep'",
      );
      assert.deepEqual(acl, [], 'default privileges of the grant are gone');
      const entry = (await fx.store.readAudit({ limit: 1000 })).find(
        (e) => e.action === 'credential.revoked' && e.subject === grant.id,
      )!;
      assert.equal(entry.data.owned_objects_policy, 'reassign_to app_keeper');
      const acting = entry.data.acting_objects_removed as string[];
      assert.ok(
        acting.includes('function keep.leak()') && acting.includes('view keep.window_on'),
        acting.join('; '),
      );
      assert.ok(
        acting.some((a) => a.startsWith('default privileges')),
        acting.join('; '),
      );
    });
  });

  describe('roles Warden did not mint', () => {
    let fx: BrokerFixture;
    before(async () => {
      fx = await startBrokerFixture('embedded', cluster);
    });
    after(() => fx?.close());

    it('a hand-made warden_reporting, a forged mark and the admin survive reconciliation; a recorded leftover does not', async () => {
      // A leftover of the old bug: the store says revoked, the role is still there with its mark.
      const grant = await fx.app.broker.request({
        requester: 'carol',
        target: 'app-db',
        level: 'read',
        duration: '30m',
        reason: 'leftover',
        source: 'cli',
      });
      const leftover = credentialOf(fx, grant).user;
      const [credential] = await fx.store.listCredentials({ requestId: grant.id });
      await fx.store.updateCredential(credential!.id, { state: 'revoked', revokedAt: Date.now() });
      await execSql(
        cluster,
        'postgres',
        `DO $$ BEGIN CREATE ROLE warden_reporting LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
         DO $$ BEGIN CREATE ROLE warden_forged LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
         GRANT ${MARKER} TO warden_forged`,
      );
      const result = await fx.app.broker.reconcile();
      assert.deepEqual(result.orphans, [leftover]);
      assert.equal(await roleOf(cluster, leftover), undefined);
      for (const name of ['warden_reporting', 'warden_forged', TEST_ADMIN_USER]) {
        assert.deepEqual(await roleOf(cluster, name), { rolcanlogin: true }, `${name} is untouched`);
      }
    });

    it('a credential whose role does not carry the mark is refused, never altered', async () => {
      await execSql(
        cluster,
        'postgres',
        'DO $$ BEGIN CREATE ROLE warden_reporting LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$',
      );
      const provider = fx.app.providers.get('app-db')!;
      const now = Date.now();
      const record = (id: string, handle: string): CredentialRecord => ({
        id,
        requestId: id,
        target: 'app-db',
        provider: 'postgres',
        handle,
        state: 'revoking',
        createdAt: now,
        expiresAt: now,
        revokedAt: null,
        attempts: 0,
        nextAttemptAt: null,
        lastError: null,
        leaseOwner: null,
        leaseUntil: null,
      });
      const result = await provider.revoke([record('c1', 'warden_reporting'), record('c2', TEST_ADMIN_USER)]);
      assert.match(result.failures.get('c1')!.message, /does not carry Warden's mark/);
      assert.match(result.failures.get('c2')!.message, /admin role|does not carry/);
      await assert.rejects(provider.removeOrphan('warden_reporting'), /does not carry Warden's mark/);
      for (const name of ['warden_reporting', TEST_ADMIN_USER]) {
        assert.deepEqual(await roleOf(cluster, name), { rolcanlogin: true });
      }
    });
  });

  describe('a revocation that cannot finish', () => {
    let fx: BrokerFixture;
    let other: string;
    before(async () => {
      fx = await startBrokerFixture('embedded', cluster);
      other = await createDatabase(cluster, 'locked');
      await execSql(cluster, other, 'GRANT CREATE ON SCHEMA public TO PUBLIC');
    });
    after(() => fx?.close());

    it('shows revocation_failed, tells the approvers, keeps retrying, and ends revoked once the role is gone', async () => {
      const request = await fx.app.broker.request({
        requester: 'alice',
        target: 'app-db',
        level: 'read',
        duration: '30m',
        reason: 'stuck',
        source: 'cli',
      });
      const grant = await fx.app.broker.approve(request.id, { id: 'maria', admin: false });
      const credential = credentialOf(fx, grant);
      const client = await loginAs(credential, other);
      await client.query('CREATE TABLE hidden (x int)');
      await client.end();
      // The admin can no longer reach the database where the grant left an object.
      await execSql(cluster, 'postgres', `REVOKE CONNECT ON DATABASE ${other} FROM PUBLIC`);
      const revoked = await fx.app.broker.revoke(grant.id, { id: 'root', admin: true }, 'incident over');
      assert.equal(revoked.state, 'revocation_failed');
      assert.match(revoked.error ?? '', /database locked_/);
      const role = await roleOf(cluster, credential.user);
      assert.deepEqual(role, { rolcanlogin: false }, 'new logins are stopped even though the drop failed');
      const failed = fx.events.find(
        (e) => e.type === 'credential.revocation_failed' && e.request.id === grant.id,
      );
      assert.ok(failed?.type === 'credential.revocation_failed');
      assert.deepEqual([...failed.approvers].sort(), ['bob', 'dana', 'maria']);
      const listed = await fx.app.broker.list({ states: ['revocation_failed'] });
      assert.deepEqual(
        listed.map((r) => r.id),
        [grant.id],
      );
      await waitFor(
        async () => ((await fx.store.listCredentials({ requestId: grant.id }))[0]?.attempts ?? 0) >= 2,
        15_000,
        'a second attempt',
      );
      const audit = await fx.store.readAudit({ limit: 1000 });
      assert.ok(
        audit.filter((e) => e.action === 'credential.revocation_failed' && e.subject === grant.id).length >=
          2,
      );
      assert.ok(fx.logs.lines.some((l) => l.includes('credential revocation failed; will retry')));
      assert.equal(
        (await fx.app.broker.show(grant.id)).request.state,
        'revocation_failed',
        'never revoked while the role exists',
      );

      await execSql(cluster, 'postgres', `GRANT CONNECT ON DATABASE ${other} TO ${TEST_ADMIN_USER}`);
      await waitFor(
        async () => (await fx.app.broker.show(grant.id)).request.state === 'revoked',
        20_000,
        'the retry to succeed',
      );
      assert.equal(await roleOf(cluster, credential.user), undefined);
      assert.deepEqual(await query(cluster, other, "SELECT 1 FROM pg_class WHERE relname = 'hidden'"), []);
      assert.ok(fx.events.some((e) => e.type === 'grant.ended' && e.request.id === grant.id));
    });
  });

  describe('level scoping', () => {
    let fx: BrokerFixture;
    before(async () => {
      const probe = await createTargetDatabase(cluster);
      const base = buildTestConfig(cluster, probe);
      const target = (base.targets as Record<string, Record<string, unknown>>)['app-db']!;
      fx = await startBrokerFixture('embedded', cluster, {
        targets: {
          'app-db': {
            ...target,
            levels: {
              orders: { grants: ['select'], tables: ['public.orders'] },
              reporting: { grants: ['select'], schemas: ['reporting'] },
            },
          },
        } as unknown as ConfigInput['targets'],
        ...openRules(),
      });
      await execSql(
        cluster,
        database(fx),
        `CREATE TABLE invoices (id int); CREATE TABLE orders (id int); INSERT INTO orders VALUES (1);
         CREATE SCHEMA reporting; CREATE TABLE reporting.daily (n int); INSERT INTO reporting.daily VALUES (7);
         GRANT USAGE ON SCHEMA reporting TO ${TEST_ADMIN_USER} WITH GRANT OPTION;
         ALTER DEFAULT PRIVILEGES IN SCHEMA reporting GRANT SELECT ON TABLES TO ${TEST_ADMIN_USER} WITH GRANT OPTION;
         GRANT SELECT ON reporting.daily TO ${TEST_ADMIN_USER} WITH GRANT OPTION`,
      );
    });
    after(() => fx?.close());

    it('tables: names exactly the tables a level reads', async () => {
      const grant = await fx.app.broker.request({
        requester: 'carol',
        target: 'app-db',
        level: 'orders',
        reason: 'orders',
        source: 'cli',
      });
      const client = await loginAs(credentialOf(fx, grant));
      try {
        assert.deepEqual((await client.query('SELECT id FROM orders')).rows, [{ id: 1 }]);
        await assert.rejects(client.query('SELECT * FROM invoices'), /permission denied/);
        await assert.rejects(client.query('SELECT * FROM reporting.daily'), /permission denied/);
      } finally {
        await client.end();
      }
    });

    it('schemas: covers the schema, tables created later included, for live grants too', async () => {
      const grant = await fx.app.broker.request({
        requester: 'carol',
        target: 'app-db',
        level: 'reporting',
        reason: 'reports',
        source: 'cli',
      });
      const client = await loginAs(credentialOf(fx, grant));
      try {
        assert.deepEqual((await client.query('SELECT n FROM reporting.daily')).rows, [{ n: 7 }]);
        await assert.rejects(client.query('SELECT * FROM orders'), /permission denied/);
        await execSql(
          cluster,
          database(fx),
          'CREATE TABLE reporting.weekly (n int); INSERT INTO reporting.weekly VALUES (49)',
        );
        await assert.rejects(client.query('SELECT n FROM reporting.weekly'), /permission denied/);
        await fx.app.providers.get('app-db')!.maintain!();
        assert.deepEqual((await client.query('SELECT n FROM reporting.weekly')).rows, [{ n: 49 }]);
      } finally {
        await client.end();
      }
    });
  });

  describe('a lost admin connection', () => {
    let fx: BrokerFixture;
    before(async () => {
      fx = await startBrokerFixture('embedded', cluster);
    });
    after(() => fx?.close());

    const killAdmin = () =>
      execSql(
        cluster,
        'postgres',
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '${TEST_ADMIN_USER}' AND pid <> pg_backend_pid()`,
      );

    it('terminated backends and a database restart while grants are live: no crash, unhealthy then healthy, revocations complete', async () => {
      const grants: AccessRequest[] = [];
      for (let i = 0; i < 3; i++) {
        grants.push(
          await fx.app.broker.request({
            requester: 'carol',
            target: 'app-db',
            level: 'read',
            duration: '30m',
            reason: `live ${i}`,
            source: 'cli',
          }),
        );
      }
      // Idle pooled connections die.
      await killAdmin();
      // A checked-out connection dies mid-revocation: the ACL lock holds the revocation inside
      // its transaction while the backend is terminated.
      const holder = new pg.Client({ connectionString: cluster.urlFor(database(fx)) });
      await holder.connect();
      await holder.query('SELECT pg_advisory_lock(7467100)');
      const pending = fx.app.broker.revoke(grants[0]!.id, { id: 'root', admin: true });
      await waitFor(
        async () =>
          (
            await query(
              cluster,
              'postgres',
              "SELECT 1 FROM pg_stat_activity WHERE usename = $1 AND wait_event = 'advisory'",
              [TEST_ADMIN_USER],
            )
          ).length > 0,
        10_000,
        'the revocation to wait on the lock',
      );
      await killAdmin();
      const first = await pending;
      assert.equal(first.state, 'revocation_failed');
      await holder.end();
      assert.equal(fx.app.broker.targetHealth()['app-db']?.ok, false);

      await cluster.restart();
      const second = await fx.app.broker
        .revoke(grants[1]!.id, { id: 'root', admin: true })
        .catch((e: Error) => e);
      assert.ok(!(second instanceof Error), 'revoke answers even while the database comes back');
      await waitFor(
        async () => fx.app.broker.targetHealth()['app-db']?.ok === true,
        30_000,
        'the target to be healthy again',
      );
      for (const grant of grants.slice(0, 2)) {
        await waitFor(
          async () => (await fx.app.broker.show(grant.id)).request.state === 'revoked',
          30_000,
          `revocation of ${grant.id}`,
        );
        assert.equal(await roleOf(cluster, credentialOf(fx, grant).user), undefined);
      }
      const third = await fx.app.broker.revoke(grants[2]!.id, { id: 'root', admin: true });
      assert.equal(third.state, 'revoked');
      assert.ok(fx.logs.lines.some((l) => l.includes('admin connection to target lost')));
    });
  });
});
