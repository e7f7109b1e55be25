import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isGuardrailError } from '../../../../proxy/ssh/guardrails/errors.ts';
import {
  checkCommand,
  compileGuardrails,
  type GuardrailRulesInput,
} from '../../../../proxy/ssh/guardrails/rules.ts';

const guardrails = compileGuardrails({
  patterns: [{ id: 'no-drop-table', pattern: 'drop\\s+table', flags: 'i', reason: 'no DROP TABLE' }],
});

describe('checkCommand', () => {
  const blocked: [string, string][] = [
    ['rm -rf /', 'rm-root'],
    ['rm -fr /', 'rm-root'],
    ['rm -r -f /*', 'rm-root'],
    ['rm -Rf //', 'rm-root'],
    ['rm -rf /.', 'rm-root'],
    ['rm --recursive --force /', 'rm-root'],
    ['rm -rf -- /', 'rm-root'],
    ['sudo rm -rf --no-preserve-root /', 'rm-root'],
    ['sudo -u root rm -rf /', 'rm-root'],
    ['/bin/rm -rf /', 'rm-root'],
    ['\\rm -rf /', 'rm-root'],
    ["'r'm -rf '/'", 'rm-root'],
    ['"rm" -rf "/"', 'rm-root'],
    ['ls; rm -rf /', 'rm-root'],
    ['true && rm -rf /', 'rm-root'],
    ['false || rm -rf /', 'rm-root'],
    ['echo hi | rm -rf /', 'rm-root'],
    ['echo $(rm -rf /)', 'rm-root'],
    ['echo "$(rm -rf /)"', 'rm-root'],
    ['echo `rm -rf /`', 'rm-root'],
    ["bash -c 'rm -rf /'", 'rm-root'],
    ['sh -lc "cd /tmp && rm -rf /"', 'rm-root'],
    ["sudo bash -c 'rm -rf /'", 'rm-root'],
    ["su -c 'rm -rf /' root", 'rm-root'],
    ['eval rm -rf /', 'rm-root'],
    ['FOO=1 BAR=2 rm -rf /', 'rm-root'],
    ['env -i PATH=/bin rm -rf /', 'rm-root'],
    ["env -S 'rm -rf /'", 'rm-root'],
    ['nohup rm -rf / &', 'rm-root'],
    ['timeout 5 rm -rf /', 'rm-root'],
    ['(rm -rf /)', 'rm-root'],
    ['{ rm -rf /; }', 'rm-root'],
    ['if true; then rm -rf /; fi', 'rm-root'],
    ['cat <(rm -rf /)', 'rm-root'],
    ['rm -rf / 2>&1', 'rm-root'],
    ['x=1\nrm -rf /', 'rm-root'],
    ['mkfs.ext4 /dev/sda1', 'mkfs'],
    ['sudo mkfs -t xfs /dev/sdb', 'mkfs'],
    ['shutdown -h now', 'power'],
    ['sudo reboot', 'power'],
    ['halt', 'power'],
    ['/sbin/poweroff', 'power'],
    ['systemctl reboot', 'power'],
    ['init 0', 'power'],
    ['kubectl delete pod web-1', 'kubectl-delete'],
    ['kubectl -n prod delete deploy api', 'kubectl-delete'],
    ['dd if=/dev/zero of=/dev/sda bs=1M', 'dd-device'],
    ['dd if=img of=/dev/nvme0n1', 'dd-device'],
    [':(){ :|:& };:', 'fork-bomb'],
    [':(){ :|: & };:', 'fork-bomb'],
    ['bomb(){ bomb|bomb& }; bomb', 'fork-bomb'],
    ["bash -c ':(){ :|:& };:'", 'fork-bomb'],
    ['function f { f | f & }; f', 'fork-bomb'],
    ['psql -c "DROP TABLE users"', 'no-drop-table'],
    ['echo "unterminated', 'unparseable'],
    ["echo 'unterminated", 'unparseable'],
    ['echo $(ls', 'unparseable'],
    ['x'.repeat(70_000), 'too-long'],
  ];
  for (const [command, ruleId] of blocked) {
    it(`blocks ${JSON.stringify(command.slice(0, 60))} (${ruleId})`, () => {
      const verdict = checkCommand(command, guardrails);
      assert.equal(verdict.allowed, false);
      assert.equal(!verdict.allowed && verdict.ruleId, ruleId);
    });
  }

  const allowed = [
    'ls -la',
    'rm -rf ./build',
    'rm -rf /tmp/build',
    'rm -f /',
    'rm -rf build/',
    'grep shutdown log.txt',
    'echo rm -rf /',
    "echo 'rm -rf /'",
    'cat /var/log/reboot.log',
    'kubectl get pods',
    'kubectl logs delete-job',
    'dd if=/dev/sda of=/tmp/disk.img',
    'man mkfs',
    'git commit -m "shutdown script"',
    'ps aux | grep halt',
    'echo done 2>&1 > /tmp/out',
    'systemctl status nginx',
    'f(){ echo hi; }; f',
    '',
  ];
  for (const command of allowed) {
    it(`allows ${JSON.stringify(command)}`, () =>
      assert.deepEqual(checkCommand(command, guardrails), { allowed: true }));
  }

  it('turns built-in rules off by id', () => {
    const relaxed = compileGuardrails({ disabledDefaults: ['kubectl-delete', 'fork-bomb'] });
    assert.equal(checkCommand('kubectl delete pod x', relaxed).allowed, true);
    assert.equal(checkCommand(':(){ :|:& };:', relaxed).allowed, true);
    assert.equal(checkCommand('rm -rf /', relaxed).allowed, false);
  });

  it('lets unparseable text through when configured to', () => {
    assert.equal(checkCommand('echo "open', compileGuardrails({ blockUnparseable: false })).allowed, true);
  });
});

describe('compileGuardrails', () => {
  const bad: [string, GuardrailRulesInput, string][] = [
    ['an invalid regex', { patterns: [{ id: 'x', pattern: '(' }] }, 'guardrails.patterns.0.pattern'],
    ['a bad pattern id', { patterns: [{ id: 'Bad Id', pattern: 'x' }] }, 'guardrails.patterns.0.id'],
    [
      'a stateful g flag',
      { patterns: [{ id: 'x', pattern: 'x', flags: 'g' }] },
      'guardrails.patterns.0.flags',
    ],
    [
      'an unknown default rule',
      { disabledDefaults: ['rm-everything' as 'mkfs'] },
      'guardrails.disabledDefaults.0',
    ],
    ['an unknown unknownLine policy', { unknownLine: 'maybe' as 'block' }, 'guardrails.unknownLine'],
  ];
  for (const [name, input, path] of bad) {
    it(`refuses ${name} (ERR_GUARDRAIL_CONFIG at ${path})`, () => {
      assert.throws(
        () => compileGuardrails(input),
        (e: unknown) => isGuardrailError(e, 'ERR_GUARDRAIL_CONFIG') && e.details.path === path,
      );
    });
  }

  it('fills defaults', () => {
    assert.deepEqual(compileGuardrails().config, {
      mode: 'deny',
      allow: [],
      disabledDefaults: [],
      patterns: [],
      unknownLine: 'block',
      blockUnparseable: true,
    });
  });
});
