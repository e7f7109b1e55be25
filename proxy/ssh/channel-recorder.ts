/**
 * The recording of one proxied channel: asciicast v2 lines kept in memory up to a byte limit,
 * then stored with the session. Input is left out while the terminal likely has echo off (the last
 * output looks like a password prompt) until the next Enter. Pure apart from the injected clock.
 */
import { AsciicastWriter } from './recording/asciicast-writer.ts';

/** Output ending like this is taken as a prompt typed without echo. */
const SECRET_PROMPT = /(pass(word|phrase)|PIN|token|secret)[^\n]{0,40}:\s*$/i;
const PROMPT_TAIL = 200;

/** Options of {@link ChannelRecorder}. */
export interface ChannelRecorderOptions {
  width: number;
  height: number;
  startedAt: number;
  title: string;
  env?: Record<string, string>;
  recordInput: boolean;
  /** Most bytes of recording kept; later events are dropped and a marker says so. */
  maxBytes: number;
}

export class ChannelRecorder {
  readonly #writer: AsciicastWriter;
  readonly #lines: string[] = [];
  readonly #options: ChannelRecorderOptions;
  #bytes = 0;
  #truncated = false;
  #tail = '';
  #echoOff = false;

  constructor(options: ChannelRecorderOptions) {
    this.#options = options;
    this.#writer = new AsciicastWriter({
      width: options.width,
      height: options.height,
      startedAt: options.startedAt,
      title: options.title,
      ...(options.env ? { env: options.env } : {}),
    });
    this.#push(this.#writer.header(), 0);
  }

  /** Whether the recording hit its size limit. */
  get truncated(): boolean {
    return this.#truncated;
  }

  output(data: Buffer, at: number): void {
    const text = data.toString('latin1');
    this.#tail = (this.#tail + text).slice(-PROMPT_TAIL);
    this.#echoOff = SECRET_PROMPT.test(this.#tail);
    if (!this.#truncated) this.#push(this.#writer.output(data, at), at);
  }

  input(data: Buffer, at: number): void {
    const hidden = this.#echoOff || !this.#options.recordInput;
    if (data.includes(0x0d) || data.includes(0x0a)) this.#echoOff = false;
    if (!hidden && !this.#truncated) this.#push(this.#writer.input(data, at), at);
  }

  resize(width: number, height: number, at: number): void {
    if (!this.#truncated) this.#push(this.#writer.resize(width, height, at), at);
  }

  marker(label: string, at: number): void {
    this.#push(this.#writer.marker(label, at), at, true);
  }

  /** The whole recording text. */
  finish(at: number): string {
    if (!this.#truncated) this.#push(this.#writer.end(at), at);
    return this.#lines.join('');
  }

  #push(line: string, at: number, force = false): void {
    if (!line) return;
    if (!force && this.#bytes + line.length > this.#options.maxBytes) {
      this.#truncated = true;
      this.#lines.push(this.#writer.marker('warden: recording truncated (size limit)', at));
      return;
    }
    this.#bytes += line.length;
    this.#lines.push(line);
  }
}
