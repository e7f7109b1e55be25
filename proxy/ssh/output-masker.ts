/**
 * Output masking of the SSH proxy: the shared masking core (`proxy/masking/`, the same detectors
 * as the Postgres proxy) behind a small per-stream interface. A target with a `masking:` section
 * gets a stream masker per output stream; a target without one passes bytes through unchanged.
 * The session calls {@link OutputMasker.flush} after {@link IDLE_FLUSH_MS} without output and at
 * the end, so a held-back partial value never waits for more output that does not come.
 */

import type { SecretRef, SecretResolver } from '../../lib/secret.ts';
import { compileMasking, createMasker, type Masker, type StreamMasker } from '../masking/index.ts';
import { SshProxyConfigError } from './errors.ts';

/** Idle time (ms) after which held-back output is released. */
export const IDLE_FLUSH_MS = 30;

/** Masks terminal output of one stream. Stateful: a value split across chunks is still found. */
export interface OutputMasker {
  /** Takes output bytes; returns what may be shown now (may hold back a partial match). */
  push(chunk: Buffer): Buffer;
  /** Returns whatever is held back: after an idle pause, and at the end of the stream. */
  flush(): Buffer;
  /** Bytes held back now (0 when nothing waits for a flush). */
  readonly pendingBytes: number;
  /** How many values each detector masked so far, by detector name. */
  readonly counts: Readonly<Record<string, number>>;
}

/** Builds one masker per output stream (masking rules may differ per target). */
export type OutputMaskerFactory = (context: { target: string; level: string }) => OutputMasker;

/** The default: shows bytes unchanged and counts nothing. */
export class PassThroughMasker implements OutputMasker {
  readonly counts: Readonly<Record<string, number>> = {};
  readonly pendingBytes = 0;
  push(chunk: Buffer): Buffer {
    return chunk;
  }
  flush(): Buffer {
    return Buffer.alloc(0);
  }
}

/** The factory of {@link PassThroughMasker}. */
export const passThroughMaskerFactory: OutputMaskerFactory = () => new PassThroughMasker();

/** {@link OutputMasker} over a stream masker of the shared core. */
export class CoreOutputMasker implements OutputMasker {
  readonly #stream: StreamMasker;
  constructor(masker: Masker) {
    this.#stream = masker.createStreamMasker();
  }
  push(chunk: Buffer): Buffer {
    return this.#stream.push(chunk);
  }
  flush(): Buffer {
    return this.#stream.flush();
  }
  get pendingBytes(): number {
    return this.#stream.pendingBytes;
  }
  get counts(): Readonly<Record<string, number>> {
    return this.#stream.counts();
  }
}

/** Reads a masking key reference as the masking config writes it: `env:NAME` or `file:/path`. */
function parseKeyRef(value: string, path: string): SecretRef {
  const match = /^(env|file):(.+)$/.exec(value);
  if (!match) {
    throw new SshProxyConfigError(path, 'the masking key is a secret reference, env:NAME or file:/path');
  }
  return match[1] === 'env' ? { env: match[2]! } : { file: match[2]! };
}

/**
 * Compiles the `masking:` section of every SSH target at start-up and returns the factory the
 * proxy uses; `secrets` reads the keys the sections reference. Fails with the config path on a bad
 * section or an unresolvable key.
 *
 * @throws SshProxyConfigError `ERR_SSH_PROXY_CONFIG` (key reference), what `secrets` throws (the broker's:
 *   `ERR_CONFIG_SECRET`, key not set), MaskingConfigError (`ERR_MASKING_*`: the section itself).
 */
export function createMaskerFactory(
  targets: Readonly<Record<string, { kind: string; masking?: Record<string, unknown> | undefined }>>,
  secrets: SecretResolver,
): OutputMaskerFactory {
  const maskers = new Map<string, Masker>();
  for (const [name, target] of Object.entries(targets)) {
    if (target.kind !== 'ssh' || target.masking === undefined) continue;
    const path = `targets.${name}.masking`;
    const keyRef = (target.masking as { key?: unknown }).key;
    const key =
      typeof keyRef === 'string' ? secrets(parseKeyRef(keyRef, `${path}.key`), `${path}.key`) : undefined;
    maskers.set(name, createMasker(compileMasking(target.masking, key?.reveal(), path)));
  }
  return ({ target }) => {
    const masker = maskers.get(target);
    return masker ? new CoreOutputMasker(masker) : new PassThroughMasker();
  };
}
