/**
 * Issue 16's SSH corpus over the checker and the line editor: every exec evasion and interactive
 * trick is refused naming its rule, ordinary commands (pipes between ordinary tools included)
 * pass; allow mode runs only listed commands.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkInteractiveLine, LineEditor } from '../../../../proxy/ssh/guardrails/line-editor.ts';
import {
  checkCommand,
  compileGuardrails,
  type GuardrailVerdict,
} from '../../../../proxy/ssh/guardrails/rules.ts';
import { EVASION_GUARDRAILS, EXEC_EVASIONS, INTERACTIVE_TRICKS, ORDINARY_COMMANDS } from './evasions.ts';

const guardrails = compileGuardrails(EVASION_GUARDRAILS);

/** Feeds keys as the session does and returns the first refusal, if any. */
function typeKeys(keys: string, shellOutput?: string, rules = guardrails): GuardrailVerdict {
  const editor = new LineEditor();
  if (shellOutput) editor.observeOutput(shellOutput);
  for (const event of editor.feed(keys)) {
    if (event.type !== 'line') continue;
    const verdict = checkInteractiveLine(event, rules);
    if (!verdict.allowed) return verdict;
  }
  return { allowed: true };
}

describe('issue 16 SSH corpus: exec evasions are refused', () => {
  it('has at least 30 evasions and tricks', () =>
    assert.ok(EXEC_EVASIONS.length + INTERACTIVE_TRICKS.length >= 30));
  for (const [command, rule] of EXEC_EVASIONS) {
    it(`${JSON.stringify(command)} → ${rule}`, () => {
      const verdict = checkCommand(command, guardrails);
      assert.equal(verdict.allowed, false);
      assert.equal(!verdict.allowed && verdict.ruleId, rule, !verdict.allowed ? verdict.reason : '');
    });
  }
});

describe('issue 16 SSH corpus: interactive tricks are refused', () => {
  for (const [label, keys, rule] of INTERACTIVE_TRICKS) {
    it(`${label} → ${rule}`, () => {
      const verdict = typeKeys(keys);
      assert.equal(verdict.allowed, false);
      assert.equal(!verdict.allowed && verdict.ruleId, rule, !verdict.allowed ? verdict.reason : '');
    });
  }
  it('a paste into a shell that enabled bracketed paste is one logical line, checked whole', () => {
    const editor = new LineEditor();
    editor.observeOutput('prompt\x1b[?2004h$ ');
    const events = editor.feed('\x1b[200~echo a\recho b\x1b[201~\r');
    assert.deepEqual(
      events.map((e) => e.type === 'line' && e.line),
      ['echo a\necho b'],
    );
    assert.equal(typeKeys('\x1b[200~echo a\rreboot\x1b[201~\r', '\x1b[?2004h').allowed, false);
  });
  it('a paste start sent to a shell that disabled bracketed paste makes the line unknown', () => {
    const verdict = typeKeys('\x1b[200~ls\r', '\x1b[?2004h...\x1b[?2004l');
    assert.equal(!verdict.allowed && verdict.ruleId, 'unknown-line');
  });
  it('reads the paste-mode switch split across output chunks', () => {
    const editor = new LineEditor();
    editor.observeOutput('\x1b[?20');
    editor.observeOutput('04h');
    assert.deepEqual(
      editor.feed('\x1b[200~a\rb\x1b[201~\r').map((e) => e.type === 'line' && e.line),
      ['a\nb'],
    );
  });
  it('a continued or incomplete line runs nothing yet and is reported whole on completion', () => {
    const editor = new LineEditor();
    const events = editor.feed('ec\\\rho "a\rb"\r');
    assert.deepEqual(
      events.map((e) => e.type === 'line' && [e.line, e.incomplete === true]),
      [
        ['ec\\', true],
        ['echo "a', true],
        ['echo "a\nb"', false],
      ],
    );
    assert.equal(
      typeKeys('for f in /tmp/*.log; do\rwc -l "$f"\rdone\r', undefined, compileGuardrails({})).allowed,
      true,
    );
  });
  it('cancel() forgets a pending line, as the shell does on Ctrl-C', () => {
    const editor = new LineEditor();
    editor.feed('re\\\r');
    editor.cancel();
    assert.deepEqual(
      editor.feed('boot\r').map((e) => e.type === 'line' && e.line),
      ['boot'],
    );
  });
  it('Ctrl-C drops a pending continuation', () => {
    assert.equal(typeKeys('re\\\r\x03boot\r', undefined, compileGuardrails({})).allowed, true);
  });
});

describe('issue 16 SSH corpus: ordinary commands pass', () => {
  const plain = compileGuardrails({});
  for (const command of ORDINARY_COMMANDS) {
    it(command, () => assert.deepEqual(checkCommand(command, plain), { allowed: true }));
    it(`${command} (typed)`, () =>
      assert.deepEqual(typeKeys(`${command}\r`, undefined, plain), { allowed: true }));
  }
  it('with command patterns, words a pattern cannot read are refused (dynamic-command)', () => {
    const verdict = checkCommand('ls /var/log/*.log', guardrails);
    assert.equal(!verdict.allowed && verdict.ruleId, 'dynamic-command');
  });
  it('with command patterns, arithmetic and variables the shell sets still pass', () => {
    for (const command of ['echo "one $((40+2))"', 'ls "$HOME"', 'echo $? $$', 'cd "$OLDPWD"']) {
      assert.deepEqual(checkCommand(command, guardrails), { allowed: true }, command);
    }
  });
});

describe('allow mode', () => {
  const strict = compileGuardrails({
    mode: 'allow',
    allow: ['ls', 'grep', 'tail', 'sudo', { command: 'systemctl', args: ['status', 'is-active'] }],
  });
  const cases: [string, string | true][] = [
    ['ls -la /var/log', true],
    ['ls /var/log | grep nginx | tail -3', true],
    ['systemctl status nginx', true],
    ['sudo systemctl is-active nginx', true],
    ['systemctl restart nginx', 'not-allowed'],
    ['cat /etc/hosts', 'not-allowed'],
    ['ls $(cat /etc/hosts)', 'not-allowed'],
    ['ls "$HOME"', 'dynamic-command'],
    ['ls > /tmp/listing', 'not-allowed'],
    ['ls 2>/dev/null', true],
    ['/usr/bin/ls', 'not-allowed'],
    ['bash -c ls', 'not-allowed'],
  ];
  for (const [command, expected] of cases) {
    it(`${command} → ${expected === true ? 'runs' : expected}`, () => {
      const verdict = checkCommand(command, strict);
      if (expected === true) assert.deepEqual(verdict, { allowed: true });
      else assert.equal(!verdict.allowed && verdict.ruleId, expected);
    });
  }
  it('refuses an empty allow list at start-up', () => {
    assert.throws(() => compileGuardrails({ mode: 'allow' }), /guardrails\.allow/);
  });
});
