/**
 * asciicast v2 (https://docs.asciinema.org/manual/asciicast/v2/): a JSON header line, then one
 * JSON array per event, `[seconds, type, data]`. Shared types and limits of the writer, reader and
 * player.
 */

/** Event types as written in the second element of an event line. */
export enum AsciicastEventType {
  /** `"o"`: output the terminal printed. */
  Output = 'o',
  /** `"i"`: input the user typed. */
  Input = 'i',
  /** `"r"`: terminal resize, data `"<cols>x<rows>"`. */
  Resize = 'r',
  /** `"m"`: marker, data is a label. */
  Marker = 'm',
}

/** The header line. `timestamp` is Unix seconds; `idle_time_limit` seconds. */
export interface AsciicastHeader {
  version: 2;
  width: number;
  height: number;
  timestamp?: number;
  idle_time_limit?: number;
  env?: Record<string, string>;
  title?: string;
}

/** One event: seconds since the start of the recording, its type, its data. */
export type AsciicastEvent = [time: number, type: AsciicastEventType, data: string];

/** Largest terminal dimension accepted in a header or resize event. */
export const MAX_TERMINAL_SIZE = 10_000;

/** A whole recording. */
export interface Asciicast {
  header: AsciicastHeader;
  events: AsciicastEvent[];
}
