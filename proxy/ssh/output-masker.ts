/**
 * Where output masking plugs into the SSH proxy. The shared masking core (`proxy/masking/`, the
 * same detectors as the Postgres proxy) implements this interface; until it is wired in, the
 * pass-through masker keeps bytes as they are.
 */

/** Masks terminal output of one channel. Stateful: a value split across chunks is still found. */
export interface OutputMasker {
  /** Takes output bytes; returns what may be shown now (may hold back a partial match). */
  push(chunk: Buffer): Buffer;
  /** Returns whatever is held back, at the end of the channel. */
  flush(): Buffer;
  /** How many values each detector masked so far, by detector name. */
  readonly counts: Readonly<Record<string, number>>;
}

/** Builds one masker per channel (masking rules may differ per target). */
export type OutputMaskerFactory = (context: { target: string; level: string }) => OutputMasker;

/** The default: shows bytes unchanged and counts nothing. */
export class PassThroughMasker implements OutputMasker {
  readonly counts: Readonly<Record<string, number>> = {};
  push(chunk: Buffer): Buffer {
    return chunk;
  }
  flush(): Buffer {
    return Buffer.alloc(0);
  }
}

/** The factory of {@link PassThroughMasker}. */
export const passThroughMaskerFactory: OutputMaskerFactory = () => new PassThroughMasker();
