/**
 * Issue 14, "Kubernetes manifest": replicas: 2 broke proxied grants; no Secret example; nothing
 * mounted the files the config names; no Service ports for the proxies; liveness and readiness
 * both hit /v1/health, which pings the store. `kubectl apply --dry-run=client` needs a server, so
 * every object is checked against the Kubernetes schemas (kubernetes-models), and every file,
 * variable and port the embedded warden.yaml names is checked against the mounts, Secrets and
 * ports that provide it.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { PersistentVolumeClaim } from 'kubernetes-models/v1/PersistentVolumeClaim';
import { Secret as K8sSecret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { parseAllDocuments } from 'yaml';
import { parseBotConfig } from '../../bot/config.ts';
import { ApiServer } from '../../broker/api/server.ts';
import { parseConfigText, resolveConfigPaths } from '../../broker/config/load.ts';
import { createSilentLogger } from '../../broker/log.ts';
import { openEmbeddedStore } from '../../broker/store/sql-store.ts';
import type { Store } from '../../broker/store/store.ts';

const root = join(import.meta.dirname, '../..');
const text = readFileSync(join(root, 'manifests/kubernetes/warden.yaml'), 'utf8');
// biome-ignore lint/suspicious/noExplicitAny: manifests are read loosely, their shape is checked below
const docs: any[] = parseAllDocuments(text).map((d) => d.toJS());
const byKind = (kind: string) => docs.filter((d) => d.kind === kind);
const deployment = byKind('Deployment')[0];
const pod = deployment.spec.template.spec;
const container = pod.containers[0];
const CONFIG_PATH = '/etc/warden/warden.yaml';
const configMap = byKind('ConfigMap').find((c) => c.metadata.name === 'warden-config');
const config = resolveConfigPaths(parseConfigText(configMap.data['warden.yaml'], CONFIG_PATH), '/etc/warden');

/** Every `{file}` and `{env}` reference, and the plain file paths, the configuration names. */
function referencesOf(node: unknown, found = { files: [] as string[], envs: [] as string[] }) {
  if (Array.isArray(node)) for (const item of node) referencesOf(item, found);
  else if (node && typeof node === 'object') {
    const keys = Object.keys(node);
    const value = node as Record<string, unknown>;
    if (keys.length === 1 && typeof value.file === 'string') found.files.push(value.file);
    else if (keys.length === 1 && typeof value.env === 'string') found.envs.push(value.env);
    else for (const v of Object.values(value)) referencesOf(v, found);
  }
  return found;
}

/** The volume mount that holds `path`, and the key of the file inside its volume. */
function mountOf(path: string) {
  const mount = container.volumeMounts
    .filter((m: { mountPath: string }) => path.startsWith(`${m.mountPath}/`))
    .sort((a: { mountPath: string }, b: { mountPath: string }) => b.mountPath.length - a.mountPath.length)[0];
  assert.ok(mount, `nothing mounts ${path}`);
  const volume = pod.volumes.find((v: { name: string }) => v.name === mount.name);
  assert.ok(volume, `no volume ${mount.name}`);
  return { mount, volume, key: relative(mount.mountPath, path) };
}

function secretKeys(name: string): string[] {
  const secret = byKind('Secret').find((s) => s.metadata.name === name);
  assert.ok(secret, `no Secret ${name} in the manifest`);
  return Object.keys({ ...secret.stringData, ...secret.data });
}

describe('the Kubernetes manifest says only what is true', () => {
  it('every object is valid against the Kubernetes schemas', () => {
    const models: Record<string, new (v: never) => { validate(): void }> = {
      ConfigMap,
      Secret: K8sSecret,
      PersistentVolumeClaim,
      Deployment,
      Service,
    };
    for (const doc of docs) {
      const Model = models[doc.kind];
      assert.ok(Model, `unexpected kind ${doc.kind}`);
      new Model(doc as never).validate();
    }
  });

  it('replicas: 2 breaks proxied grants (fixed): one replica, the reason beside it, no overlap on rollout', () => {
    assert.equal(deployment.spec.replicas, 1);
    assert.equal(deployment.spec.strategy.type, 'Recreate');
    const lines = text.split('\n');
    const at = lines.findIndex((l) => /^\s+replicas: 1\s*$/.test(l));
    assert.match(lines.slice(at - 4, at).join('\n'), /#.*password lives in the memory of the\s*\n.*process/);
  });

  it('the embedded configuration is valid, and runs as the Dockerfile user', () => {
    assert.equal(parseBotConfig(config.chat).slack?.mode, 'http');
    assert.deepEqual(container.args, ['serve', '--config', CONFIG_PATH]);
    assert.ok(
      container.volumeMounts.some((m: { mountPath: string }) => CONFIG_PATH.startsWith(`${m.mountPath}/`)),
    );
    const user = /^USER (\d+)/m.exec(readFileSync(join(root, 'Dockerfile'), 'utf8'))![1];
    assert.equal(String(pod.securityContext.runAsUser), user);
  });

  it('nothing mounts the files the example config names (fixed): every file is mounted from an object that has it', () => {
    const { files } = referencesOf(config);
    const target = config.targets['prod-db']!;
    assert.ok(target.kind === 'postgres' && target.proxy?.tls);
    files.push(target.proxy.tls.cert, target.proxy.tls.key);
    const storeUrl = byKind('Secret').find((s) => s.metadata.name === 'warden-env').stringData
      .WARDEN_STORE_URL;
    const sslrootcert = new URL(storeUrl).searchParams.get('sslrootcert');
    assert.ok(sslrootcert, 'the store URL names its CA');
    assert.equal(new URL(storeUrl).searchParams.get('sslmode'), 'verify-full');
    files.push(sslrootcert, CONFIG_PATH);
    assert.ok(files.length >= 7, files.join(' '));
    for (const file of files) {
      const { volume, key } = mountOf(file);
      if (volume.configMap) {
        const map = byKind('ConfigMap').find((c) => c.metadata.name === volume.configMap.name);
        assert.ok(map && key in map.data, `${file}: ConfigMap ${volume.configMap.name} has no ${key}`);
      } else if (volume.secret) {
        assert.ok(secretKeys(volume.secret.secretName).includes(key), `${file}: Secret has no ${key}`);
      } else assert.fail(`${file} is read from a volume that holds no such file`);
    }
    // Written, not read: the checkpoint file sits on a writable, persistent volume.
    const { mount, volume } = mountOf(config.audit.checkpoints.file!);
    assert.ok(!mount.readOnly && volume.persistentVolumeClaim, 'the checkpoint file survives a restart');
    const claim = byKind('PersistentVolumeClaim').find(
      (c) => c.metadata.name === volume.persistentVolumeClaim.claimName,
    );
    assert.ok(claim);
    // The root file system is read-only: tsx's cache needs a writable /tmp.
    assert.equal(container.securityContext.readOnlyRootFilesystem, true);
    assert.ok(
      pod.volumes.find((v: { name: string; emptyDir?: object }) => v.name === mountOf('/tmp/x').mount.name)
        ?.emptyDir,
    );
  });

  it('no Secret example (fixed): every variable the config references comes from a Secret that lists it', () => {
    const { envs } = referencesOf(config);
    assert.ok(envs.includes('WARDEN_STORE_URL') && envs.includes('SLACK_BOT_TOKEN'));
    const provided = container.envFrom.flatMap((e: { secretRef?: { name: string } }) =>
      e.secretRef ? secretKeys(e.secretRef.name) : [],
    );
    for (const env of envs) assert.ok(provided.includes(env), `${env} is not provided`);
  });

  it('no Service ports for the proxies (fixed): every listener has a container port and a Service port', () => {
    const listens = [
      config.broker.listen,
      parseBotConfig(config.chat).slack!.listen,
      ...Object.values(config.targets).flatMap((t) =>
        t.kind === 'postgres' && t.proxy ? [t.proxy.listen] : [],
      ),
      ...(config.ssh?.proxy ? [config.ssh.proxy.listen] : []),
    ];
    assert.ok(listens.includes('0.0.0.0:6432'));
    const services = byKind('Service');
    for (const listen of listens) {
      const port = Number(listen.split(':').at(-1));
      const named = container.ports.find((p: { containerPort: number }) => p.containerPort === port);
      assert.ok(named, `no containerPort ${port}`);
      const exposed = services.some((s) =>
        s.spec.ports.some(
          (p: { targetPort: unknown }) => p.targetPort === named.name || p.targetPort === port,
        ),
      );
      assert.ok(exposed, `no Service port for ${listen}`);
    }
  });

  it('liveness and readiness both hit /v1/health (fixed): a startup probe, and liveness that never touches the store', () => {
    const portNames = container.ports.map((p: { name: string }) => p.name);
    for (const probe of [container.startupProbe, container.livenessProbe, container.readinessProbe]) {
      assert.ok(portNames.includes(probe.httpGet.port), probe.httpGet.port);
    }
    assert.equal(container.startupProbe.httpGet.path, '/v1/health/live');
    assert.equal(container.livenessProbe.httpGet.path, '/v1/health/live');
    assert.equal(container.readinessProbe.httpGet.path, '/v1/health');
  });
});

describe('liveness and readiness both hit /v1/health (fixed): the broker API', () => {
  it('/v1/health/live answers while the store is down; /v1/health does not', async () => {
    const store = openEmbeddedStore(':memory:');
    await store.migrate();
    const down: Store = { ...store, ping: () => Promise.reject(new Error('store down')) };
    const api = new ApiServer({
      broker: {} as never,
      store: down,
      tokens: [],
      logger: createSilentLogger(),
    });
    const { port } = await api.listen(0);
    try {
      const live = await fetch(`http://127.0.0.1:${port}/v1/health/live`);
      assert.equal(live.status, 200);
      const ready = await fetch(`http://127.0.0.1:${port}/v1/health`);
      assert.equal(ready.status, 500);
    } finally {
      await api.close();
      await store.close();
    }
  });
});
