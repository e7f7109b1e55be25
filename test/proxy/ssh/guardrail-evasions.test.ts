/**
 * Issue 16's SSH corpus through the running proxy with real ssh and sshd (phase B): every exec
 * evasion is refused with exit status 126 naming its rule, and its session's recording shows what
 * was refused; every interactive trick typed into a real PTY shell is refused before its Enter
 * reaches the shell, with a marker in the recording; ordinary commands, pipes between ordinary
 * tools included, run; allow mode runs only the listed commands.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { SessionRecord } from '../../../broker/ports/proxy.ts';
import { parseAsciicast } from '../../../proxy/ssh/recording/asciicast-reader.ts';
import { waitFor } from '../../helpers/broker-fixture.ts';
import {
  clientOptions,
  run,
  type SshProxyFixture,
  startSshProxyFixture,
  writeIdentity,
} from '../../helpers/ssh-proxy-fixture.ts';
import { TEST_USER } from '../../helpers/sshd.ts';
import { EVASION_GUARDRAILS, EXEC_EVASIONS, INTERACTIVE_TRICKS } from './guardrails/evasions.ts';

const DRIVER = join(import.meta.dirname, '../../helpers/pty-driver.py');

/** Ordinary commands that run on the test host as the test account, with what they print. */
const ORDINARY: readonly (readonly [string, RegExp])[] = [
  ['ls -la /etc/hostname', /hostname/],
  ["cat /etc/passwd | awk -F: '{print $1}' | sort | grep -c .", /^\d+\n$/],
  ['ps aux | grep -c sshd', /^\d+\n$/],
  ['df -h / && echo ok', /ok\n$/],
  ['echo "$HOME" && ls ~ > /dev/null && echo listed', /listed\n$/],
  ['for f in /etc/hostname /etc/hosts; do wc -l "$f"; done | wc -l', /^2\n$/],
  ['bash -c "echo inner"', /^inner\n$/],
  ['cd /tmp && rm -rf ./warden-guardrail-test-nothing && echo cleaned', /cleaned\n$/],
  ['find /tmp -maxdepth 1 -name "warden-guardrail-none-*" -delete; echo found', /found\n$/],
  ['grep -r "root" /etc/passwd | sort | uniq -c | head -1', /root/],
  ['printf "b\\na\\n" | sort | tr a-z A-Z', /^A\nB\n$/],
  ['uptime | cut -c1-3 | wc -l', /^1\n$/],
];

type Step = { wait: string; timeout?: number } | { send: string } | { sleep: number };

async function drive(argv: string[], steps: Step[]): Promise<string> {
  const result = await run('python3', [DRIVER, JSON.stringify(argv), JSON.stringify(steps)]);
  return Buffer.from(result.stdout, 'base64').toString('utf8');
}

async function endedSessions(fx: SshProxyFixture, grantId: string, count: number): Promise<SessionRecord[]> {
  const sessions = await waitFor(async () => {
    const list = await fx.store.listSessions({ grantId });
    return list.length >= count && list.every((s) => s.endedAt !== null) ? list : undefined;
  });
  return Promise.all(sessions!.map(async (s) => (await fx.store.getSession(s.id))!));
}

describe('SSH guardrails through real ssh and sshd', () => {
  let fx: SshProxyFixture;
  before(async () => {
    fx = await startSshProxyFixture({ target: { guardrails: EVASION_GUARDRAILS } });
  });
  after(async () => {
    await fx?.close();
  });

  async function identity(level = 'shell') {
    const { grant, credential } = await fx.grant(level);
    return { grant, key: writeIdentity(fx.dir, credential.privateKey!.reveal(), credential.certificate) };
  }

  it('has at least 30 exec evasions and interactive tricks', () => {
    assert.ok(EXEC_EVASIONS.length + INTERACTIVE_TRICKS.length >= 30);
  });

  it('refuses every exec evasion (exit 126, naming its rule); each refusal is recorded', async () => {
    const { grant, key } = await identity();
    for (const [command, rule] of EXEC_EVASIONS) {
      const result = await run('ssh', [
        ...clientOptions(fx.proxyPort, key),
        `${TEST_USER}+web-1@127.0.0.1`,
        command,
      ]);
      assert.equal(result.code, 126, `${command}: ${result.stderr}`);
      assert.equal(result.stdout, '', command);
      assert.match(result.stderr, new RegExp(`^warden: blocked by rule ${rule}: `), command);
    }
    const sessions = await endedSessions(fx, grant.id, EXEC_EVASIONS.length);
    for (const [command, rule] of EXEC_EVASIONS) {
      const session = sessions.find((s) => s.summary.command === command);
      assert.ok(session, `no session recorded for ${command}`);
      assert.deepEqual(session.summary.refused, { rule });
      assert.equal(session.summary.blocked, 1);
      const cast = parseAsciicast(await fx.recordingOf(session));
      assert.ok(
        cast.events.some(([, type, data]) => type === 'm' && data.includes(`rule ${rule}`)),
        `${command}: no marker`,
      );
      assert.ok(
        cast.events.some(([, type, data]) => type === 'o' && data.includes(`blocked by rule ${rule}`)),
      );
    }
  });

  it('refuses every interactive trick before its Enter reaches the shell; the recording marks it', async () => {
    const { grant, key } = await identity();
    for (const [label, keys, rule] of INTERACTIVE_TRICKS) {
      const screen = await drive(
        ['ssh', '-tt', ...clientOptions(fx.proxyPort, key), `${TEST_USER}+web-1@127.0.0.1`],
        [
          { wait: '$ ' },
          { send: keys },
          { wait: `blocked by rule ${rule}` },
          // Ctrl-C, then the client's own escape (~.) ends the connection whatever the shell's state.
          { send: '\x03' },
          { sleep: 0.2 },
          { send: '\r~.' },
        ],
      );
      assert.match(screen, new RegExp(`warden: blocked by rule ${rule}`), `${label}:\n${screen}`);
    }
    const sessions = await endedSessions(fx, grant.id, INTERACTIVE_TRICKS.length);
    const markers = (
      await Promise.all(sessions.map(async (s) => parseAsciicast(await fx.recordingOf(s)).events))
    )
      .flat()
      .filter(([, type]) => type === 'm')
      .map(([, , data]) => data);
    for (const [label, , rule] of INTERACTIVE_TRICKS) {
      assert.ok(
        markers.some((m) => m.includes(`rule ${rule}`)),
        `${label}: no marker for ${rule}`,
      );
    }
    assert.ok(sessions.reduce((n, s) => n + Number(s.summary.blocked ?? 0), 0) >= INTERACTIVE_TRICKS.length);
  });
});

describe('SSH guardrails with the default rules through real ssh and sshd', () => {
  let fx: SshProxyFixture;
  before(async () => {
    // No command patterns: with patterns, computed words ("$f", globs) are refused (docs/guardrails.md).
    fx = await startSshProxyFixture({ target: { guardrails: {} } });
  });
  after(async () => {
    await fx?.close();
  });

  async function identity(level = 'shell') {
    const { grant, credential } = await fx.grant(level);
    return { grant, key: writeIdentity(fx.dir, credential.privateKey!.reveal(), credential.certificate) };
  }

  it('runs ordinary commands, pipes between ordinary tools included', async () => {
    const { key } = await identity();
    for (const [command, output] of ORDINARY) {
      const result = await run('ssh', [
        ...clientOptions(fx.proxyPort, key),
        `${TEST_USER}+web-1@127.0.0.1`,
        command,
      ]);
      assert.equal(result.code, 0, `${command}: ${result.stderr}`);
      assert.match(result.stdout, output, command);
    }
  });
});

describe('SSH guardrails in allow mode through real ssh and sshd', () => {
  let fx: SshProxyFixture;
  before(async () => {
    fx = await startSshProxyFixture({
      target: {
        guardrails: { mode: 'allow', allow: ['echo', 'uname', { command: 'systemctl', args: ['status'] }] },
      },
    });
  });
  after(async () => {
    await fx?.close();
  });

  it('runs only listed commands; anything else, wrapped or computed, is refused', async () => {
    const { credential } = await fx.grant('shell');
    const key = writeIdentity(fx.dir, credential.privateKey!.reveal(), credential.certificate);
    const ssh = (command: string) =>
      run('ssh', [...clientOptions(fx.proxyPort, key), `${TEST_USER}+web-1@127.0.0.1`, command]);
    const ok = await ssh('echo listed && uname -s');
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /^listed\nLinux\n$/);
    for (const command of [
      'id',
      'echo a | cat',
      'bash -c "echo x"',
      'systemctl restart nginx',
      '$(echo echo) hi',
    ]) {
      const refused = await ssh(command);
      assert.equal(refused.code, 126, `${command}: ${refused.stdout}`);
      assert.match(refused.stderr, /^warden: blocked by rule /, command);
    }
  });
});
