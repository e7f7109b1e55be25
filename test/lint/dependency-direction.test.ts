/**
 * The lint rule that keeps the dependency direction (biome.json's `noRestrictedImports` overrides):
 * proxy/ imports from the broker only its contract and API types, lib/ imports nothing of ours.
 * Each probe is linted with the repository's biome.json in a scratch tree; the test asserts which
 * probes the rule refuses, so a loosened rule fails here.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';

const ROOT = join(import.meta.dirname, '../..');
const BIOME = join(ROOT, 'node_modules/.bin/biome');

/** File → source; each probe holds one import (or re-export) and uses it. */
const PROBES: Record<string, { source: string; refused: boolean }> = {
  'proxy/pg/store.ts': {
    source: "import type { Store } from '../../broker/store/store.ts';\nexport type T = Store;",
    refused: true,
  },
  'proxy/pg/broker.ts': {
    source: "import { Broker } from '../../broker/requests/broker.ts';\nexport const T = Broker;",
    refused: true,
  },
  'proxy/pg/app.ts': { source: "export const load = () => import('../../broker/app.ts');", refused: true },
  'proxy/pg/schema.ts': {
    source: "import type { Config } from '../../broker/config/load.ts';\nexport type T = Config;",
    refused: true,
  },
  'proxy/ssh/model.ts': {
    source: "export type { AccessRequest } from '../../broker/model.ts';",
    refused: true,
  },
  'proxy/ssh/authority.ts': {
    source:
      "import type { ProxyAuthority } from '../../broker/proxy-authority.ts';\nexport type T = ProxyAuthority;",
    refused: true,
  },
  'proxy/ssh/bot.ts': {
    source: "import type { Bot } from '../../bot/core/bot.ts';\nexport type T = Bot;",
    refused: true,
  },
  'proxy/ssh/cli.ts': {
    source: "import { main } from '../../cli/main.ts';\nexport const T = main;",
    refused: true,
  },
  'proxy/start.ts': {
    source: "import type { ApiRequest } from '../broker/api/server.ts';\nexport type T = ApiRequest;",
    refused: true,
  },
  'proxy/pg/ports.ts': {
    source: "import type { ProxyPorts } from '../../broker/ports/proxy.ts';\nexport type T = ProxyPorts;",
    refused: false,
  },
  'proxy/pg/api.ts': {
    source: "import type { ApiRequest } from '../../broker/api/types.ts';\nexport type T = ApiRequest;",
    refused: false,
  },
  'proxy/ssh/lib.ts': {
    source: "import { loadCa } from '../../lib/ssh/keys.ts';\nexport const T = loadCa;",
    refused: false,
  },
  'proxy/ssh/own.ts': {
    source: "import { createMasker } from '../masking/index.ts';\nexport const T = createMasker;",
    refused: false,
  },
  'proxy/ssh/npm.ts': { source: "import ssh2 from 'ssh2';\nexport const T = ssh2;", refused: false },
  'lib/broker.ts': {
    source: "import { ConfigError } from '../broker/errors.ts';\nexport const T = ConfigError;",
    refused: true,
  },
  'lib/ssh/proxy.ts': {
    source: "import type { PgProxyTarget } from '../../proxy/pg/config.ts';\nexport type T = PgProxyTarget;",
    refused: true,
  },
  'lib/own.ts': { source: "import { Secret } from './secret.ts';\nexport const T = Secret;", refused: false },
  'broker/store/any.ts': {
    source: "import type { Store } from './store.ts';\nexport type T = Store;",
    refused: false,
  },
};

interface Diagnostic {
  category: string;
  location: { path: string };
}

describe('lint: dependency direction', () => {
  let dir: string;
  let refused: Set<string>;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-lint-'));
    copyFileSync(join(ROOT, 'biome.json'), join(dir, 'biome.json'));
    for (const [file, probe] of Object.entries(PROBES)) {
      mkdirSync(dirname(join(dir, file)), { recursive: true });
      writeFileSync(join(dir, file), `${probe.source}\n`);
    }
    const output = await new Promise<string>((resolve, reject) =>
      // Exit code 1 is expected (the refused probes); the JSON report says which.
      execFile(
        BIOME,
        ['lint', '--vcs-enabled=false', '--reporter=json', '.'],
        { cwd: dir },
        (error, stdout) => (stdout ? resolve(stdout) : reject(error ?? new Error('biome printed nothing'))),
      ),
    );
    const report = JSON.parse(output) as { diagnostics: Diagnostic[] };
    refused = new Set(
      report.diagnostics
        .filter((d) => d.category === 'lint/style/noRestrictedImports')
        .map((d) => d.location.path),
    );
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  for (const [file, probe] of Object.entries(PROBES)) {
    it(`${probe.refused ? 'refuses' : 'allows'} ${file}: ${probe.source.split('\n')[0]}`, () => {
      assert.equal(refused.has(file), probe.refused);
    });
  }
});
