import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { parseCiConfig } from '../../../broker/ci/config.ts';

const read = (name: string) =>
  parse(readFileSync(new URL(`../../../manifests/ci/${name}`, import.meta.url), 'utf8'));

describe('CI example manifests', () => {
  it('the broker ci: example is a valid configuration', () => {
    const config = parseCiConfig(read('warden-ci.yaml').ci);
    assert.deepEqual(
      config.rules.map((r) => r.name),
      ['nightly-report', 'gitlab-export'],
    );
  });

  it('the GitHub workflow may request an OIDC token and exchanges it for the reporting database', () => {
    const workflow = read('nightly-report.yaml');
    assert.equal(workflow.permissions['id-token'], 'write');
    const steps: { run?: string }[] = workflow.jobs.report.steps;
    const exchange = steps.findIndex((s) => s.run?.includes('warden ci exchange'));
    assert.match(steps[exchange]!.run!, /--target reporting-db --level read --ttl 15m --format github/);
    assert.match(steps[exchange]!.run!, /--sslmode verify-full --ca \S+/);
    assert.ok(steps.slice(exchange + 1).some((s) => s.run?.includes('$DATABASE_URL')));
  });

  it('the GitLab job declares its id_tokens audience', () => {
    const job = read('gitlab-ci.yaml')['nightly-export'];
    assert.equal(job.id_tokens.WARDEN_ID_TOKEN.aud, 'warden');
  });
});
