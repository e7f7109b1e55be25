import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { proxyAddressOf } from '../../../broker/api/ssh-route.ts';
import { parseConfig } from '../../../broker/config/load.ts';
import { formatKeyId, verifyUserCertificate } from '../../../broker/providers/ssh-ca/certificate.ts';
import { formatCaPublicKeyLine } from '../../../broker/providers/ssh-ca/keys.ts';
import {
  ADMIN_TOKEN,
  SERVICE_TOKEN,
  type SshCliFixture,
  startSshCliFixture,
} from '../../helpers/ssh-cli-fixture.ts';
import { buildSshConfig, generateEd25519 } from '../../helpers/ssh-proxy-fixture.ts';
import { TEST_USER } from '../../helpers/sshd.ts';

interface Answer {
  status: number;
  body: Record<string, unknown> & { error?: { code: string; details?: Record<string, unknown> } };
}

describe('POST /v1/requests/<id>/ssh-certificate', () => {
  let cli: SshCliFixture;
  const key = generateEd25519('alice-laptop');
  const post = async (grant: string, body: unknown, token = SERVICE_TOKEN): Promise<Answer> => {
    const res = await fetch(`${cli.url}/v1/requests/${grant}/ssh-certificate`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Answer['body'] };
  };

  before(async () => {
    cli = await startSshCliFixture();
  });
  after(async () => {
    await cli?.close();
  });

  it('certifies the requester key for the grant principals until the grant expiry, audited', async () => {
    const { grant } = await cli.fx.grant('shell', '30m');
    const answer = await post(grant.id, { actor: 'alice', public_key: key.publicKey });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    const certificate = answer.body.certificate as string;
    const verified = verifyUserCertificate(certificate, {
      caPublicKeys: [formatCaPublicKeyLine(cli.fx.ca)],
      principal: TEST_USER,
      now: new Date(),
    });
    assert.equal(verified.keyId, formatKeyId(grant.id, 'alice'));
    assert.deepEqual(verified.principals, [TEST_USER]);
    // Never longer than the grant: sshd's bound is whole seconds, rounded down.
    assert.ok(verified.validBefore.getTime() <= grant.expiresAt!);
    assert.ok(verified.validBefore.getTime() > grant.expiresAt! - 1000);
    assert.equal(
      Buffer.compare(verified.publicKeyBlob, Buffer.from(key.publicKey.split(' ')[1]!, 'base64')),
      0,
    );
    assert.deepEqual(answer.body.principals, [TEST_USER]);
    assert.equal(answer.body.port, cli.fx.sshd.port);
    assert.deepEqual(answer.body.proxy, { host: '127.0.0.1', port: cli.fx.proxyPort });
    const audit = await cli.fx.store.readAudit({ limit: 10_000 });
    const entry = audit.find((e) => e.action === 'ssh.certificate_issued' && e.subject === grant.id);
    assert.ok(entry, 'not audited');
    assert.equal(entry.actor, 'alice');
    assert.equal(entry.data.serial, String(verified.serial));
    assert.equal(entry.data.valid_before, verified.validBefore.toISOString());
  });

  it('follows an extension: a certificate minted after it ends at the new expiry', async () => {
    const { grant } = await cli.fx.grant('shell', '30m');
    const extended = await cli.fx.app.broker.extend(grant.id, { id: 'alice', admin: false }, '30m');
    const answer = await post(grant.id, { actor: 'alice', public_key: key.publicKey });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    const validBefore = Date.parse(answer.body.valid_before as string);
    const expiresAt = (await cli.fx.store.getRequest(grant.id))!.expiresAt!;
    assert.ok(expiresAt > grant.expiresAt!, `not extended: ${extended.state}`);
    assert.ok(validBefore <= expiresAt && validBefore > expiresAt - 1000);
  });

  it('an admin token acting for the requester is served', async () => {
    const { grant } = await cli.fx.grant();
    const answer = await post(grant.id, { actor: 'alice', public_key: key.publicKey }, ADMIN_TOKEN);
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
  });

  it('refuses what it must, with a code and a 4xx status', async () => {
    const { grant } = await cli.fx.grant();
    const revoked = await cli.fx.grant();
    await cli.fx.app.broker.revoke(revoked.grant.id, { id: 'alice', admin: false });
    const notSsh = { ...grant, id: 'rnotssh00001', target: 'reporting-db' };
    await cli.fx.store.insertRequest(notSsh);
    const extension = { ...grant, id: 'rextension01', kind: 'extension' as const, parentId: grant.id };
    await cli.fx.store.insertRequest(extension);
    const lapsed = { ...grant, id: 'rlapsed00001', expiresAt: Date.now() - 1000 };
    await cli.fx.store.insertRequest(lapsed);
    const pending = { ...grant, id: 'rpending0001', state: 'pending' as const };
    await cli.fx.store.insertRequest(pending);
    const rsaLine = `ssh-dss ${Buffer.from('\0\0\0\x07ssh-dss').toString('base64')}`;
    const certLine = (await post(grant.id, { actor: 'alice', public_key: key.publicKey })).body
      .certificate as string;
    const cases: [string, string, unknown, string, number, string, string?][] = [
      [
        'another person',
        grant.id,
        { actor: 'maria', public_key: key.publicKey },
        SERVICE_TOKEN,
        403,
        'ERR_FORBIDDEN',
      ],
      ['an admin for nobody', grant.id, { public_key: key.publicKey }, ADMIN_TOKEN, 403, 'ERR_FORBIDDEN'],
      ['no actor', grant.id, { public_key: key.publicKey }, SERVICE_TOKEN, 400, 'ERR_API_BAD_REQUEST'],
      ['no token', grant.id, { actor: 'alice', public_key: key.publicKey }, '', 401, 'ERR_AUTH_REQUIRED'],
      [
        'a wrong token',
        grant.id,
        { actor: 'alice', public_key: key.publicKey },
        'nope',
        401,
        'ERR_AUTH_INVALID',
      ],
      [
        'an unknown grant',
        'rnosuchgrant',
        { actor: 'alice', public_key: key.publicKey },
        SERVICE_TOKEN,
        404,
        'ERR_NOT_FOUND',
      ],
      [
        'a revoked grant',
        revoked.grant.id,
        { actor: 'alice', public_key: key.publicKey },
        SERVICE_TOKEN,
        409,
        'ERR_STATE_CONFLICT',
      ],
      [
        'a pending request',
        pending.id,
        { actor: 'alice', public_key: key.publicKey },
        SERVICE_TOKEN,
        409,
        'ERR_STATE_CONFLICT',
      ],
      [
        'an active grant past its expiry',
        lapsed.id,
        { actor: 'alice', public_key: key.publicKey },
        SERVICE_TOKEN,
        409,
        'ERR_STATE_CONFLICT',
      ],
      [
        'a grant on a non-SSH target',
        notSsh.id,
        { actor: 'alice', public_key: key.publicKey },
        SERVICE_TOKEN,
        400,
        'ERR_SSH_GRANT_NOT_SSH',
      ],
      [
        'an extension request',
        extension.id,
        { actor: 'alice', public_key: key.publicKey },
        SERVICE_TOKEN,
        400,
        'ERR_SSH_GRANT_NOT_SSH',
      ],
      ['no public key', grant.id, { actor: 'alice' }, SERVICE_TOKEN, 400, 'ERR_SSH_KEY_INVALID'],
      [
        'a number as key',
        grant.id,
        { actor: 'alice', public_key: 42 },
        SERVICE_TOKEN,
        400,
        'ERR_SSH_KEY_INVALID',
      ],
      [
        'a huge key',
        grant.id,
        { actor: 'alice', public_key: `ssh-ed25519 ${'A'.repeat(5000)}` },
        SERVICE_TOKEN,
        400,
        'ERR_SSH_KEY_INVALID',
      ],
      [
        'a truncated key',
        grant.id,
        { actor: 'alice', public_key: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5' },
        SERVICE_TOKEN,
        400,
        'ERR_SSH_KEY_INVALID',
        'ERR_SSH_CA_KEY_INVALID',
      ],
      [
        'a DSA key',
        grant.id,
        { actor: 'alice', public_key: rsaLine },
        SERVICE_TOKEN,
        400,
        'ERR_SSH_KEY_INVALID',
        'ERR_SSH_CA_KEY_TYPE',
      ],
      [
        'a certificate as key',
        grant.id,
        { actor: 'alice', public_key: certLine },
        SERVICE_TOKEN,
        400,
        'ERR_SSH_KEY_INVALID',
        'ERR_SSH_CA_KEY_TYPE',
      ],
      [
        'text as key',
        grant.id,
        { actor: 'alice', public_key: 'hello' },
        SERVICE_TOKEN,
        400,
        'ERR_SSH_KEY_INVALID',
        'ERR_SSH_CA_KEY_INVALID',
      ],
    ];
    // Only certificates count: a fixture grant lapsing meanwhile appends grant.expired.
    const issued = async () =>
      (await cli.fx.store.readAudit({ limit: 10_000 })).filter((e) => e.action === 'ssh.certificate_issued')
        .length;
    const before = await issued();
    for (const [name, id, body, token, status, code, reason] of cases) {
      const answer = await post(id, body, token);
      assert.equal(answer.status, status, `${name}: ${JSON.stringify(answer.body)}`);
      assert.equal(answer.body.error?.code, code, name);
      if (reason) assert.equal(answer.body.error?.details?.reason, reason, name);
      assert.equal(answer.body.certificate, undefined, name);
    }
    assert.equal(await issued(), before, 'a refusal issued an audited certificate');
  });

  it('a body that is not JSON gets 400, and the server keeps serving', async () => {
    const res = await fetch(`${cli.url}/v1/requests/rabc/ssh-certificate`, {
      method: 'POST',
      headers: { authorization: `Bearer ${SERVICE_TOKEN}` },
      body: '{"actor":',
    });
    assert.equal(res.status, 400);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'ERR_API_BAD_REQUEST');
    const { grant } = await cli.fx.grant();
    assert.equal((await post(grant.id, { actor: 'alice', public_key: key.publicKey })).status, 200);
  });
});

describe('proxyAddressOf', () => {
  const config = (proxy: Record<string, unknown> | undefined) =>
    parseConfig(
      buildSshConfig(22, '/tmp/unused.db', {
        ssh: {
          ca_key: { env: 'X' },
          ...(proxy ? { proxy: { host_key: { env: 'H' }, upstream_key: { env: 'U' }, ...proxy } } : {}),
        },
      }),
      'test',
    );
  for (const [name, proxy, expected] of [
    ['no proxy', undefined, undefined],
    [
      'the public host',
      { listen: '0.0.0.0:2222', public_host: 'ssh.example.com' },
      { host: 'ssh.example.com', port: 2222 },
    ],
    ['a wildcard listen', { listen: '0.0.0.0:2200' }, { host: 'bastion', port: 2200 }],
    ['a named listen', { listen: '10.0.0.5:2222' }, { host: '10.0.0.5', port: 2222 }],
  ] as const) {
    it(name, () => {
      assert.deepEqual(
        proxyAddressOf(config(proxy as Record<string, unknown> | undefined), 'bastion'),
        expected,
      );
    });
  }
});
