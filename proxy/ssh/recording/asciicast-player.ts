/**
 * Turns a recording into a playback schedule. Pure: the caller (CLI `warden replay`, a web
 * player) sleeps `delay` milliseconds and writes `data`.
 */
import { type Asciicast, AsciicastEventType } from './asciicast.ts';
import { RecordingError } from './errors.ts';

/** Options of {@link schedulePlayback}. */
export interface PlaybackOptions {
  /** Playback speed factor; 2 plays twice as fast. Default 1. */
  speed?: number;
  /**
   * Longest pause kept, in seconds (before the speed factor). Default: the header's
   * `idle_time_limit`, else no cap.
   */
  idleTimeLimit?: number;
  /** Also schedule resize events (`{ resize: [cols, rows] }`). Default false. */
  includeResize?: boolean;
}

/** One step of playback: wait `delay` ms after the previous step, then write `data` (or resize). */
export interface PlaybackStep {
  delay: number;
  data: string;
  resize?: [cols: number, rows: number];
}

/**
 * Builds the schedule of output (and optionally resize) events. Input and marker events are not
 * played. Throws `ERR_RECORDING_PLAYBACK` for a speed or idle limit that is not a positive number.
 */
export function schedulePlayback(cast: Asciicast, options: PlaybackOptions = {}): PlaybackStep[] {
  const speed = options.speed ?? 1;
  const idle = options.idleTimeLimit ?? cast.header.idle_time_limit ?? Number.POSITIVE_INFINITY;
  if (!(typeof speed === 'number' && Number.isFinite(speed) && speed > 0)) {
    throw new RecordingError('ERR_RECORDING_PLAYBACK', 'speed must be a positive number', {
      details: { speed },
    });
  }
  if (!(typeof idle === 'number' && idle > 0)) {
    throw new RecordingError('ERR_RECORDING_PLAYBACK', 'idleTimeLimit must be a positive number of seconds', {
      details: {
        idle,
      },
    });
  }
  const steps: PlaybackStep[] = [];
  let previous = 0;
  for (const [time, type, data] of cast.events) {
    const isResize = type === AsciicastEventType.Resize && options.includeResize === true;
    if (type !== AsciicastEventType.Output && !isResize) continue;
    // Pauses are measured between played events, so a long stretch of input-only events is capped too.
    const pause = Math.min(Math.max(0, time - previous), idle);
    previous = time;
    const delay = Math.round((pause / speed) * 1000 * 1000) / 1000;
    if (isResize) {
      const [cols, rows] = data.split('x').map(Number) as [number, number];
      steps.push({ delay, data: '', resize: [cols, rows] });
    } else {
      steps.push({ delay, data });
    }
  }
  return steps;
}
