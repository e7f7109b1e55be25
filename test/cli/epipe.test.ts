/**
 * Issue 14, "Output and help": `| head` ended `replay --format jsonl` and `audit export` with an
 * EPIPE stack trace. The real `warden` command is piped into a real `head` that stops reading.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openEmbeddedStore } from '../../broker/store/sql-store.ts';
import { WARDEN } from '../helpers/serve-process.ts';

describe('| head ends replay and audit export with an EPIPE stack trace (fixed)', () => {
  let dir: string;
  let config: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-epipe-'));
    config = join(dir, 'warden.yaml');
    writeFileSync(config, 'broker:\n  store: { kind: embedded, path: warden.db }\n');
    const store = openEmbeddedStore(join(dir, 'warden.db'));
    await store.migrate();
    // Far more than a pipe holds (64 KiB), so writes go on after head has gone.
    const pad = 'x'.repeat(300);
    await store.appendAuditBatch(
      Array.from({ length: 3000 }, (_, i) => ({
        at: i,
        actor: 'alice',
        action: 'test.entry',
        subject: `s${i}`,
        data: { pad },
      })),
    );
    await store.insertSession({
      id: 'sepipe',
      protocol: 'postgres',
      login: 'warden_alice_rgrant',
      grantId: 'rgrant',
      requester: 'alice',
      target: 'app-db',
      level: 'read',
      clientAddress: '127.0.0.1',
      startedAt: 0,
      endedAt: 1,
      endReason: 'client',
      summary: {},
    });
    await store.appendSessionEvents(
      Array.from({ length: 3000 }, (_, i) => ({
        sessionId: 'sepipe',
        seq: i + 1,
        at: i,
        kind: 'statement',
        data: { sql: `select ${i} -- ${pad}`, ms: 1, rows: 1 },
      })),
    );
    await store.close();
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const args of [
    ['audit', 'export'],
    ['replay', 'sepipe', '--format', 'jsonl'],
    ['replay', 'sepipe'],
  ]) {
    it(`warden ${args.join(' ')} | head -n 1 exits quietly`, () => {
      const run = spawnSync(
        'bash',
        [
          '-c',
          `"$0" "$1" ${args.join(' ')} --config "$2" | head -n 1; echo "status=\${PIPESTATUS[0]}" >&2`,
          process.execPath,
          WARDEN,
          config,
        ],
        { encoding: 'utf8' },
      );
      assert.equal(run.stdout.split('\n').filter(Boolean).length, 1, 'head printed its one line');
      assert.doesNotMatch(run.stderr, /EPIPE|Error|at /);
      assert.match(run.stderr, /status=0/);
    });
  }
});
