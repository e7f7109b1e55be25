import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../../../broker/config/load.ts';
import { FileDirectory } from '../../../broker/directory/directory.ts';
import { explainPolicy, runPolicyCases } from '../../../broker/policy/explain.ts';
import { isWithinWindow } from '../../../broker/policy/window.ts';

const config = parseConfig({
  targets: {
    'prod-db': {
      kind: 'postgres',
      admin: { host: 'h', database: 'd', user: 'u', password: { env: 'X' } },
      levels: { read: { grants: ['select'] }, write: { grants: ['select', 'insert'] } },
    },
  },
  people: [
    { id: 'alice', email: 'a@x.io', manager: 'maria', groups: ['eng'] },
    { id: 'maria', email: 'm@x.io', groups: ['eng'] },
    { id: 'bob', email: 'b@x.io', groups: ['dba'] },
    { id: 'carol', email: 'c@x.io', groups: ['oncall'] },
    { id: 'sec', email: 's@x.io', groups: ['security'] },
  ],
  rules: [
    {
      name: 'read',
      targets: ['prod-db'],
      levels: ['read'],
      duration: { default: '30m', max: '2h' },
      approvers: ['manager', { group: 'dba' }],
      auto_approve: { groups: ['oncall'] },
      window: { days: ['mon', 'tue', 'wed', 'thu', 'fri'], hours: '08:00-20:00', timezone: 'Europe/Paris' },
    },
    {
      name: 'write',
      targets: ['prod-db'],
      levels: ['write'],
      who: { groups: ['eng'] },
      duration: { default: '15m', max: '1h' },
      approvers: [{ group: 'dba' }, { group: 'security' }],
      approvals: 'every',
    },
  ],
});
const directory = new FileDirectory(config.people);
// Monday 2026-11-30 10:00 in Paris; Sunday 2026-11-29 10:00 in Paris.
const MONDAY = Date.parse('2026-11-30T09:00:00Z');
const SUNDAY = Date.parse('2026-11-29T09:00:00Z');

describe('policy explain', () => {
  it('says who must approve and which rule decided', () => {
    const e = explainPolicy(config, directory, {
      user: 'alice',
      target: 'prod-db',
      level: 'write',
      at: MONDAY,
    });
    assert.equal(e.outcome, 'needs_approval');
    assert.equal(e.rule, 'write');
    assert.deepEqual(e.approvers, ['bob', 'sec']);
    assert.match(e.summary, /one approval from each of: group dba, group security/);
  });
  it('denies people no rule covers', () => {
    const e = explainPolicy(config, directory, {
      user: 'bob',
      target: 'prod-db',
      level: 'write',
      at: MONDAY,
    });
    assert.equal(e.outcome, 'denied');
    assert.equal(e.code, 'ERR_POLICY_DENIED');
  });
  it('auto-approves on-call and applies time windows', () => {
    assert.equal(
      explainPolicy(config, directory, { user: 'carol', target: 'prod-db', at: MONDAY }).outcome,
      'auto_approved',
    );
    const sunday = explainPolicy(config, directory, { user: 'carol', target: 'prod-db', at: SUNDAY });
    assert.equal(sunday.outcome, 'denied');
    assert.equal(sunday.code, 'ERR_POLICY_OUTSIDE_WINDOW');
  });
  it('reads windows in their time zone', () => {
    const window = { days: ['mon' as const], hours: '08:00-09:00', timezone: 'America/New_York' };
    assert.equal(isWithinWindow(window, Date.parse('2026-11-30T13:30:00Z')), true);
    assert.equal(isWithinWindow(window, Date.parse('2026-11-30T08:30:00Z')), false);
  });
});

describe('policy test', () => {
  it('runs cases and reports mismatches', () => {
    const results = runPolicyCases(
      config,
      directory,
      `
cases:
  - { user: alice, target: prod-db, level: read, at: 2026-11-30T09:00:00Z, expect: needs_approval, approvers: [bob, maria] }
  - { user: carol, target: prod-db, at: 2026-11-30T09:00:00Z, expect: auto_approved, rule: read }
  - { name: weekend, user: carol, target: prod-db, at: 2026-11-29T09:00:00Z, expect: auto_approved }
`,
    );
    assert.deepEqual(
      results.map((r) => r.passed),
      [true, true, false],
    );
    assert.match(results[2]!.problems[0]!, /expected auto_approved, got denied/);
  });
  it('refuses a malformed cases file', () => {
    assert.throws(() => runPolicyCases(config, directory, 'cases: [{ user: alice }]'), {
      code: 'ERR_CONFIG_INVALID',
    });
  });
});
