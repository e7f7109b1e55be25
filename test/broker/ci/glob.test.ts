import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileGlob, matchGlob } from '../../../broker/ci/glob.ts';

describe('matchGlob', () => {
  const table: [string, string, boolean][] = [
    ['refs/heads/main', 'refs/heads/main', true],
    ['refs/heads/main', 'refs/heads/main2', false],
    ['refs/heads/main', 'xrefs/heads/main', false],
    ['refs/heads/release/*', 'refs/heads/release/1.2', true],
    ['refs/heads/release/*', 'refs/heads/release/', true],
    ['refs/heads/release/*', 'refs/heads/release/1.2/hotfix', false],
    ['refs/heads/release/*', 'refs/heads/releases/1.2', false],
    ['refs/heads/**', 'refs/heads/feature/a/b', true],
    ['octo-org/*', 'octo-org/reports', true],
    ['octo-org/*', 'octo-org-evil/reports', false],
    ['octo-org/*', 'octo-org/reports/../x', false],
    ['*', 'a/b', false],
    ['**', 'a/b', true],
    ['*-report', 'nightly-report', true],
    ['a*b*c', 'aXXbYYc', true],
    ['a*b*c', 'aXXbYY', false],
    ['org/repo/.github/workflows/*.yml@**', 'org/repo/.github/workflows/deploy.yml@refs/heads/main', true],
    [
      'org/repo/.github/workflows/*.yml@**',
      'org/repo/.github/workflows/sub/deploy.yml@refs/heads/main',
      false,
    ],
    ['v?.0', 'v1.0', false],
    ['v?.0', 'v?.0', true],
  ];
  for (const [pattern, value, expected] of table) {
    it(`${pattern} ${expected ? 'matches' : 'does not match'} ${value}`, () => {
      assert.equal(matchGlob(compileGlob(pattern), value), expected);
    });
  }

  it('stays linear on adversarial input', () => {
    const glob = compileGlob(`${'*a'.repeat(20)}b`);
    // A backtracking regular expression takes exponential time here; the table takes 20 x 4096 steps.
    assert.equal(matchGlob(glob, 'a'.repeat(4096)), false);
  });
});
