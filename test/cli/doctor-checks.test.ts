/**
 * `warden doctor` never checked the proxy TLS files, the masking key, the tokens, or whether SSH
 * targets answer (issue 14): each of those broke a deployment only later (a proxy that cannot start
 * TLS, a certificate expired overnight, a world-readable key, `changeme` as the admin token, an
 * SSH target behind a firewall). Each case here fails on the doctor before these checks.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseConfig } from '../../broker/config/load.ts';
import { runDoctorChecks } from '../../cli/commands/doctor.ts';
import {
  checkApiTokens,
  checkMaskingKey,
  checkProxyTls,
  checkSshTarget,
  describeWeakSecret,
} from '../../cli/commands/doctor-checks.ts';
import { createSelfSignedCertificate } from '../../cli/demo/tls.ts';
import { formatCaPublicKeyLine, generateCa } from '../../lib/ssh/keys.ts';
import { freePort } from '../helpers/pg-cluster.ts';
import { type Sshd, startSshd } from '../helpers/sshd.ts';

const DAY = 24 * 60 * 60_000;
const STRONG_KEY = 'k3Y-9fQ2xZr7LmW4pT8vB1nC6dH0sJ5aE2uY7iO3';

function certificate(dir: string, name: string) {
  const sub = join(dir, name);
  execFileSync('mkdir', ['-p', sub]);
  const files = createSelfSignedCertificate(sub);
  assert.ok(files, 'openssl makes test certificates');
  chmodSync(files.key, 0o600);
  return files;
}

describe('warden doctor: what breaks later', () => {
  let dir: string;
  let sshd: Sshd;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-doctor-checks-'));
    sshd = await startSshd({ trustedUserCaKeys: [formatCaPublicKeyLine(generateCa())] });
  });
  after(async () => {
    await sshd?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  describe('doctor never checked the proxy TLS files', () => {
    it('a good pair passes and says when it expires', () => {
      const files = certificate(dir, 'good');
      const check = checkProxyTls('app-db', files, Date.now());
      assert.equal(check.ok, true, check.detail);
      assert.match(
        check.detail,
        /CN=localhost, key matches, expires in 1 days — renew it soon; key mode 0600/,
      );
    });

    it('a missing file, a key of another certificate, a key readable by others, an expired certificate', () => {
      const a = certificate(dir, 'a');
      const b = certificate(dir, 'b');
      const missing = checkProxyTls('app-db', { cert: join(dir, 'nope.pem'), key: a.key }, Date.now());
      assert.equal(missing.ok, false);
      assert.match(missing.detail, /cannot read the certificate .*nope\.pem \(ENOENT\)/);
      assert.equal(missing.configuration, true);

      const mismatch = checkProxyTls('app-db', { cert: a.cert, key: b.key }, Date.now());
      assert.equal(mismatch.ok, false);
      assert.match(mismatch.detail, /does not match the certificate/);
      assert.match(mismatch.fix!, /targets\.app-db\.proxy\.tls\.key/);

      const open = join(dir, 'open-key.pem');
      copyFileSync(a.key, open);
      chmodSync(open, 0o644);
      const readable = checkProxyTls('app-db', { cert: a.cert, key: open }, Date.now());
      assert.equal(readable.ok, false);
      assert.match(readable.detail, /readable by everyone \(mode 0644\)/);
      assert.equal(readable.fix, `chmod 600 ${open}`);
      chmodSync(open, 0o640);
      assert.match(
        checkProxyTls('app-db', { cert: a.cert, key: open }, Date.now()).detail,
        /readable by its group/,
      );

      // The test certificate is valid for 2 days: three days on, it has expired.
      const expired = checkProxyTls('app-db', a, Date.now() + 3 * DAY);
      assert.equal(expired.ok, false);
      assert.match(expired.detail, /the certificate expired on /);
      assert.equal(expired.configuration, undefined, 'an expired certificate is the world, not the file');
      const early = checkProxyTls('app-db', a, Date.now() - 3 * DAY);
      assert.match(early.detail, /valid only from/);

      const notPem = join(dir, 'not.pem');
      writeFileSync(notPem, 'hello');
      assert.match(
        checkProxyTls('app-db', { cert: notPem, key: a.key }, Date.now()).detail,
        /holds no PEM certificate/,
      );
      const keyText = join(dir, 'bad-key.pem');
      writeFileSync(keyText, 'SUPERSECRET-not-a-key', { mode: 0o600 });
      const badKey = checkProxyTls('app-db', { cert: a.cert, key: keyText }, Date.now());
      assert.match(badKey.detail, /holds no readable private key/);
      assert.equal(JSON.stringify(badKey).includes('SUPERSECRET'), false, 'the key file is never quoted');
    });
  });

  describe('doctor never checked the masking key', () => {
    it('missing, short, a placeholder, readable by everyone, inline; a good one passes', () => {
      const path = 'targets.app-db.proxy.masking.key';
      const unset = checkMaskingKey(path, 'env:MASK', {});
      assert.equal(unset.ok, false);
      assert.match(unset.detail, /environment variable MASK is not set/);
      assert.match(unset.fix!, /openssl rand -base64 32/);
      const short = checkMaskingKey(path, 'env:MASK', { MASK: 'a1b2c3d4e5f6g7h8i9' });
      assert.match(short.detail, /has 18 bytes, fewer than 32/);
      const placeholder = checkMaskingKey(path, 'env:MASK', { MASK: 'change-me' });
      assert.match(placeholder.detail, /placeholder/);
      const file = join(dir, 'mask.key');
      writeFileSync(file, STRONG_KEY, { mode: 0o644 });
      chmodSync(file, 0o644);
      const open = checkMaskingKey(path, `file:${file}`, {});
      assert.equal(open.ok, false);
      assert.match(open.detail, /readable by everyone \(mode 0644\)/);
      chmodSync(file, 0o600);
      const good = checkMaskingKey(path, `file:${file}`, {});
      assert.equal(good.ok, true, good.detail);
      assert.equal(checkMaskingKey(path, STRONG_KEY, {}).detail, 'the key is written inline');
      for (const c of [short, placeholder, open, good]) {
        assert.equal(JSON.stringify(c).includes(STRONG_KEY), false, 'the key never reaches a line');
      }
    });
  });

  describe('doctor never checked the API tokens', () => {
    it('a placeholder, a short one, a shared one and a missing one are named; strong ones pass', async () => {
      const config = parseConfig({
        broker: {
          tokens: [
            { name: 'ci', role: 'service', secret: { env: 'T_CI' } },
            { name: 'ops', role: 'admin', secret: { env: 'T_OPS' } },
            { name: 'bot', role: 'service', secret: { env: 'T_BOT' } },
            { name: 'twin', role: 'service', secret: { env: 'T_TWIN' } },
            { name: 'gone', role: 'admin', secret: { env: 'T_GONE' } },
          ],
        },
        targets: {},
        rules: [],
        people: [],
      });
      const checks = await checkApiTokens(config, {
        T_CI: STRONG_KEY,
        T_OPS: 'changeme',
        T_BOT: 'short-token',
        T_TWIN: STRONG_KEY,
      });
      const by = Object.fromEntries(checks.map((c) => [c.name, c]));
      assert.equal(by['API token ci (service)']!.ok, true);
      assert.match(
        by['API token ops (admin)']!.detail,
        /broker\.tokens\[1:ops\]\.secret is not a strong token: it is a placeholder value/,
      );
      assert.match(by['API token bot (service)']!.detail, /11 characters, fewer than 24/);
      assert.match(by['API token twin (service)']!.detail, /the same secret as token ci/);
      assert.match(by['API token gone (admin)']!.detail, /T_GONE/);
      for (const c of checks) {
        assert.equal(c.ok || c.configuration === true, true);
        for (const secret of [STRONG_KEY, 'changeme', 'short-token']) {
          assert.equal(JSON.stringify(c).includes(secret), false, 'a token value in the output');
        }
      }
    });

    it('what counts as weak', () => {
      const cases: [string, string | undefined][] = [
        ['<your-token-here>', 'it is a template placeholder'],
        ['{{ warden_token }}', 'it is a template placeholder'],
        ['xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx', 'it is one character repeated'],
        ['REPLACE_ME_with_a_real_token_please', 'it is a placeholder value'],
        ['abababababababababababababab', 'it has fewer than 8 distinct characters'],
        [STRONG_KEY, undefined],
      ];
      for (const [value, expected] of cases) assert.equal(describeWeakSecret(value, 24), expected, value);
    });
  });

  describe('doctor never checked whether SSH targets answer', () => {
    let silent: Server;
    let http: Server;
    before(async () => {
      silent = createServer(() => {});
      http = createServer((socket) => socket.end('HTTP/1.1 400 Bad Request\r\n\r\n'));
      await Promise.all([
        new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r())),
        new Promise<void>((r) => http.listen(0, '127.0.0.1', () => r())),
      ]);
    });
    after(async () => {
      silent.close();
      http.close();
    });
    const portOf = (s: Server) => (s.address() as { port: number }).port;

    it('a real sshd answers with its banner', async () => {
      const check = await checkSshTarget('web-1', '127.0.0.1', sshd.port);
      assert.equal(check.ok, true, check.detail);
      assert.match(check.detail, new RegExp(`^127\\.0\\.0\\.1:${sshd.port}: SSH-2\\.0-OpenSSH`));
    });

    it('a closed port, a silent server and a server that is not SSH are told apart', async () => {
      const closed = await freePort();
      const refused = await checkSshTarget('web-1', '127.0.0.1', closed);
      assert.equal(refused.ok, false);
      assert.match(refused.detail, /cannot connect to 127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
      assert.match(refused.fix!, /targets\.web-1\.host and port/);
      assert.equal(refused.configuration, undefined, 'the world is wrong, not the file');
      const quiet = await checkSshTarget('web-1', '127.0.0.1', portOf(silent), 300);
      assert.match(quiet.detail, /sent no SSH banner within 0\.3 s \(connected, then silence\)/);
      const notSsh = await checkSshTarget('web-1', '127.0.0.1', portOf(http));
      assert.equal(notSsh.ok, false);
      assert.match(notSsh.detail, /closed the connection after HTTP\/1\.1 400/);
    });
  });

  it('runDoctorChecks reports each of them by name', async () => {
    const good = certificate(dir, 'wired');
    const closed = await freePort();
    const config = parseConfig(
      {
        broker: {
          store: { kind: 'embedded', path: join(dir, 'none.db') },
          tokens: [{ name: 'ops', role: 'admin', secret: { env: 'T_OPS' } }],
        },
        ssh: { ca_key: { env: 'SSH_CA' } },
        targets: {
          'app-db': {
            kind: 'postgres',
            admin: {
              host: '127.0.0.1',
              port: closed,
              database: 'app',
              user: 'warden',
              password: { env: 'PW' },
            },
            levels: { read: { grants: ['select'] } },
            proxy: { listen: '127.0.0.1:0', tls: good, masking: { key: 'env:MASK' } },
          },
          'web-1': {
            kind: 'ssh',
            host: '127.0.0.1',
            port: sshd.port,
            levels: { login: { principals: ['x'] } },
          },
        },
        rules: [],
        people: [],
      },
      join(dir, 'w.yaml'),
    );
    const checks = await runDoctorChecks(
      config,
      { T_OPS: 'changeme', PW: 'x', MASK: 'short' },
      { sshTimeoutMs: 2000 },
    );
    const by = Object.fromEntries(checks.map((c) => [c.name, c]));
    assert.equal(
      by['target app-db: proxy TLS files']?.ok,
      true,
      by['target app-db: proxy TLS files']?.detail,
    );
    assert.equal(by['masking key targets.app-db.proxy.masking.key']?.ok, false);
    assert.equal(by['API token ops (admin)']?.ok, false);
    assert.equal(by['target web-1: SSH answers']?.ok, true, by['target web-1: SSH answers']?.detail);
  });
});
