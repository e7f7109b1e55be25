import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { inspect } from 'node:util';
import { parseConfigText } from '../../../broker/config/load.ts';
import { resolveLocalSecret, resolveSecret, Secret } from '../../../broker/config/secrets.ts';

const BASE = `
targets:
  prod-db:
    kind: postgres
    admin: { host: 127.0.0.1, database: app, user: warden, password: { env: PROD_PW } }
    levels:
      read: { grants: [select] }
      write: { grants: [select, insert] }
people:
  - { id: alice, email: alice@example.com, manager: maria }
  - { id: maria, email: maria@example.com, groups: [dba] }
rules:
  - name: prod
    targets: [prod-db]
    duration: { default: 30m, max: 2h }
    approvers: [manager]
`;

describe('loadConfig', () => {
  it('accepts a valid file and fills defaults', () => {
    const config = parseConfigText(BASE);
    assert.equal(config.rules[0]!.duration.max, 7_200_000);
    assert.equal(config.broker.store.kind, 'embedded');
    const target = config.targets['prod-db']!;
    assert.equal(target.kind === 'postgres' && target.admin.port, 5432);
  });

  const bad: [string, string, RegExp][] = [
    [
      'unknown grant',
      BASE.replace('[select, insert]', '[select, wirte]'),
      /^targets\.prod-db\.levels\.write\.grants\[1\]: unknown grant "wirte"/,
    ],
    [
      'inline secret',
      BASE.replace('{ env: PROD_PW }', 'hunter2'),
      /^targets\.prod-db\.admin\.password: secrets are referenced/,
    ],
    [
      'unknown target in a rule',
      BASE.replace('targets: [prod-db]', 'targets: [prod-dbb]'),
      /^rules\[0:prod\]\.targets\[0\]: unknown target "prod-dbb"/,
    ],
    [
      'bad duration',
      BASE.replace('max: 2h', 'max: 2x'),
      /^rules\[0:prod\]\.duration\.max: "2x" is not a duration/,
    ],
    [
      'default above max',
      BASE.replace('default: 30m', 'default: 3h'),
      /default duration is longer than the maximum/,
    ],
    [
      'unknown manager',
      BASE.replace('manager: maria', 'manager: mario'),
      /^people\[0:alice\]\.manager: unknown person "mario"/,
    ],
    [
      'approver group without members',
      BASE.replace('[manager]', '[manager, { group: dbas }]'),
      /approvers\[1\]\.group: group "dbas" has no members/,
    ],
    [
      'unknown key',
      BASE.replace('kind: postgres', 'kind: postgres\n    colour: blue'),
      /^targets\.prod-db: Unrecognized key: "colour"/,
    ],
    ['unknown target kind', BASE.replace('kind: postgres', 'kind: mysql'), /^targets\.prod-db\.kind/],
    ['bad YAML', 'targets: [', /not valid YAML/],
    [
      'bad regex',
      BASE.replace('approvers: [manager]', "approvers: [manager]\n    reason: { pattern: '([' }"),
      /reason\.pattern: not a valid regular expression/,
    ],
    [
      'bad window',
      BASE.replace('approvers: [manager]', "approvers: [manager]\n    window: { hours: '20:00-08:00' }"),
      /window\.hours: the window ends before it starts/,
    ],
    [
      'bad time zone',
      BASE.replace('approvers: [manager]', 'approvers: [manager]\n    window: { timezone: Mars/Olympus }'),
      /unknown time zone/,
    ],
  ];
  for (const [name, text, message] of bad) {
    it(`names the path: ${name}`, () => {
      assert.throws(
        () => parseConfigText(text),
        (e: { code: string; message: string }) => {
          assert.equal(e.code, 'ERR_CONFIG_INVALID');
          assert.match(e.message, message);
          return true;
        },
      );
    });
  }
});

describe('secrets', () => {
  it('never print', () => {
    const secret = new Secret('hunter2');
    assert.equal(String(secret), '[secret]');
    assert.equal(JSON.stringify({ secret }), '{"secret":"[secret]"}');
    assert.equal(inspect({ secret }).includes('hunter2'), false);
    assert.equal(secret.reveal(), 'hunter2');
  });
  it('resolve from env and say which key is missing', async () => {
    assert.equal((await resolveSecret({ env: 'X' }, 'a.b', { X: 'v' })).reveal(), 'v');
    await assert.rejects(resolveSecret({ env: 'NOPE' }, 'targets.db.admin.password', {}), {
      code: 'ERR_CONFIG_SECRET',
      message: 'targets.db.admin.password: environment variable NOPE is not set',
    });
    await assert.rejects(resolveSecret({ file: '/nonexistent/x' }, 'p', {}), { code: 'ERR_CONFIG_SECRET' });
    // The synchronous local resolver says the same.
    assert.equal(resolveLocalSecret({ env: 'X' }, 'a.b', { X: 'v' }).reveal(), 'v');
    assert.throws(() => resolveLocalSecret({ file: '/nonexistent/x' }, 'p', {}), {
      code: 'ERR_CONFIG_SECRET',
    });
  });
});
