/**
 * `warden doctor` only reads: it used to open the store the way `warden serve` does, creating the
 * file (and its folder) and migrating it as a side effect. These tests fail on that behaviour.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseConfig } from '../../broker/config/load.ts';
import { migrateSchema, SCHEMA_VERSION } from '../../broker/store/sql/migrations.ts';
import { openEmbeddedStore, openPostgresStore } from '../../broker/store/sql-store.ts';
import { runDoctorChecks } from '../../cli/commands/doctor.ts';
import { main } from '../../cli/main.ts';
import { createDatabase, freePort, type PgCluster, startPgCluster } from '../helpers/pg-cluster.ts';

/** A configuration with nothing but a store, so doctor's only check is the store's. */
function storeOnlyConfig(store: Record<string, unknown>) {
  return parseConfig({ broker: { store }, targets: {}, rules: [], people: [] }, join(tmpdir(), 'w.yaml'));
}

async function storeCheck(store: Record<string, unknown>, env: Record<string, string> = {}) {
  const checks = await runDoctorChecks(storeOnlyConfig(store), env);
  return checks.find((c) => c.name.startsWith('store'))!;
}

function fingerprint(path: string) {
  return {
    sha256: createHash('sha256').update(readFileSync(path)).digest('hex'),
    mtimeMs: statSync(path).mtimeMs,
    mode: statSync(path).mode,
  };
}

describe('warden doctor only reads the store', () => {
  let dir: string;
  let cluster: PgCluster;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-doctor-ro-'));
    cluster = await startPgCluster();
  });
  after(async () => {
    await cluster?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('doctor migrated the store as a side effect: an older embedded store is reported and left byte for byte', async () => {
    const path = join(dir, 'old.db');
    const writer = openEmbeddedStore(path);
    await migrateSchema(writer.kysely, 'embedded', 5);
    await writer.close();
    const before = fingerprint(path);
    const files = readdirSync(dir).sort();

    const check = await storeCheck({ kind: 'embedded', path });
    assert.equal(check.ok, false);
    assert.match(check.detail, new RegExp(`schema version 5, this Warden uses ${SCHEMA_VERSION}`));
    assert.match(check.fix!, /warden serve once: it migrates/);
    assert.deepEqual(fingerprint(path), before);
    // No -wal or -shm appeared next to it: nothing was created.
    assert.deepEqual(readdirSync(dir).sort(), files);
    const reader = openEmbeddedStore(path, { readOnly: true });
    assert.equal(await reader.schemaVersion(), 5);
    await reader.close();
  });

  it('doctor created a missing store: it is refused, and no file or folder is made', async () => {
    const path = join(dir, 'nowhere', 'warden.db');
    const check = await storeCheck({ kind: 'embedded', path });
    assert.equal(check.ok, false);
    assert.match(check.detail, /there is no store at .*nowhere\/warden\.db/);
    assert.match(check.fix!, /warden serve creates the store on its first start/);
    assert.equal(existsSync(join(dir, 'nowhere')), false);

    // The CLI's exit code says so, and still creates nothing.
    const file = join(dir, 'missing.yaml');
    writeFileSync(
      file,
      `broker:\n  store: { kind: embedded, path: ./nowhere/warden.db }\ntargets: {}\nrules: []\npeople: []\n`,
    );
    const out: string[] = [];
    const code = await main(['doctor', '--config', file], {
      out: (l) => out.push(l),
      err: (l) => out.push(l),
      env: {},
    });
    assert.equal(code, 1);
    assert.match(out.join('\n'), /✗ store \(embedded\): there is no store/);
    assert.equal(existsSync(join(dir, 'nowhere')), false);
  });

  it('an empty file that holds no Warden store is reported, not given a schema', async () => {
    const path = join(dir, 'empty.db');
    writeFileSync(path, '', { mode: 0o600 });
    const check = await storeCheck({ kind: 'embedded', path });
    assert.equal(check.ok, false);
    assert.match(check.detail, /holds no Warden store/);
    assert.equal(statSync(path).size, 0);
  });

  it('a current store checks out, and so does one a running Warden holds open (through its WAL)', async () => {
    const path = join(dir, 'live.db');
    const live = openEmbeddedStore(path);
    await live.migrate();
    await live.appendSessionEvents([]);
    assert.ok(existsSync(`${path}-wal`), 'a writer keeps a WAL');
    const before = fingerprint(path);
    const check = await storeCheck({ kind: 'embedded', path });
    assert.equal(check.ok, true, check.detail);
    assert.match(
      check.detail,
      new RegExp(`schema version ${SCHEMA_VERSION} \\(current\\); opened read-only`),
    );
    assert.deepEqual(fingerprint(path), before);
    await live.close();
    const closed = await storeCheck({ kind: 'embedded', path });
    assert.equal(closed.ok, true, closed.detail);
  });

  it('the read-only embedded store refuses writes', async () => {
    const path = join(dir, 'ro.db');
    const writer = openEmbeddedStore(path);
    await writer.migrate();
    await writer.close();
    const reader = openEmbeddedStore(path, { readOnly: true });
    await assert.rejects(
      reader.kysely.insertInto('warden_meta').values({ key: 'x', value: 'y' }).execute(),
      /readonly/,
    );
    await reader.close();
  });

  it('doctor migrated a PostgreSQL store as a side effect: an older one keeps its version', async () => {
    const url = cluster.urlFor(await createDatabase(cluster, 'rostore'));
    const writer = openPostgresStore(url);
    await migrateSchema(writer.kysely, 'postgres', 7);
    const check = await storeCheck({ kind: 'postgres', url: { env: 'STORE_URL' } }, { STORE_URL: url });
    assert.equal(check.ok, false);
    assert.match(check.detail, new RegExp(`schema version 7, this Warden uses ${SCHEMA_VERSION}`));
    assert.equal(await writer.schemaVersion(), 7);
    assert.equal(`${check.detail} ${check.fix}`.includes(cluster.password), false, 'a secret in the output');
    // Its connection is read-only on the server's side as well.
    const reader = openPostgresStore(url, 1, { readOnly: true });
    await assert.rejects(
      reader.kysely.insertInto('warden_meta').values({ key: 'x', value: 'y' }).execute(),
      /read-only transaction/,
    );
    await reader.close();
    await writer.close();
  });

  it('a PostgreSQL store that cannot be reached is told as such, not as a database without a store', async () => {
    const closed = await freePort();
    const check = await storeCheck(
      { kind: 'postgres', url: { env: 'STORE_URL' } },
      { STORE_URL: `postgres://warden:hunter2@127.0.0.1:${closed}/warden` },
    );
    assert.equal(check.ok, false);
    assert.match(check.detail, /ECONNREFUSED/);
    assert.doesNotMatch(check.detail, /holds no Warden store/);
    assert.equal(JSON.stringify(check).includes('hunter2'), false);
  });
});
