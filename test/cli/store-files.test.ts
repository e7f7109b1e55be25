/**
 * Issue 14, "Files and CLI": the store was created 0644; a relative store path was resolved
 * against the cwd, so `warden audit verify` run elsewhere created an empty database and said
 * "intact, 0 entries". Played with the real `warden` command from another directory, on a store a
 * real broker wrote with an audit key and a checkpoint file.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createBrokerApp, openConfiguredStore } from '../../broker/app.ts';
import { hashAuditEntry } from '../../broker/audit/chain.ts';
import { generateAuditKey } from '../../broker/audit/signing.ts';
import { loadConfig } from '../../broker/config/load.ts';
import { createSilentLogger } from '../../broker/log.ts';
import { openEmbeddedStore, type SqlStore } from '../../broker/store/sql-store.ts';
import { WARDEN } from '../helpers/serve-process.ts';

const mode = (path: string) => statSync(path).mode & 0o777;

function warden(args: string[], cwd: string) {
  const run = spawnSync(process.execPath, [WARDEN, ...args], {
    cwd,
    encoding: 'utf8',
    env: { ...process.env },
  });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

describe('the store is world-readable (fixed)', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'warden-store-mode-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('creates the store 0600 in a 0700 directory, and its -wal and -shm files 0600', async () => {
    const path = join(dir, 'state', 'warden.db');
    const store = openEmbeddedStore(path);
    await store.migrate();
    await store.appendAudit({ at: 1, actor: 'alice', action: 'x', subject: 'y', data: {} });
    assert.equal(mode(join(dir, 'state')), 0o700);
    for (const file of [path, `${path}-wal`, `${path}-shm`]) {
      assert.ok(existsSync(file), `${file} exists while the store is open`);
      assert.equal(mode(file), 0o600, file);
    }
    await store.close();
  });

  it('narrows a store an older version left 0644', async () => {
    const path = join(dir, 'old.db');
    const first = openEmbeddedStore(path);
    await first.migrate();
    await first.close();
    chmodSync(path, 0o644);
    const again = openEmbeddedStore(path);
    assert.equal(mode(path), 0o600);
    await again.close();
  });
});

describe('relative paths (fixed): commands that read the store, run from another directory', () => {
  let dir: string;
  let etc: string;
  let elsewhere: string;
  let configFile: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-relative-store-'));
    etc = join(dir, 'etc');
    elsewhere = join(dir, 'elsewhere');
    mkdirSync(join(etc, 'keys'), { recursive: true });
    mkdirSync(elsewhere);
    writeFileSync(join(etc, 'keys', 'audit.pem'), generateAuditKey().privateKey, { mode: 0o600 });
    configFile = join(etc, 'warden.yaml');
    writeFileSync(
      configFile,
      [
        'broker:',
        '  store: { kind: embedded, path: state/warden.db }',
        'audit:',
        '  signing_key: { file: keys/audit.pem }',
        '  checkpoints: { file: checkpoints.jsonl, log: false }',
        'people:',
        '  - { id: alice, email: alice@example.com }',
      ].join('\n'),
    );
    // A real broker writes the store (a signed `audit.keyed` entry, then its own) and checkpoints on close.
    const config = loadConfig(configFile);
    const app = await createBrokerApp(config, { logger: createSilentLogger(), env: {} });
    for (let i = 0; i < 5; i++) await app.broker.recordAudit('alice', 'test.entry', `s${i}`, { i });
    await app.close();
    assert.ok(existsSync(join(etc, 'state', 'warden.db')), 'the store sits beside the config');
    assert.ok(existsSync(join(etc, 'checkpoints.jsonl')), 'the checkpoint file sits beside the config');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('audit verify reads the store next to the config, with its signatures and checkpoints', () => {
    const run = warden(['audit', 'verify', '--config', configFile], elsewhere);
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /audit log intact: 6 entries, .*signed up to 6, 1 checkpoints match/);
    assert.ok(!existsSync(join(elsewhere, 'state')), 'nothing was created in the cwd');
  });

  it('a command that reads the store refuses one that does not exist, and creates nothing', () => {
    const missing = join(etc, 'missing.yaml');
    writeFileSync(missing, 'broker:\n  store: { kind: embedded, path: nowhere/warden.db }\n');
    for (const args of [
      ['audit', 'verify'],
      ['audit', 'export'],
      ['sessions', 'list'],
      ['replay', 'abc'],
    ]) {
      const run = warden([...args, '--config', missing], elsewhere);
      assert.equal(run.status, 1, `${args.join(' ')}: ${run.stdout}${run.stderr}`);
      assert.match(run.stderr, /there is no store at .*nowhere\/warden\.db .*ERR_STORE_MISSING/);
    }
    assert.ok(!existsSync(join(etc, 'nowhere')) && !existsSync(join(elsewhere, 'nowhere')));
  });

  it('an empty file is not a store either', async () => {
    writeFileSync(join(etc, 'empty.db'), '');
    const file = join(etc, 'empty.yaml');
    writeFileSync(file, 'broker:\n  store: { kind: embedded, path: empty.db }\n');
    await assert.rejects(openConfiguredStore(loadConfig(file), {}, undefined, { mustExist: true }), {
      code: 'ERR_STORE_MISSING',
    });
  });

  it('a rewrite with the chain recomputed is reported by the command (exit 4)', async () => {
    const store = openEmbeddedStore(join(etc, 'state', 'warden.db')) as SqlStore;
    const entries = await store.readAudit({});
    let prevHash = entries[1]!.hash;
    for (const entry of entries.slice(2)) {
      const data = entry.seq === 3 ? { i: 99 } : entry.data;
      const hash = hashAuditEntry({ ...entry, data, prevHash });
      await store.kysely
        .updateTable('warden_audit')
        .set({ data: JSON.stringify(data), prev_hash: prevHash, hash })
        .where('seq', '=', entry.seq)
        .execute();
      prevHash = hash;
    }
    await store.close();
    const run = warden(['audit', 'verify', '--config', configFile], elsewhere);
    assert.equal(run.status, 4, run.stdout + run.stderr);
    assert.match(run.stderr, /audit log TAMPERED: the signature on entry 3 does not match/);
  });
});
