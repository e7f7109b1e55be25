import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  checkInteractiveLine,
  LineEditor,
  type LineEditorEvent,
} from '../../../../proxy/ssh/guardrails/line-editor.ts';
import { compileGuardrails } from '../../../../proxy/ssh/guardrails/rules.ts';

const LEFT = '\x1b[D';
const RIGHT = '\x1b[C';
const UP = '\x1b[A';

/** Events without the shell state they carry (compared by value). */
function strip(events: LineEditorEvent[]): LineEditorEvent[] {
  return events.map((e) => {
    if (e.type !== 'line') return e;
    const { state: _state, ...rest } = e;
    return rest;
  });
}

function lines(keys: string, shellOutput?: string): LineEditorEvent[] {
  const editor = new LineEditor();
  if (shellOutput !== undefined) editor.observeOutput(shellOutput);
  return strip(editor.feed(keys));
}

describe('LineEditor', () => {
  const table: [string, string, { line: string; exact: boolean }][] = [
    ['plain text', 'ls -la\r', { line: 'ls -la', exact: true }],
    ['LF as Enter', 'ls\n', { line: 'ls', exact: true }],
    ['DEL', 'lsx\x7f\r', { line: 'ls', exact: true }],
    ['backspace', 'lsx\x08\r', { line: 'ls', exact: true }],
    ['Ctrl-U', 'rm -rf /tmp\x15ls\r', { line: 'ls', exact: true }],
    ['Ctrl-W', 'echo hello world\x17\x17ls\r', { line: 'echo ls', exact: true }],
    ['left arrow insert', 'ls /tmp' + LEFT.repeat(3) + 'X\x7f\x7f\r', { line: 'ls tmp', exact: true }],
    ['right arrow', 'ab' + LEFT + LEFT + RIGHT + 'X\r', { line: 'aXb', exact: true }],
    ['Ctrl-A, Ctrl-E', 'rf /\x01rm -\x05 x\r', { line: 'rm -rf / x', exact: true }],
    ['Home/End keys', 'bc\x1b[Ha\x1b[Fd\r', { line: 'abcd', exact: true }],
    ['SS3 keys', 'bc\x1bOHa\r', { line: 'abc', exact: true }],
    ['Delete key', 'abc\x01\x1b[3~\r', { line: 'bc', exact: true }],
    ['Ctrl-K', 'abcdef\x01\x06\x06\x0b\r', { line: 'ab', exact: true }],
    ['Ctrl-D deletes under the cursor', 'abc\x01\x04\r', { line: 'bc', exact: true }],
    ['UTF-8 text', 'echo héllo\r', { line: 'echo héllo', exact: true }],
    ['history recall', `${UP}\r`, { line: '', exact: false }],
    ['Tab completion', 'rm -rf /ho\t\r', { line: 'rm -rf /ho', exact: false }],
    ['Ctrl-R search', '\x12rm\r', { line: 'rm', exact: false }],
    ['Alt-b', 'ls\x1bb\r', { line: 'ls', exact: false }],
    ['Ctrl-right (word move)', 'ls -l\x1b[1;5C\r', { line: 'ls -l', exact: false }],
  ];
  for (const [name, keys, expected] of table) {
    it(`models ${name}`, () => assert.deepEqual(lines(keys), [{ type: 'line', ...expected }]));
  }

  it('forgets an unknown state once the line is done', () => {
    assert.deepEqual(lines(`${UP}\rls\r`), [
      { type: 'line', line: '', exact: false },
      { type: 'line', line: 'ls', exact: true },
    ]);
  });

  it('reports Ctrl-C and Ctrl-D on an empty line', () => {
    assert.deepEqual(lines('rm -rf /\x03ls\r\x04'), [
      { type: 'cancel' },
      { type: 'line', line: 'ls', exact: true },
      { type: 'eof' },
    ]);
  });

  it('counts CRLF as one Enter', () => {
    assert.deepEqual(lines('a\r\nb\r\n'), [
      { type: 'line', line: 'a', exact: true },
      { type: 'line', line: 'b', exact: true },
    ]);
  });

  const input = Buffer.from(`é${LEFT}x\x1b[3~ ok\r`);
  for (let split = 1; split < input.length; split++) {
    it(`gives the same line when input is split at byte ${split}`, () => {
      const editor = new LineEditor();
      const events = strip([...editor.feed(input.subarray(0, split)), ...editor.feed(input.subarray(split))]);
      assert.deepEqual(events, [{ type: 'line', line: 'x ok', exact: true }]);
    });
  }

  it('stops tracking past the length limit and says so', () => {
    const editor = new LineEditor({ maxLineLength: 10 });
    assert.deepEqual(strip(editor.feed(`${'a'.repeat(20)}\r`)), [
      { type: 'line', line: 'a'.repeat(10), exact: false },
    ]);
  });

  it('abandons an over-long escape sequence', () => {
    const [event] = lines(`\x1b[${'1'.repeat(100)}ls\r`);
    assert.ok(event?.type === 'line' && !event.exact && /^1+ls$/.test(event.line));
  });
});

describe('checkInteractiveLine', () => {
  const strict = compileGuardrails();
  const lenient = compileGuardrails({ unknownLine: 'check' });
  it('blocks a dangerous line typed with edits', () => {
    const [event] = lines('rm -rf x/' + LEFT + '\x7f\r');
    assert.ok(event?.type === 'line');
    assert.equal(event.line, 'rm -rf /');
    assert.deepEqual(checkInteractiveLine(event, strict), {
      allowed: false,
      ruleId: 'rm-root',
      reason: 'recursive delete of the root file system',
      command: 'rm -rf /',
    });
  });
  it('blocks an unknown line under the default policy and checks it when lenient', () => {
    const event = { line: 'ls', exact: false };
    const verdict = checkInteractiveLine(event, strict);
    assert.equal(!verdict.allowed && verdict.ruleId, 'unknown-line');
    assert.deepEqual(checkInteractiveLine(event, lenient), { allowed: true });
  });
  it('allows a harmless exact line', () => {
    assert.deepEqual(checkInteractiveLine({ line: 'grep shutdown log.txt', exact: true }, strict), {
      allowed: true,
    });
  });
});
