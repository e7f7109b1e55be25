/**
 * A model of the shell's line editor (readline/zle-like), fed with the keystrokes the client
 * sends, so the proxy knows the line a user is about to run when they press Enter.
 *
 * It follows what it can know exactly: printable text, backspace/DEL, Ctrl-U, Ctrl-W, Ctrl-K,
 * Ctrl-A/E/B/F, left/right/home/end/delete keys, bracketed paste. Whatever depends on the shell's
 * state it cannot see (history recall with up/down or Ctrl-R/P/N, Tab completion, yank, Alt
 * keys, unknown escape sequences, over-long lines) marks the line as not exact: the completed
 * line then carries `exact: false` and the best-known text, and the caller applies the
 * `unknownLine` policy (block it, or check the text the shell echoed back).
 */
import { TextDecoder } from 'node:util';
import { checkCommand, type Guardrails, type GuardrailVerdict } from './rules.ts';

/** Control keys the model understands, by the byte the terminal sends. */
export enum Key {
  /** `0x01` Ctrl-A: start of line */
  CtrlA = 0x01,
  /** `0x02` Ctrl-B: left */
  CtrlB = 0x02,
  /** `0x03` Ctrl-C: interrupt, discard the line */
  CtrlC = 0x03,
  /** `0x04` Ctrl-D: end of input on an empty line, else delete under the cursor */
  CtrlD = 0x04,
  /** `0x05` Ctrl-E: end of line */
  CtrlE = 0x05,
  /** `0x06` Ctrl-F: right */
  CtrlF = 0x06,
  /** `0x08` Ctrl-H: backspace */
  CtrlH = 0x08,
  /** `0x09` Tab: completion (unknown result) */
  Tab = 0x09,
  /** `0x0a` LF: Enter */
  Lf = 0x0a,
  /** `0x0b` Ctrl-K: delete to end of line */
  CtrlK = 0x0b,
  /** `0x0d` CR: Enter */
  Cr = 0x0d,
  /** `0x15` Ctrl-U: delete to start of line */
  CtrlU = 0x15,
  /** `0x17` Ctrl-W: delete the previous word */
  CtrlW = 0x17,
  /** `0x1b` ESC: starts an escape sequence */
  Esc = 0x1b,
  /** `0x7f` DEL: backspace */
  Del = 0x7f,
}

/** What the editor reports while fed. */
export type LineEditorEvent =
  | { type: 'line'; line: string; exact: boolean }
  | { type: 'cancel' }
  | { type: 'eof' };

/** Options of {@link LineEditor}. */
export interface LineEditorOptions {
  /** Longest line tracked, in characters; longer lines are not exact. Default 4096. */
  maxLineLength?: number;
}

const MAX_ESCAPE = 32;

/** The line editor model of one interactive session. */
export class LineEditor {
  readonly #max: number;
  readonly #decoder = new TextDecoder('utf-8');
  #chars: string[] = [];
  #cursor = 0;
  #exact = true;
  #escape: string | null = null;
  #pasting = false;
  #lastWasCr = false;

  constructor(options: LineEditorOptions = {}) {
    this.#max = options.maxLineLength ?? 4096;
  }

  /** The line as currently known. */
  get line(): string {
    return this.#chars.join('');
  }

  /** Whether the current line is known exactly. */
  get exact(): boolean {
    return this.#exact;
  }

  /** Feeds bytes the client sent; returns the lines completed (and cancels, end of input) in order. */
  feed(data: Uint8Array | string): LineEditorEvent[] {
    const text = typeof data === 'string' ? data : this.#decoder.decode(data, { stream: true });
    const events: LineEditorEvent[] = [];
    for (const char of text) this.#key(char, events);
    return events;
  }

  #reset(): void {
    this.#chars = [];
    this.#cursor = 0;
    this.#exact = true;
  }

  #insert(text: string): void {
    for (const char of text) {
      if (this.#chars.length >= this.#max) {
        this.#exact = false;
        return;
      }
      this.#chars.splice(this.#cursor++, 0, char);
    }
  }

  #deleteBack(count: number): void {
    const from = Math.max(0, this.#cursor - count);
    this.#chars.splice(from, this.#cursor - from);
    this.#cursor = from;
  }

  #key(char: string, events: LineEditorEvent[]): void {
    if (this.#escape !== null) {
      this.#escapeChar(char);
      return;
    }
    const code = char.codePointAt(0)!;
    const wasCr = this.#lastWasCr;
    this.#lastWasCr = code === Key.Cr;
    if (this.#pasting) {
      // Inside a bracketed paste the shell inserts everything, newlines included, without running it.
      if (code === Key.Esc) this.#escape = '';
      else this.#insert(code === Key.Cr ? '\n' : char);
      return;
    }
    switch (code) {
      case Key.Cr:
      case Key.Lf:
        if (code === Key.Lf && wasCr) return;
        events.push({ type: 'line', line: this.line, exact: this.#exact });
        this.#reset();
        return;
      case Key.CtrlC:
        events.push({ type: 'cancel' });
        this.#reset();
        return;
      case Key.CtrlD:
        if (this.#chars.length === 0) events.push({ type: 'eof' });
        else this.#chars.splice(this.#cursor, 1);
        return;
      case Key.CtrlH:
      case Key.Del:
        this.#deleteBack(1);
        return;
      case Key.CtrlU:
        this.#deleteBack(this.#cursor);
        return;
      case Key.CtrlK:
        this.#chars.length = this.#cursor;
        return;
      case Key.CtrlW: {
        // readline's unix-word-rubout: whitespace before the cursor, then the non-whitespace word.
        let i = this.#cursor;
        while (i > 0 && /\s/.test(this.#chars[i - 1]!)) i--;
        while (i > 0 && !/\s/.test(this.#chars[i - 1]!)) i--;
        this.#deleteBack(this.#cursor - i);
        return;
      }
      case Key.CtrlA:
        this.#cursor = 0;
        return;
      case Key.CtrlE:
        this.#cursor = this.#chars.length;
        return;
      case Key.CtrlB:
        this.#cursor = Math.max(0, this.#cursor - 1);
        return;
      case Key.CtrlF:
        this.#cursor = Math.min(this.#chars.length, this.#cursor + 1);
        return;
      case Key.Esc:
        this.#escape = '';
        return;
    }
    if (code < 0x20 || (code >= 0x80 && code < 0xa0)) {
      // Tab, Ctrl-R/P/N/Y/T/V...: the result depends on shell state we cannot see.
      this.#exact = false;
      return;
    }
    this.#insert(char);
  }

  #escapeChar(char: string): void {
    const sequence = this.#escape + char;
    if (sequence.length > MAX_ESCAPE) {
      this.#escape = null;
      this.#exact = false;
      return;
    }
    // ESC [ params final (CSI) and ESC O final (SS3); anything else after ESC is an Alt key.
    if (sequence === '[' || sequence === 'O' || (sequence[0] === '[' && /^[[0-9;?]*$/.test(sequence))) {
      this.#escape = sequence;
      return;
    }
    this.#escape = null;
    this.#escapeSequence(sequence);
  }

  #escapeSequence(sequence: string): void {
    if (sequence === '[200~') {
      this.#pasting = true;
      return;
    }
    if (sequence === '[201~') {
      this.#pasting = false;
      return;
    }
    if (this.#pasting) {
      this.#exact = false;
      return;
    }
    const key = sequence.slice(1);
    switch (key) {
      case 'C':
        this.#cursor = Math.min(this.#chars.length, this.#cursor + 1);
        return;
      case 'D':
        this.#cursor = Math.max(0, this.#cursor - 1);
        return;
      case 'H':
      case '1~':
      case '7~':
        this.#cursor = 0;
        return;
      case 'F':
      case '4~':
      case '8~':
        this.#cursor = this.#chars.length;
        return;
      case '3~':
        this.#chars.splice(this.#cursor, 1);
        return;
      default:
        // Up/down (history), Alt keys, function keys: the line is no longer known exactly.
        this.#exact = false;
    }
  }
}

/**
 * Decides on a completed interactive line: a line that is not known exactly is blocked when the
 * policy is `block` (the default), else checked like any command.
 */
export function checkInteractiveLine(
  event: { line: string; exact: boolean },
  guardrails: Guardrails,
): GuardrailVerdict {
  if (!event.exact && guardrails.config.unknownLine === 'block') {
    return {
      allowed: false,
      ruleId: 'unknown-line',
      reason: 'the line was edited with history or completion; retype it in full',
    };
  }
  return checkCommand(event.line, guardrails);
}
