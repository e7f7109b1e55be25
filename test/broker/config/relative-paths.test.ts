/**
 * Issue 14, "Relative paths": a relative store path was resolved against the current directory.
 * Every path a configuration file names is now relative to that file's directory.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../../broker/config/load.ts';
import { resolveLocalSecret } from '../../../broker/config/secrets.ts';
import { createSelfSignedCertificate } from '../../../cli/demo/tls.ts';
import { compilePgProxyTarget } from '../../../proxy/pg/config.ts';

const CONFIG = `
broker:
  store: { kind: embedded, path: data/warden.db }
  tokens:
    - { name: admin, role: admin, secret: { file: secrets/admin-token } }
targets:
  db:
    kind: postgres
    admin: { host: 127.0.0.1, database: app, user: warden, password: { file: secrets/db-password } }
    tls: { mode: verify-full, ca: { file: tls/ca.pem } }
    levels: { read: { grants: [select] } }
    proxy:
      listen: 127.0.0.1:0
      tls: { cert: tls/proxy.crt, key: tls/proxy.key }
      masking: { key: "file:secrets/masking-key", columns: [{ match: "*.email", style: hash }] }
  web:
    kind: ssh
    host: 127.0.0.1
    known_hosts: ssh/known_hosts
    levels: { shell: { principals: [deploy] } }
ssh:
  ca_key: { file: ssh/ca }
  proxy: { host_key: { file: ssh/host }, upstream_key: { file: /abs/upstream } }
chat:
  slack: { mode: http, signing_secret: { file: secrets/slack-signing }, bot_token: { env: SLACK_BOT_TOKEN } }
audit:
  signing_key: { file: secrets/audit.pem }
  public_keys: [keys/old-audit.pub]
  checkpoints: { file: ../outside/checkpoints.jsonl }
`;

describe('relative paths (fixed): paths in warden.yaml are relative to its directory, not the cwd', () => {
  let dir: string;
  let etc: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'warden-relative-'));
    etc = join(dir, 'etc');
    mkdirSync(join(etc, 'tls'), { recursive: true });
    mkdirSync(join(etc, 'secrets'), { recursive: true });
    writeFileSync(join(etc, 'warden.yaml'), CONFIG);
    writeFileSync(join(etc, 'secrets', 'admin-token'), 'token-from-the-config-dir\n');
    writeFileSync(join(etc, 'secrets', 'masking-key'), 'masking-key-material-0123456789');
    const made = createSelfSignedCertificate(join(etc, 'tls'))!;
    renameSync(made.cert, join(etc, 'tls', 'proxy.crt'));
    renameSync(made.key, join(etc, 'tls', 'proxy.key'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('resolves every path against the configuration file', () => {
    assert.notEqual(process.cwd(), etc);
    const config = loadConfig(join(etc, 'warden.yaml'));
    assert.equal(
      config.broker.store.kind === 'embedded' && config.broker.store.path,
      join(etc, 'data/warden.db'),
    );
    assert.deepEqual(config.broker.tokens[0]!.secret, { file: join(etc, 'secrets/admin-token') });
    const db = config.targets.db!;
    assert.ok(db.kind === 'postgres');
    assert.deepEqual(db.admin.password, { file: join(etc, 'secrets/db-password') });
    assert.deepEqual(db.tls?.ca, { file: join(etc, 'tls/ca.pem') });
    assert.deepEqual(db.proxy?.tls, { cert: join(etc, 'tls/proxy.crt'), key: join(etc, 'tls/proxy.key') });
    assert.equal(db.proxy?.masking.key, `file:${join(etc, 'secrets/masking-key')}`);
    const web = config.targets.web!;
    assert.ok(web.kind === 'ssh');
    assert.equal(web.known_hosts, join(etc, 'ssh/known_hosts'));
    assert.deepEqual(config.ssh?.ca_key, { file: join(etc, 'ssh/ca') });
    assert.deepEqual(config.ssh?.proxy?.upstream_key, { file: '/abs/upstream' }, 'absolute paths stay');
    assert.deepEqual((config.chat as { slack: { signing_secret: unknown } }).slack.signing_secret, {
      file: join(etc, 'secrets/slack-signing'),
    });
    assert.deepEqual(config.audit.signing_key, { file: join(etc, 'secrets/audit.pem') });
    assert.deepEqual(config.audit.public_keys, [join(etc, 'keys/old-audit.pub')]);
    assert.equal(config.audit.checkpoints.file, join(dir, 'outside/checkpoints.jsonl'));
  });

  it('the files are read from there: a secret, the proxy TLS pair and the masking key', () => {
    const config = loadConfig(join(etc, 'warden.yaml'));
    assert.equal(
      resolveLocalSecret(config.broker.tokens[0]!.secret, 'x').reveal(),
      'token-from-the-config-dir',
    );
    const db = config.targets.db!;
    assert.ok(db.kind === 'postgres' && db.proxy);
    const compiled = compilePgProxyTarget('db', db.proxy);
    assert.ok(compiled.tls, 'the TLS context was built from the files beside the config');
  });
});
