/**
 * `warden serve --config` with its secrets in Vault (the Vault stand-in; no Vault server can run
 * here), the way issue 18's docs tell an operator to deploy it: the API token, the target admin's
 * password and the masking key are `vault:` references, and the process is given only the Vault
 * token. A grant's credential, used directly (no proxy), reads `customers.email` hashed with the
 * key from Vault; none of the values reaches serve's output; a reference to a field that is not
 * there stops serve with an error naming the setting and the fields that exist.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { stringify } from 'yaml';
import { MaskingKey } from '../../proxy/masking/index.ts';
import { buildTestConfig, createTargetDatabase } from '../helpers/broker-fixture.ts';
import { execSql, freePort, type PgCluster, startPgCluster } from '../helpers/pg-cluster.ts';
import type { PsqlLogin } from '../helpers/psql.ts';
import { callApi, ServeProcess, serveBroker, WARDEN } from '../helpers/serve-process.ts';
import { startVaultStandin, type VaultStandin } from '../helpers/vault-standin.ts';

const OPS_TOKEN = 'ops-token-from-vault-0123456789abcdef';
const MASKING_KEY = 'masking-key-from-vault-0123456789abcdef';
const EMAILS = ['ann@example.com', 'ben@example.com'];

describe('warden serve --config with its secrets in Vault', () => {
  let cluster: PgCluster;
  let vault: VaultStandin;
  let dir: string;
  let url: string;
  let serve: ServeProcess;
  let config: Record<string, unknown>;
  let env: () => NodeJS.ProcessEnv;

  before(async () => {
    cluster = await startPgCluster();
    const database = await createTargetDatabase(cluster);
    await execSql(
      cluster,
      database,
      `CREATE TABLE customers (id int, email text); INSERT INTO customers VALUES (1, '${EMAILS[0]}'), (2, '${EMAILS[1]}')`,
    );
    vault = await startVaultStandin();
    vault.kvPut('warden', {
      ops_token: OPS_TOKEN,
      pg_admin_password: cluster.password,
      masking_key: MASKING_KEY,
    });
    vault.addPolicy('warden', { 'kv/data/warden': ['read'] });
    const vaultToken = vault.addToken(['warden']);
    dir = mkdtempSync(join(tmpdir(), 'warden-serve-vault-'));
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    config = buildTestConfig(cluster, database, {}) as Record<string, unknown>;
    config.broker = serveBroker(dir, port, [
      { name: 'ops', role: 'admin', secret: { vault: 'kv/data/warden#ops_token' } },
    ]);
    const target = (config.targets as Record<string, Record<string, unknown>>)['app-db']!;
    (target.admin as Record<string, unknown>).password = { vault: 'kv/data/warden#pg_admin_password' };
    target.masking = {
      key: 'vault:kv/data/warden#masking_key',
      columns: [{ match: 'customers.email', style: 'hash' }],
    };
    config.vault = { address: vault.address, auth: { method: 'token', token: { env: 'VT' } }, timeout: '2s' };
    const configFile = join(dir, 'warden.yaml');
    writeFileSync(configFile, stringify(config));
    // Only the Vault token: every other secret comes from Vault.
    env = () => ({
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: dir,
      VT: vaultToken,
      WARDEN_LOG_LEVEL: 'debug',
    });
    serve = new ServeProcess(configFile, url, env);
    await serve.start();
  });

  after(async () => {
    await serve?.kill();
    await vault?.close();
    await cluster?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('takes the API token from Vault and refuses any other', async () => {
    assert.equal((await callApi(url, `${OPS_TOKEN}x`, 'GET', '/v1/requests?state=')).status, 401);
    assert.equal((await callApi(url, 'VT', 'GET', '/v1/requests?state=')).status, 401);
    assert.equal((await callApi(url, OPS_TOKEN, 'GET', '/v1/requests?state=')).status, 200);
  });

  it("a grant's own login reads the masked column hashed with Vault's key, the same token for every grant", async () => {
    const seen: string[][] = [];
    for (const requester of ['carol', 'carol']) {
      const grant = await callApi(url, OPS_TOKEN, 'POST', '/v1/requests', {
        requester,
        target: 'app-db',
        level: 'read',
        duration: '10m',
        reason: 'vault masking key',
      });
      assert.equal(grant.body.request?.state, 'active', JSON.stringify(grant.body));
      const login = grant.body.credential as PsqlLogin;
      const client = new pg.Client({ ...login, ssl: false });
      await client.connect();
      try {
        const { rows } = await client.query<{ email: string }>('SELECT email FROM customers ORDER BY id');
        seen.push(rows.map((r) => r.email));
        // Deriving it does not help either: the base table's column is not the role's to read.
        const derived = await client.query<{ e: string }>(
          "SELECT replace(email, '@', ' at ') AS e FROM customers",
        );
        for (const row of derived.rows)
          for (const email of EMAILS) assert.ok(!row.e.includes(email.split('@')[0]!));
      } finally {
        await client.end();
      }
    }
    const key = new MaskingKey(Buffer.from(MASKING_KEY, 'utf8'));
    const expected = EMAILS.map((email) => key.tokenize(email));
    assert.deepEqual(seen, [expected, expected]);
  });

  it('writes none of the values it read from Vault to its output', () => {
    assert.ok(serve.output.length > 0);
    for (const secret of [OPS_TOKEN, MASKING_KEY, cluster.password]) {
      assert.ok(!serve.output.includes(secret), 'a secret from Vault reached the output');
    }
  });

  it('a reference to a field Vault does not have stops serve, naming the setting, the fields there, no value', async () => {
    const broken = structuredClone(config);
    const target = (broken.targets as Record<string, Record<string, unknown>>)['app-db']!;
    (target.masking as Record<string, unknown>).key = 'vault:kv/data/warden#no_such_field';
    (broken.broker as Record<string, unknown>).listen = '127.0.0.1:0';
    const file = join(dir, 'broken.yaml');
    writeFileSync(file, stringify(broken));
    // Not spawnSync: the Vault stand-in answers from this process's event loop.
    const run = await new Promise<{
      status: number | null;
      signal: string | null;
      stdout: string;
      stderr: string;
    }>((resolve) => {
      const child = execFile(
        process.execPath,
        [WARDEN, 'serve', '--config', file],
        { env: env(), encoding: 'utf8', timeout: 30_000 },
        (_error, stdout, stderr) =>
          resolve({ status: child.exitCode, signal: child.signalCode, stdout, stderr }),
      );
    });
    assert.notEqual(run.status, 0, 'serve must not start');
    assert.equal(run.signal, null, 'serve exits on its own');
    const output = run.stdout + run.stderr;
    assert.match(output, /ERR_CONFIG_SECRET/);
    assert.match(output, /no_such_field/);
    assert.match(output, /masking_key/, 'the fields that exist are named');
    for (const secret of [OPS_TOKEN, MASKING_KEY, cluster.password]) assert.ok(!output.includes(secret));
  });
});
