/**
 * The demo's pure parts: which database it picks, the configuration it writes (valid for the
 * broker and the proxy), the start-up instructions, and refusals of bad options before anything
 * starts.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { describe, it } from 'node:test';
import { parseConfig } from '../../../broker/config/load.ts';
import { buildDemoConfig, startDemoEnvironment } from '../../../cli/demo/demo.ts';
import { chooseDemoDatabase } from '../../../cli/demo/demo-database.ts';
import { type DemoFacts, formatDemoInstructions } from '../../../cli/demo/instructions.ts';
import { main } from '../../../cli/main.ts';
import type { Io } from '../../../cli/output.ts';
import { compilePgProxyTarget } from '../../../proxy/pg/config.ts';

describe('chooseDemoDatabase', () => {
  const cases: [string | undefined, boolean, 'local' | 'embedded'][] = [
    [undefined, true, 'local'],
    [undefined, false, 'embedded'],
    ['auto', true, 'local'],
    ['AUTO', false, 'embedded'],
    ['embedded', true, 'embedded'],
    ['local', false, 'local'],
    [' local ', true, 'local'],
  ];
  for (const [requested, local, expected] of cases) {
    it(`${String(requested)} with${local ? '' : 'out'} a local PostgreSQL → ${expected}`, () => {
      assert.equal(chooseDemoDatabase(requested, local), expected);
    });
  }
  for (const bad of ['', 'mysql', 'sqlite', 'x'.repeat(200)]) {
    it(`refuses "${bad.slice(0, 20)}" with ERR_DEMO_OPTION_INVALID`, () => {
      assert.throws(() => chooseDemoDatabase(bad, true), { code: 'ERR_DEMO_OPTION_INVALID' });
    });
  }
});

describe('buildDemoConfig', () => {
  const input = (tls: boolean) => ({
    dir: '/tmp/warden-demo-x',
    ttl: '2m',
    listen: '127.0.0.1:8080',
    proxyListen: '127.0.0.1:6432',
    database: { host: '127.0.0.1', port: 5999, database: 'demo_1', user: 'postgres' },
    files: { adminToken: '/tmp/t', dbPassword: '/tmp/p', maskingKey: '/tmp/k' },
    tls: tls ? { cert: '/tmp/c.pem', key: '/tmp/k.pem' } : undefined,
  });

  it('is a valid configuration: demo-db behind the proxy, the TTL as the rule’s default', () => {
    const config = parseConfig(buildDemoConfig(input(true)), 'demo');
    const target = config.targets['demo-db']!;
    assert.equal(target.kind, 'postgres');
    if (target.kind !== 'postgres') return;
    assert.equal(target.proxy?.listen, '127.0.0.1:6432');
    assert.deepEqual(target.proxy?.tls, { cert: '/tmp/c.pem', key: '/tmp/k.pem' });
    assert.equal(target.proxy?.allow_plaintext, false);
    assert.equal(target.proxy?.record_rows, true);
    assert.equal(config.rules[0]!.duration.default, 120_000);
    assert.deepEqual(
      config.people.map((p) => p.id),
      ['alice', 'maria', 'bob'],
    );
  });

  it('masks customers.email and *.card_number and keeps the default guardrails (the proxy compiles it)', () => {
    const config = parseConfig(buildDemoConfig(input(false)), 'demo');
    const target = config.targets['demo-db']!;
    if (target.kind !== 'postgres') throw new Error('demo-db is a postgres target');
    assert.equal(target.proxy?.allow_plaintext, true, 'without openssl the proxy takes plaintext');
    const compiled = compilePgProxyTarget('demo-db', target.proxy!, {
      readFile: () => Buffer.from('k'.repeat(32)),
    });
    assert.equal(compiled.recordRows, true);
    const verdict = compiled.guardrails.check('DROP TABLE customers', {
      level: 'read',
      groups: ['engineering'],
    });
    assert.equal(verdict.action, 'block');
    assert.equal(verdict.rule, 'drop-table');
  });
});

describe('formatDemoInstructions', () => {
  const facts: DemoFacts = {
    ttl: '30m',
    proxy: '127.0.0.1:6432',
    database: 'demo_1',
    databaseLabel: 'PostgreSQL 15',
    embedded: false,
    tls: true,
    hasPsql: true,
    configFile: '/tmp/warden-demo-x/warden.yaml',
    dir: '/tmp/warden-demo-x',
    apiUrl: 'http://127.0.0.1:8080',
  };
  const text = (f: Partial<DemoFacts>) => formatDemoInstructions({ ...facts, ...f }).join('\n');

  it('lists the steps in order', () => {
    const out = text({});
    const steps = [
      '/access demo-db 30m trying warden',
      'as maria',
      'approve <id>',
      'as alice',
      'psql "host=127.0.0.1 port=6432 dbname=demo_1',
      'DROP TABLE customers;',
      'export WARDEN_CONFIG=/tmp/warden-demo-x/warden.yaml',
      'replay <session id>',
      'Ctrl-C or quit stops everything and removes /tmp/warden-demo-x',
    ].map((s) => out.indexOf(s));
    assert.ok(
      steps.every((i) => i >= 0),
      out,
    );
    assert.deepEqual(
      [...steps].sort((a, b) => a - b),
      steps,
    );
  });

  const table: [string, Partial<DemoFacts>, RegExp, RegExp | undefined][] = [
    ['asks for the demo TTL', { ttl: '2m' }, /\/access demo-db 2m trying warden/, /--demo-ttl 2m to watch/],
    ['suggests a short TTL by default', {}, /--demo-ttl 2m to watch/, undefined],
    [
      'names warden psql without psql',
      { hasPsql: false },
      /npm run -s warden -- psql "postgres:\/\//,
      /^ {2}psql "/m,
    ],
    ['says PGlite enforces no roles', { embedded: true }, /checks no password/, undefined],
    ['says so when TLS is off', { tls: false }, /without TLS/, undefined],
    ['says nothing of PGlite on PostgreSQL 15', {}, /PostgreSQL 15 database/, /PGlite/],
  ];
  for (const [name, f, present, absent] of table) {
    it(name, () => {
      const out = text(f);
      assert.match(out, present);
      if (absent) assert.doesNotMatch(out, absent);
    });
  }
});

describe('warden serve --demo with bad options', () => {
  const capture = () => {
    const lines: string[] = [];
    const io: Io = { out: (l) => lines.push(l), err: (l) => lines.push(l), env: { PATH: process.env.PATH } };
    return { io, lines };
  };
  const demoDirs = () => readdirSync(tmpdir()).filter((n) => n.startsWith('warden-demo-'));

  for (const [args, code] of [
    [['--demo-ttl', '30x'], 'ERR_DEMO_OPTION_INVALID'],
    [['--demo-ttl', '0m'], 'ERR_DEMO_OPTION_INVALID'],
    [['--demo-ttl', ''], 'ERR_DEMO_OPTION_INVALID'],
    [['--demo-db', 'oracle'], 'ERR_DEMO_OPTION_INVALID'],
  ] as const) {
    it(`${args.join(' ')} exits 1 with ${code} and starts nothing`, async () => {
      const dirs = demoDirs();
      const { io, lines } = capture();
      const exit = await main(['serve', '--demo', ...args], io, new AbortController().signal);
      assert.equal(exit, 1);
      assert.match(lines.join('\n'), new RegExp(`\\(${code}\\)`));
      assert.deepEqual(demoDirs(), dirs, 'a demo directory was left behind');
    });
  }

  it('refuses a bad TTL in the library call too, before making a directory', async () => {
    await assert.rejects(startDemoEnvironment({ ttl: '1.5h' }), { code: 'ERR_DEMO_OPTION_INVALID' });
  });
});
