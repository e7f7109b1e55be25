/**
 * reloadBrokerConfig on its own (the process test is test/cli/serve-reload.test.ts): what it
 * applies, what it refuses as a whole, and that a refusal changes nothing.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { type Config, loadConfig } from '../../broker/config/load.ts';
import { FileDirectory } from '../../broker/directory/directory.ts';
import { createLogger } from '../../broker/log.ts';
import type { CredentialProvider } from '../../broker/providers/provider.ts';
import { reloadBrokerConfig } from '../../broker/reload.ts';
import { LogCapture } from '../helpers/broker-fixture.ts';

const dir = mkdtempSync(join(tmpdir(), 'warden-reload-unit-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const pgTarget = (database: string, extra: Record<string, unknown> = {}) => ({
  kind: 'postgres',
  admin: { host: '127.0.0.1', port: 5432, database, user: 'warden', password: { env: 'PW' } },
  levels: { read: { grants: ['select'] } },
  ...extra,
});
const rule = (name: string, target: string) => ({
  name,
  targets: [target],
  duration: { default: '10m', max: '1h' },
  approvers: ['manager'],
});
const base = {
  broker: { listen: '127.0.0.1:0' },
  ssh: { ca_key: { env: 'CA' }, proxy: { host_key: { env: 'HK' }, upstream_key: { env: 'UK' } } },
  targets: { 'app-db': pgTarget('app') },
  rules: [rule('app', 'app-db')],
  people: [{ id: 'alice', email: 'alice@example.com', groups: ['eng'] }],
};

function start(name: string) {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, stringify(base));
  const config: Config = loadConfig(file);
  const app = {
    config,
    directory: new FileDirectory(config.people),
    providers: new Map<string, CredentialProvider>([['app-db', { name: 'postgres' } as CredentialProvider]]),
  };
  const logs = new LogCapture();
  const logger = createLogger({ destination: logs });
  const reload = (next: unknown, env: Record<string, string> = { PW: 'pw' }) => {
    writeFileSync(file, stringify(next));
    return reloadBrokerConfig(app, file, { env, logger });
  };
  return { app, config, logs, reload };
}

describe('reloadBrokerConfig', () => {
  it('applies people, rules and a new target; keeps the removed target provider for its live grants', async () => {
    const { app, config, reload } = start('apply');
    const outcome = await reload({
      ...base,
      targets: { 'new-db': pgTarget('new') },
      rules: [rule('new', 'new-db')],
      people: [...base.people, { id: 'bob', email: 'bob@example.com', groups: ['dba'] }],
    });
    assert.equal(outcome.applied, true);
    assert.ok(outcome.applied);
    assert.deepEqual([outcome.added, outcome.removed], [['new-db'], ['app-db']]);
    assert.deepEqual(outcome.rules, { added: ['new'], removed: ['app'], changed: [] });
    assert.deepEqual(Object.keys(config.targets), ['new-db']);
    assert.equal(app.directory.get('bob')?.email, 'bob@example.com');
    assert.equal(app.directory.membersOf('dba').length, 1);
    assert.equal(app.providers.get('new-db')?.name, 'postgres');
    assert.ok(app.providers.has('app-db'), 'the removed target keeps its provider until restart');
    await app.providers.get('new-db')!.close();
  });

  it('refuses, and changes nothing, for a new proxied target, a changed target, a missing secret', async () => {
    const { app, config, logs, reload } = start('refuse');
    const before = structuredClone({ targets: config.targets, rules: config.rules, people: config.people });
    const cases: [string, unknown, Record<string, string>, RegExp][] = [
      [
        'a new proxied target',
        {
          ...base,
          targets: {
            ...base.targets,
            'px-db': pgTarget('px', { proxy: { listen: '127.0.0.1:0', allow_plaintext: true } }),
          },
          people: [],
        },
        { PW: 'pw' },
        /targets\.px-db is new and has a recording proxy/,
      ],
      [
        'a changed target',
        { ...base, targets: { 'app-db': pgTarget('other') }, people: [] },
        { PW: 'pw' },
        /targets\.app-db changed/,
      ],
      [
        "a new target's missing secret",
        { ...base, targets: { ...base.targets, 'new-db': pgTarget('new') }, people: [] },
        {},
        /PW/,
      ],
      [
        'a new SSH target while the SSH proxy runs',
        {
          ...base,
          targets: {
            ...base.targets,
            'web-1': { kind: 'ssh', host: '127.0.0.1', levels: { login: { principals: ['x'] } } },
          },
          people: [],
        },
        { PW: 'pw' },
        /targets\.web-1 is a new SSH target and the SSH proxy learns its targets at start/,
      ],
      [
        'a file that fails validation',
        { ...base, rules: [rule('x', 'nowhere')], people: [] },
        { PW: 'pw' },
        /nowhere/,
      ],
    ];
    for (const [what, next, env, message] of cases) {
      const outcome = await reload(next, env);
      assert.equal(outcome.applied, false, what);
      assert.ok(!outcome.applied);
      assert.match(outcome.error, message, what);
      assert.deepEqual({ targets: config.targets, rules: config.rules, people: config.people }, before, what);
      assert.equal(app.directory.get('alice')?.id, 'alice', what);
      assert.deepEqual([...app.providers.keys()], ['app-db'], what);
    }
    const refusals = logs.lines
      .map((l) => JSON.parse(l))
      .filter((l) => l.msg.startsWith('configuration reload refused'));
    assert.equal(refusals.length, cases.length);
    assert.ok(refusals.every((l) => l.level === 'error'));
  });

  it('a change to a section read at start only is named as waiting for a restart; the rest applies', async () => {
    const { config, logs, reload } = start('restart');
    const outcome = await reload({
      ...base,
      broker: { listen: '127.0.0.1:1' },
      rules: [rule('app', 'app-db'), rule('more', 'app-db')],
    });
    assert.ok(outcome.applied);
    assert.deepEqual(outcome.restartNeeded, ['broker']);
    assert.equal(config.rules.length, 2);
    assert.equal(config.broker.listen, '127.0.0.1:0', 'the running listener stays');
    const warning = logs.lines.map((l) => JSON.parse(l)).find((l) => l.level === 'warn');
    assert.deepEqual(warning?.sections, ['broker']);
  });
});
