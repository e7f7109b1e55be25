/**
 * `warden sessions list` and `warden replay` for every protocol: an SSH session recorded by the
 * real proxy is listed next to a Postgres session, and both replay.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ExitCode } from '../../../cli/output.ts';
import { waitFor } from '../../helpers/broker-fixture.ts';
import { type SshCliFixture, startSshCliFixture } from '../../helpers/ssh-cli-fixture.ts';
import { clientOptions, run, writeIdentity } from '../../helpers/ssh-proxy-fixture.ts';
import { TEST_USER } from '../../helpers/sshd.ts';

describe('warden sessions list and replay, every protocol', () => {
  let cli: SshCliFixture;
  let sshId: string;
  let grantId: string;

  before(async () => {
    cli = await startSshCliFixture();
    const { grant, credential } = await cli.fx.grant();
    grantId = grant.id;
    const key = writeIdentity(cli.fx.dir, credential.privateKey!.reveal(), credential.certificate);
    const result = await run('ssh', [
      ...clientOptions(cli.fx.proxyPort, key),
      `${TEST_USER}+web-1@127.0.0.1`,
      'echo listed',
    ]);
    assert.equal(result.code, 0, result.stderr);
    const session = await waitFor(async () => {
      const [first] = await cli.fx.store.listSessions({ grantId: grant.id });
      return first?.endedAt ? first : undefined;
    });
    sshId = session!.id;
    // A Postgres session as the Postgres proxy records it, in the same store.
    await cli.fx.store.insertSession({
      id: 's_pgsession1',
      protocol: 'postgres',
      grantId: 'rpg000000001',
      requester: 'carol',
      target: 'app-db',
      level: 'read',
      login: 'warden_carol_rpg000000001',
      clientAddress: '127.0.0.1:5000',
      startedAt: Date.now() - 60_000,
      endedAt: Date.now() - 30_000,
      endReason: 'client terminated',
      summary: { statements: 4, blocked: 1, masked: { email: 2 } },
    });
  });
  after(async () => {
    await cli?.close();
  });

  it('regression: SSH sessions are missing from warden sessions list (issue 14)', async () => {
    const listed = await cli.warden(['sessions', 'list', '--config', cli.configFile]);
    assert.equal(listed.code, ExitCode.Ok, listed.err);
    const lines = listed.out.trimEnd().split('\n');
    const ssh = lines.find((line) => line.startsWith(`${sshId} `));
    assert.ok(ssh, `the SSH session is listed:\n${listed.out}`);
    assert.match(
      ssh,
      new RegExp(`^${sshId}\\s+ssh\\s+alice\\s+web-1:shell\\s+as ${TEST_USER}\\s+grant ${grantId}`),
    );
    assert.match(ssh, /ended .* \(ended\)\s+exec "echo listed"\s+0 commands\s+0 blocked/);
    const pg = lines.find((line) => line.startsWith('s_pgsession1 '));
    assert.match(
      pg ?? '',
      /postgres\s+carol\s+app-db:read\s+as warden_carol_rpg000000001 .*4 statements\s+1 blocked\s+masked email=2/,
    );
  });

  it('lists as JSON, each session with its protocol, filtered by user', async () => {
    const all = await cli.warden(['sessions', 'list', '--json', '--config', cli.configFile]);
    assert.equal(all.code, ExitCode.Ok, all.err);
    const sessions = JSON.parse(all.out) as { id: string; protocol: string }[];
    assert.equal(sessions.find((s) => s.id === sshId)?.protocol, 'ssh');
    assert.equal(sessions.find((s) => s.id === 's_pgsession1')?.protocol, 'postgres');
    const carol = await cli.warden(['sessions', 'list', '--user', 'carol', '--config', cli.configFile]);
    assert.deepEqual(
      carol.out
        .trimEnd()
        .split('\n')
        .map((line) => line.split(/\s+/)[0]),
      ['s_pgsession1'],
    );
  });

  it('replays an SSH session through warden replay, and a Postgres one as its timeline', async () => {
    const ssh = await cli.warden(['replay', sshId, '--format', 'jsonl', '--config', cli.configFile]);
    assert.equal(ssh.code, ExitCode.Ok, ssh.err);
    const output = ssh.out
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as { type: string; data: string })
      .filter((event) => event.type === 'o')
      .map((event) => event.data)
      .join('');
    assert.equal(output, 'listed\n');
    const pg = await cli.warden(['replay', 's_pgsession1', '--config', cli.configFile]);
    assert.equal(pg.code, ExitCode.Ok, pg.err);
    assert.match(pg.out, /^s_pgsession1\s+postgres\s+carol/);
  });
});
