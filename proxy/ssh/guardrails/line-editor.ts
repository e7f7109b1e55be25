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
 *
 * Lines are logical lines, as the shell runs them: a line continued with a backslash, or left
 * incomplete (an open quote, `if` without `fi`), is reported with `incomplete: true` and joined
 * with the next one, whose event carries the whole text, so `re\` then `boot` is checked as
 * `reboot`. Bracketed paste (`ESC[200~` ... `ESC[201~`) only holds text back when the shell
 * asked for it (`ESC[?2004h` in its output, see {@link LineEditor.observeOutput}); while that is
 * not known, every line inside a paste is reported as if Enter ran it (a fake paste start
 * followed by a command is checked like a typed command), and the Enter after the paste reports
 * the whole paste, which a shell in paste mode runs at once.
 */
import { TextDecoder } from 'node:util';
import {
  checkCommand,
  createShellState,
  type Guardrails,
  type GuardrailVerdict,
  type ShellState,
} from './rules.ts';
import { parseShell } from './shell-syntax.ts';

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
export type LineEditorEvent = LineEvent | { type: 'cancel' } | { type: 'eof' };

/** A completed logical line. */
export interface LineEvent {
  type: 'line';
  /** The text the shell runs (or holds, when incomplete) at this Enter, earlier parts included. */
  line: string;
  exact: boolean;
  /** The shell waits for more (backslash continuation, open quote, open construct). */
  incomplete?: boolean;
  /** What the checker knows of this shell between lines (working directory, variables). */
  state?: ShellState;
}

/** Options of {@link LineEditor}. */
export interface LineEditorOptions {
  /** Longest line tracked, in characters; longer lines are not exact. Default 4096. */
  maxLineLength?: number;
}

const MAX_ESCAPE = 64;
/** Bracketed-paste mode switches a shell writes to its terminal. */
const PASTE_ON = '\x1b[?2004h';
const PASTE_OFF = '\x1b[?2004l';

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
  /** Whether the shell enabled bracketed paste (`unknown` until its output says). */
  #pasteMode: 'unknown' | 'on' | 'off' = 'unknown';
  #outputTail = '';
  /** Text of a logical line continued on the next Enter. */
  #pending = '';
  /** Lines of the current paste already reported (paste mode not known to be on). */
  #pasteLines: string[] = [];
  #pendingAtPaste = '';
  readonly #state: ShellState = createShellState();

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

  /**
   * Forgets the current and pending line, as the shell does on Ctrl-C: for a caller that refused a
   * line and sent the shell Ctrl-C (which drops a pending continuation too, unlike Ctrl-U).
   */
  cancel(): void {
    this.#pending = '';
    this.#pasteLines = [];
    this.#pasting = false;
    this.#reset();
  }

  /** Feeds output the shell sent to the terminal: tells whether it enabled bracketed paste. */
  observeOutput(data: Uint8Array | string): void {
    const text = this.#outputTail + (typeof data === 'string' ? data : Buffer.from(data).toString('latin1'));
    const on = text.lastIndexOf(PASTE_ON);
    const off = text.lastIndexOf(PASTE_OFF);
    if (on >= 0 || off >= 0) this.#pasteMode = on > off ? 'on' : 'off';
    this.#outputTail = text.slice(-(PASTE_ON.length - 1));
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
      if (code === Key.Esc) this.#escape = '';
      else if (code !== Key.Cr && code !== Key.Lf) this.#insert(char);
      else if (code === Key.Lf && wasCr) return;
      else if (this.#pasteMode === 'on') this.#insert('\n');
      else {
        // The shell may not be in paste mode (a fake paste start): this Enter may run the line.
        this.#pasteLines.push(this.line);
        this.#complete(this.line, events);
      }
      return;
    }
    switch (code) {
      case Key.Cr:
      case Key.Lf: {
        if (code === Key.Lf && wasCr) return;
        if (this.#pasteLines.length > 0) {
          // A shell in paste mode runs the whole paste at this Enter.
          const whole = [...this.#pasteLines, this.line].join('\n');
          this.#pasteLines = [];
          this.#pending = this.#pendingAtPaste;
          this.#complete(whole, events);
          return;
        }
        this.#complete(this.line, events);
        return;
      }
      case Key.CtrlC:
        events.push({ type: 'cancel' });
        this.#pending = '';
        this.#pasteLines = [];
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

  /** Reports a completed line, joined with a pending one, and keeps it pending if incomplete. */
  #complete(text: string, events: LineEditorEvent[]): void {
    const line = this.#pending === '' ? text : `${this.#pending}${this.#pendingJoin}${text}`;
    let incomplete = false;
    if (/(^|[^\\])(\\\\)*\\$/.test(line)) {
      // `\` + Enter: the shell removes both and reads on (PS2).
      this.#pending = line.slice(0, -1);
      this.#pendingJoin = '';
      incomplete = true;
    } else {
      const script = parseShell(line);
      incomplete = script.errors && script.incomplete;
      this.#pending = incomplete ? line : '';
      this.#pendingJoin = '\n';
    }
    events.push({
      type: 'line',
      line,
      exact: this.#exact,
      ...(incomplete ? { incomplete: true } : {}),
      state: this.#state,
    });
    this.#reset();
  }

  #pendingJoin = '\n';

  #escapeChar(char: string): void {
    const sequence = this.#escape + char;
    if (sequence.length > MAX_ESCAPE) {
      this.#escape = null;
      this.#exact = false;
      return;
    }
    // ESC [ params intermediates final (CSI, ECMA-48: params 0x30-0x3F, intermediates 0x20-0x2F,
    // final 0x40-0x7E), ESC O final (SS3), ESC ] ... BEL or ESC \ (OSC) and ESC P ... ESC \ (DCS);
    // anything else after ESC is an Alt key.
    if (sequence === '[' || sequence === 'O') {
      this.#escape = sequence;
      return;
    }
    if (sequence[0] === '[' && /^\[[\x30-\x3f]*[\x20-\x2f]*$/.test(sequence)) {
      this.#escape = sequence;
      return;
    }
    if (sequence[0] === ']' || sequence[0] === 'P' || sequence[0] === '_' || sequence[0] === '^') {
      // Strings (terminal replies, titles): consumed until their terminator, line no longer exact.
      if (!sequence.endsWith('\x07') && !sequence.endsWith('\x1b\\')) {
        this.#escape = sequence;
        return;
      }
      this.#escape = null;
      this.#exact = false;
      return;
    }
    this.#escape = null;
    this.#escapeSequence(sequence);
  }

  #escapeSequence(sequence: string): void {
    if (sequence === '[200~') {
      if (this.#pasteMode === 'off') {
        // The shell did not ask for bracketed paste: to it these are unknown keys.
        this.#exact = false;
        return;
      }
      this.#pasting = true;
      this.#pendingAtPaste = this.#pending;
      return;
    }
    if (sequence === '[201~') {
      if (this.#pasting) this.#pasting = false;
      else this.#exact = false;
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
  event: { line: string; exact: boolean; incomplete?: boolean; state?: ShellState },
  guardrails: Guardrails,
): GuardrailVerdict {
  if (!event.exact && guardrails.config.unknownLine === 'block') {
    return {
      allowed: false,
      ruleId: 'unknown-line',
      reason: 'the line was edited with history or completion; retype it in full',
    };
  }
  // An incomplete line runs nothing yet; what it holds is checked again with the rest.
  return checkCommand(event.line, guardrails, {
    interactive: true,
    allowIncomplete: event.incomplete === true,
    ...(event.state ? { state: event.state } : {}),
  });
}
