/**
 * What a process has started, to stop in reverse order: the last part started is the first
 * stopped, so nothing is stopped while a part started after it still uses it. A start-up that
 * fails half-way stops exactly what it had started. Depends on nothing of Warden's.
 */

/** Stops one part; may be called for a part whose start failed half-way, so it must cope with that. */
export type StopPart = () => unknown;

export class ShutdownStack {
  readonly #parts: { name: string; stop: StopPart }[] = [];

  /** Records a started part (or one about to start: its stop must then cope with a failed start). */
  push(name: string, stop: StopPart): void {
    this.#parts.push({ name, stop });
  }

  /** How many parts wait to be stopped. */
  get size(): number {
    return this.#parts.length;
  }

  /**
   * Stops every part, last started first. A part that fails to stop is reported to `onError` and
   * the others are still stopped; calling this again stops nothing twice.
   */
  async stopAll(onError: (part: string, error: unknown) => void = () => {}): Promise<void> {
    for (let part = this.#parts.pop(); part; part = this.#parts.pop()) {
      try {
        await part.stop();
      } catch (error) {
        onError(part.name, error);
      }
    }
  }
}
