import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { waitFor } from '../../helpers/broker-fixture.ts';
import { type CiExchangeFixture, startCiExchangeFixture } from '../../helpers/ci-exchange-fixture.ts';
import type { OidcIssuer } from '../../helpers/oidc-issuer.ts';
import { type PgCluster, startPgCluster } from '../../helpers/pg-cluster.ts';

const nowSec = () => Math.floor(Date.now() / 1000);
const READ = { target: 'app-db', level: 'read', ttl: '5m' };

interface Answer {
  user: string;
  password: string;
  host: string;
  port: number;
  database: string;
  uri: string;
  expires_at: string;
}

async function connect(answer: Answer): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: answer.uri });
  client.on('error', () => {});
  await client.connect();
  return client;
}

async function loginFails(answer: Answer): Promise<boolean> {
  try {
    const client = await connect(answer);
    await client.end();
    return false;
  } catch {
    return true;
  }
}

describe('CI exchange over HTTP', () => {
  let cluster: PgCluster;
  let fx: CiExchangeFixture;
  let issuer: OidcIssuer;

  before(async () => {
    cluster = await startPgCluster();
    fx = await startCiExchangeFixture(cluster);
    issuer = fx.issuer;
  });
  after(async () => {
    await fx?.close();
    await cluster?.stop();
  });

  it('grants a read-only credential that logs in, reads, cannot write, and dies at expiry', async () => {
    const token = await issuer.issue();
    const res = await fx.post(token, { target: 'app-db', level: 'read', ttl: '3s' });
    assert.equal(res.status, 200, JSON.stringify(res.json));
    const answer = res.json as Answer;
    assert.match(answer.uri, /^postgresql:\/\//);
    assert.equal(answer.host, cluster.host);
    assert.equal(answer.port, cluster.port);
    assert.equal(res.json.route, 'direct');
    assert.ok(Date.parse(answer.expires_at) > Date.now());
    const client = await connect(answer);
    try {
      const rows = await client.query('SELECT count(*)::int AS n FROM invoices');
      assert.equal(rows.rows[0].n, 2);
      await assert.rejects(client.query("INSERT INTO invoices (customer, amount) VALUES ('x', 1)"), {
        code: '42501',
      });
    } finally {
      await client.end();
    }
    const granted = await fx.audit('ci.exchange.granted');
    const entry = granted.find((e) => e.subject === res.json.request_id);
    assert.ok(entry, 'granted exchange audited');
    assert.equal(entry.actor, 'ci:github:repo:octo-org/reports:ref:refs/heads/main');
    assert.equal(entry.data.issuer, issuer.url);
    assert.equal(entry.data.subject, 'repo:octo-org/reports:ref:refs/heads/main');
    assert.equal(entry.data.repository, 'octo-org/reports');
    assert.equal(
      entry.data.workflow,
      'octo-org/reports/.github/workflows/nightly-report.yml@refs/heads/main',
    );
    assert.equal(entry.data.run_id, '8812345678');
    assert.equal(entry.data.commit, 'e7f3a2c09b1d4f5a6e8c7b2d1f0a9e8d7c6b5a41');
    assert.equal(entry.data.target, 'app-db');
    assert.equal(entry.data.level, 'read');
    assert.equal(entry.data.user, answer.user);
    // Expiry: the broker drops the role; the same credential no longer logs in.
    await waitFor(() => loginFails(answer), 15_000, 'the credential to stop working');
    // Logins stop first (NOLOGIN); the role is dropped a few statements later.
    await waitFor(
      async () => !(await fx.wardenRoles()).includes(answer.user),
      15_000,
      'the role to be dropped',
    );
  });

  it('uses the rule maximum when no ttl is given', async () => {
    const res = await fx.post(await issuer.issue(), { target: 'app-db', level: 'read' });
    assert.equal(res.status, 200);
    const lifetime = Date.parse(res.json.expires_at) - Date.now();
    assert.ok(lifetime > 14 * 60_000 && lifetime <= 15 * 60_000, `lifetime ${lifetime}`);
  });

  const refusals: [string, () => Promise<string | undefined>, number, string, unknown?][] = [
    ['wrong audience', () => issuer.issue({ aud: 'someone-else' }), 401, 'ERR_CI_AUDIENCE_MISMATCH'],
    ['missing audience', () => issuer.issue({ aud: undefined }), 401, 'ERR_CI_AUDIENCE_MISSING'],
    ['wrong issuer', () => issuer.issue({ iss: 'https://evil.example.com' }), 401, 'ERR_CI_ISSUER_UNKNOWN'],
    [
      'expired',
      () => issuer.issue({ iat: nowSec() - 400, nbf: nowSec() - 400, exp: nowSec() - 100 }),
      401,
      'ERR_CI_TOKEN_EXPIRED',
    ],
    ['not yet valid', () => issuer.issue({ nbf: nowSec() + 600 }), 401, 'ERR_CI_TOKEN_NOT_YET_VALID'],
    [
      'too old',
      () => issuer.issue({ iat: nowSec() - 1200, nbf: nowSec() - 1200, exp: nowSec() + 300 }),
      401,
      'ERR_CI_TOKEN_TOO_OLD',
    ],
    ['alg none', async () => issuer.forge.algNone(), 401, 'ERR_CI_ALG_NOT_ALLOWED'],
    [
      'HS256 keyed with the public key',
      () => issuer.forge.hs256WithPublicKey(),
      401,
      'ERR_CI_ALG_NOT_ALLOWED',
    ],
    ['unknown kid', () => issuer.forge.unknownKid(), 401, 'ERR_CI_KEY_UNKNOWN'],
    [
      'tampered payload',
      () => issuer.forge.tamperedPayload({ repository: 'octo-org/other' }),
      401,
      'ERR_CI_SIGNATURE_INVALID',
    ],
    ['tampered signature', () => issuer.forge.tamperedSignature(), 401, 'ERR_CI_SIGNATURE_INVALID'],
    ['no bearer token', async () => undefined, 401, 'ERR_CI_TOKEN_MISSING'],
    ['a token that is not a JWT', async () => 'not-a-jwt', 401, 'ERR_CI_TOKEN_MALFORMED'],
    ['claims matching no rule', () => issuer.issue({ repository: 'octo-org/other' }), 403, 'ERR_CI_NO_RULE'],
    [
      'a branch the rule does not allow',
      () => issuer.issue({ ref: 'refs/heads/feature/x' }),
      403,
      'ERR_CI_REF_NOT_ALLOWED',
    ],
    [
      'a duration above the rule maximum',
      () => issuer.issue(),
      403,
      'ERR_CI_DURATION_TOO_LONG',
      { target: 'app-db', level: 'read', ttl: '16m' },
    ],
    [
      'a level no rule grants',
      () => issuer.issue(),
      403,
      'ERR_CI_NO_RULE',
      { target: 'app-db', level: 'admin' },
    ],
    ['an issuer whose JWKS is unreachable', () => fx.downIssuer.issue(), 503, 'ERR_CI_JWKS_UNAVAILABLE'],
    ['malformed JSON', () => issuer.issue(), 400, 'ERR_CI_REQUEST_INVALID', '{"target": '],
    ['a body that is not an object', () => issuer.issue(), 400, 'ERR_CI_REQUEST_INVALID', '[1,2]'],
    ['an unknown field', () => issuer.issue(), 400, 'ERR_CI_REQUEST_INVALID', { ...READ, reason: 'x' }],
    ['a bad ttl', () => issuer.issue(), 400, 'ERR_CI_REQUEST_INVALID', { ...READ, ttl: 'soon' }],
    [
      'both ttl and duration',
      () => issuer.issue(),
      400,
      'ERR_CI_REQUEST_INVALID',
      { ...READ, duration: '1m' },
    ],
    ['a missing target', () => issuer.issue(), 400, 'ERR_CI_REQUEST_INVALID', { level: 'read' }],
    [
      'an oversize body',
      () => issuer.issue(),
      413,
      'ERR_CI_BODY_TOO_LARGE',
      JSON.stringify({ ...READ, pad: 'x'.repeat(8_000) }),
    ],
  ];
  for (const [name, makeToken, status, code, body] of refusals) {
    it(`refuses ${name} with ${code}, mints nothing and audits it`, async () => {
      const token = await makeToken();
      const rolesBefore = await fx.wardenRoles();
      const requestsBefore = await fx.requestCount();
      const refusedBefore = (await fx.audit('ci.exchange.refused')).length;
      const res = await fx.post(token, body ?? READ);
      assert.equal(res.status, status, JSON.stringify(res.json));
      assert.equal(res.json.error.code, code);
      assert.equal(res.json.password, undefined);
      assert.deepEqual(await fx.wardenRoles(), rolesBefore);
      assert.equal(await fx.requestCount(), requestsBefore);
      const refused = await fx.audit('ci.exchange.refused');
      assert.equal(refused.length, refusedBefore + 1);
      assert.equal(refused.at(-1)!.data.code, code);
    });
  }

  it('refuses a reused jti (ERR_CI_TOKEN_REPLAYED) and audits who replayed it', async () => {
    const token = await issuer.issue();
    assert.equal((await fx.post(token, READ)).status, 200);
    const rolesBefore = await fx.wardenRoles();
    const requestsBefore = await fx.requestCount();
    const res = await fx.post(token, READ);
    assert.equal(res.status, 401);
    assert.equal(res.json.error.code, 'ERR_CI_TOKEN_REPLAYED');
    assert.deepEqual(await fx.wardenRoles(), rolesBefore);
    assert.equal(await fx.requestCount(), requestsBefore);
    const last = (await fx.audit('ci.exchange.refused')).at(-1)!;
    assert.equal(last.data.code, 'ERR_CI_TOKEN_REPLAYED');
    assert.equal((last.data.details as { sub: string }).sub, 'repo:octo-org/reports:ref:refs/heads/main');
  });

  it('refused tokens do not burn their jti: the same id signed properly still works', async () => {
    const jti = `jti-${Date.now()}`;
    const refused = await fx.post(await issuer.issue({ jti, aud: 'someone-else' }), READ);
    assert.equal(refused.json.error.code, 'ERR_CI_AUDIENCE_MISMATCH');
    assert.equal((await fx.post(await issuer.issue({ jti }), READ)).status, 200);
  });

  it('approval required: a pending id the job polls, approved by a dba, collected once', async () => {
    const token = await issuer.issue();
    const rolesBefore = await fx.wardenRoles();
    const opened = await fx.post(token, { target: 'app-db', level: 'write', ttl: '5m' });
    assert.equal(opened.status, 202, JSON.stringify(opened.json));
    assert.equal(opened.headers.get('retry-after'), '1');
    const id = opened.json.pending as string;
    assert.equal(opened.json.poll, `/v1/ci/exchange/${id}`);
    // Still pending: the same (already used) token may poll, nothing is minted yet.
    const early = await fx.poll(token, id);
    assert.equal(early.status, 202);
    assert.deepEqual(await fx.wardenRoles(), rolesBefore);
    // A job of another repository learns nothing about it.
    const stranger = await fx.poll(await issuer.issue({ repository: 'octo-org/other' }), id);
    assert.equal(stranger.status, 404);
    assert.equal(stranger.json.error.code, 'ERR_CI_PENDING_NOT_FOUND');
    // The requester is not a person: nobody outside the rule's approvers may approve.
    await assert.rejects(fx.broker.app.broker.approve(id, { id: 'maria', admin: false }), {
      code: 'ERR_APPROVAL_NOT_ELIGIBLE',
    });
    const approved = await fx.broker.app.broker.approve(id, { id: 'bob', admin: false });
    assert.equal(approved.state, 'approved');
    assert.deepEqual(await fx.wardenRoles(), rolesBefore, 'approval alone mints nothing');
    // A fresh token of the same job collects it; the write level really writes.
    const collected = await fx.poll(await issuer.issue(), id);
    assert.equal(collected.status, 200, JSON.stringify(collected.json));
    const client = await connect(collected.json);
    try {
      await client.query("INSERT INTO invoices (customer, amount) VALUES ('ci', 1)");
    } finally {
      await client.end();
    }
    const again = await fx.poll(token, id);
    assert.equal(again.status, 409);
    assert.equal(again.json.error.code, 'ERR_CI_ALREADY_COLLECTED');
    const audit = await fx.audit('ci.exchange.');
    assert.ok(audit.some((e) => e.action === 'ci.exchange.pending' && e.subject === id));
    assert.ok(audit.some((e) => e.action === 'ci.exchange.collected' && e.subject === id));
  });

  it('approval required: a denied request is refused at collection, nothing minted', async () => {
    const token = await issuer.issue();
    const opened = await fx.post(token, { target: 'app-db', level: 'write' });
    assert.equal(opened.status, 202);
    await fx.broker.app.broker.deny(opened.json.pending, { id: 'dana', admin: false }, 'not tonight');
    const rolesBefore = await fx.wardenRoles();
    const res = await fx.poll(token, opened.json.pending);
    assert.equal(res.status, 403);
    assert.equal(res.json.error.code, 'ERR_CI_PENDING_REFUSED');
    assert.deepEqual(await fx.wardenRoles(), rolesBefore);
  });

  it('never writes a token or a password to the logs', async () => {
    const token = await issuer.issue();
    const res = await fx.post(token, READ);
    assert.equal(res.status, 200);
    const refusedToken = await issuer.issue({ aud: 'nope' });
    await fx.post(refusedToken, READ);
    const text = fx.broker.logs.lines.join('\n');
    assert.ok(fx.broker.logs.lines.length > 0, 'logs were captured');
    for (const secret of [token, refusedToken, res.json.password, res.json.uri]) {
      assert.ok(!text.includes(secret), 'a secret reached the logs');
    }
    const signature = token.split('.')[2]!;
    assert.ok(!text.includes(signature));
  });
});

describe('CI exchange: waiting for an approval inside the call', () => {
  let cluster: PgCluster;
  let fx: CiExchangeFixture;

  before(async () => {
    cluster = await startPgCluster();
    fx = await startCiExchangeFixture(cluster, { approvalWait: '30s' });
  });
  after(async () => {
    await fx?.close();
    await cluster?.stop();
  });

  it('returns the credential in the same call when the approval comes within wait', async () => {
    const call = fx.post(await fx.issuer.issue(), { target: 'app-db', level: 'write', ttl: '2m' });
    const pending = await waitFor(
      async () => (await fx.broker.store.listRequests({ states: ['pending'] }))[0],
      10_000,
      'the pending CI request',
    );
    assert.equal(pending.source, 'ci');
    assert.equal(pending.requester, 'ci:github:repo:octo-org/reports:ref:refs/heads/main');
    await fx.broker.app.broker.approve(pending.id, { id: 'bob', admin: false });
    const res = await call;
    assert.equal(res.status, 200, JSON.stringify(res.json));
    assert.equal(res.json.request_id, pending.id);
    const client = await connect(res.json);
    await client.end();
  });
});

describe('CI exchange: key rotation and rate limits', () => {
  let cluster: PgCluster;
  let fx: CiExchangeFixture;

  before(async () => {
    cluster = await startPgCluster();
    fx = await startCiExchangeFixture(cluster, {
      rateLimit: { per_subject: 3 },
    });
  });
  after(async () => {
    await fx?.close();
    await cluster?.stop();
  });

  it('accepts new keys after one refetch and refuses tokens of the removed key', async () => {
    const issuer = fx.issuer;
    const subject = (n: number) => ({ repository: 'octo-org/reports', sub: `rotation-${n}` });
    assert.equal((await fx.post(await issuer.issue(subject(1)), READ)).status, 200);
    const oldKeyToken = await issuer.issue(subject(2));
    // Unknown kids refetch at most once per jwks_refresh_min_interval (1 s here): let it pass.
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const fetchesBefore = issuer.jwksFetches;
    await issuer.rotate();
    const first = await fx.post(await issuer.issue(subject(3)), READ);
    assert.equal(first.status, 200, JSON.stringify(first.json));
    assert.equal(issuer.jwksFetches, fetchesBefore + 1, 'one refetch for the new kid');
    const second = await fx.post(await issuer.issue(subject(4), { alg: 'ES256' }), READ);
    assert.equal(second.status, 200);
    assert.equal(issuer.jwksFetches, fetchesBefore + 1, 'no refetch for a key already known');
    const old = await fx.post(oldKeyToken, READ);
    assert.equal(old.status, 401);
    assert.equal(old.json.error.code, 'ERR_CI_KEY_UNKNOWN');
    assert.ok(issuer.jwksFetches <= fetchesBefore + 2, 'at most one more refetch for the removed kid');
  });

  it('rate limits one subject with 429 and Retry-After, minting nothing', async () => {
    const claims = { sub: 'rate-limited-job' };
    for (let i = 0; i < 3; i++) {
      assert.equal((await fx.post(await fx.issuer.issue(claims), READ)).status, 200);
    }
    const rolesBefore = await fx.wardenRoles();
    const res = await fx.post(await fx.issuer.issue(claims), READ);
    assert.equal(res.status, 429);
    assert.equal(res.json.error.code, 'ERR_CI_RATE_LIMITED');
    assert.ok(Number(res.headers.get('retry-after')) >= 1);
    assert.deepEqual(await fx.wardenRoles(), rolesBefore);
    assert.equal((await fx.audit('ci.exchange.refused')).at(-1)!.data.code, 'ERR_CI_RATE_LIMITED');
    // Another job of the same issuer is not affected.
    assert.equal((await fx.post(await fx.issuer.issue({ sub: 'another-job' }), READ)).status, 200);
  });
});
