/**
 * The shipped examples stay true: they parse with the real schema, and the Dockerfile copies what
 * exists and every folder the CLI imports.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { parseBotConfig } from '../../bot/config.ts';
import { loadConfig } from '../../broker/config/load.ts';
import { FileDirectory } from '../../broker/directory/directory.ts';
import { runPolicyCases } from '../../broker/policy/explain.ts';

const root = join(import.meta.dirname, '../..');

describe('manifests', () => {
  it('the example warden.yaml is valid, and its policy cases pass', () => {
    const config = loadConfig(join(root, 'manifests/examples/warden.yaml'));
    assert.equal(parseBotConfig(config.chat).slack?.mode, 'http');
    const results = runPolicyCases(
      config,
      new FileDirectory(config.people),
      readFileSync(join(root, 'manifests/examples/policy-cases.yaml'), 'utf8'),
    );
    assert.deepEqual(
      results.filter((r) => !r.passed).map((r) => `${r.name}: ${r.problems.join('; ')}`),
      [],
    );
  });

  it('the Kubernetes manifests are valid YAML with a health-checked Deployment', () => {
    const docs = parseAllDocuments(readFileSync(join(root, 'manifests/kubernetes/warden.yaml'), 'utf8')).map(
      (d) => d.toJS(),
    );
    const deployment = docs.find((d) => d.kind === 'Deployment');
    const container = deployment.spec.template.spec.containers[0];
    assert.equal(container.readinessProbe.httpGet.path, '/v1/health');
    assert.deepEqual(container.args.slice(0, 1), ['serve']);
  });

  it('the Dockerfile copies every folder the CLI imports (lib/ came after the COPY lines)', () => {
    const copied = new Set(
      readFileSync(join(root, 'Dockerfile'), 'utf8')
        .split('\n')
        .filter((l) => /^COPY (?!--from)/.test(l))
        .flatMap((l) => l.split(/\s+/).slice(1, -1)),
    );
    const seen = new Set<string>();
    const folders = new Set<string>();
    const visit = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      folders.add(relative(root, file).split('/')[0]!);
      const text = readFileSync(file, 'utf8');
      for (const [, spec] of text.matchAll(/(?:from|import\()\s*'(\.{1,2}\/[^']+)'/g)) {
        visit(resolve(dirname(file), spec!));
      }
    };
    visit(join(root, 'cli/warden.js'));
    assert.ok(folders.has('lib') && folders.has('broker'), [...folders].join(', '));
    for (const folder of folders) assert.ok(copied.has(folder), `the Dockerfile does not copy ${folder}/`);
    // The packed CLI (`npm pack`, the CI examples' install) ships the same folders.
    const packed = new Set(JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).files as string[]);
    for (const folder of folders) assert.ok(packed.has(folder), `package.json files does not list ${folder}/`);
  });

  it('the Dockerfile copies only what exists and starts the CLI', () => {
    const lines = readFileSync(join(root, 'Dockerfile'), 'utf8').split('\n');
    for (const line of lines.filter((l) => /^COPY (?!--from)/.test(l))) {
      const sources = line.split(/\s+/).slice(1, -1);
      for (const source of sources)
        assert.ok(existsSync(join(root, source)), `${line}: ${source} is missing`);
    }
    const entry = lines.find((l) => l.startsWith('ENTRYPOINT'))!;
    const script = JSON.parse(entry.slice('ENTRYPOINT'.length))[1] as string;
    assert.ok(existsSync(join(root, script.replace('/app/', ''))), `${script} is missing`);
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
    assert.ok(pkg.dependencies.tsx, 'the image runs TypeScript through tsx, a runtime dependency');
  });
});
