/**
 * Audit checkpoints: signed statements "at time T the head of the log was entry N with hash H",
 * exported to sinks outside the store (a JSON-lines file, the log). The store's own signatures
 * cannot show that entries were removed from the end, or that the whole store was swapped for an
 * older copy: a checkpoint kept elsewhere can. `warden audit verify` reads them back.
 */
import {
  chmodSync,
  closeSync,
  existsSync,
  openSync,
  readFileSync,
  readSync,
  statSync,
  writeSync,
} from 'node:fs';
import type { Logger } from '../log.ts';
import type { AuditStore } from '../store/store.ts';
import { verifyAuditChain } from './chain.ts';
import type { AuditKeyring, AuditSigner, CheckpointFields } from './signing.ts';

/** One signed head, as written to a sink. */
export interface AuditCheckpoint extends CheckpointFields {
  type: 'warden-audit-checkpoint';
  /** The key id that signed it. */
  key: string;
  /** Base64 Ed25519 signature over {@link CheckpointFields}. */
  sig: string;
}

/** The field of a log line that carries a checkpoint. */
export const CHECKPOINT_LOG_FIELD = 'audit_checkpoint';

/** Largest checkpoint file read back (a line is ~250 bytes: millions of checkpoints). */
const MAX_CHECKPOINT_FILE = 256 * 1024 * 1024;

function isCheckpoint(value: unknown): value is AuditCheckpoint {
  const v = value as Partial<AuditCheckpoint> | null;
  return (
    !!v &&
    typeof v === 'object' &&
    v.type === 'warden-audit-checkpoint' &&
    Number.isSafeInteger(v.seq) &&
    (v.seq as number) > 0 &&
    typeof v.hash === 'string' &&
    /^[0-9a-f]{64}$/.test(v.hash) &&
    Number.isSafeInteger(v.at) &&
    typeof v.key === 'string' &&
    typeof v.sig === 'string'
  );
}

/**
 * Reads checkpoints from text: lines of a checkpoint file, or of a Warden log (JSON lines whose
 * `audit_checkpoint` field holds one). Other lines are skipped, so a whole log can be passed in.
 */
export function parseCheckpoints(text: string): AuditCheckpoint[] {
  const found: AuditCheckpoint[] = [];
  for (const line of text.split('\n')) {
    if (!line.includes('warden-audit-checkpoint')) continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      continue;
    }
    const candidate = (value as Record<string, unknown>)?.[CHECKPOINT_LOG_FIELD] ?? value;
    if (isCheckpoint(candidate)) found.push(candidate);
  }
  return found;
}

/** Reads a checkpoint file (or a log); a missing file reads as no checkpoints. */
export function readCheckpointFile(file: string): AuditCheckpoint[] {
  if (!existsSync(file)) return [];
  if (statSync(file).size > MAX_CHECKPOINT_FILE) {
    throw new Error(`${file} is larger than ${MAX_CHECKPOINT_FILE} bytes`);
  }
  return parseCheckpoints(readFileSync(file, 'utf8'));
}

/** The last checkpoint of a file, read from its end (a checkpoint file grows for years). */
export function readLastCheckpoint(file: string): AuditCheckpoint | undefined {
  if (!existsSync(file)) return undefined;
  const size = statSync(file).size;
  const length = Math.min(size, 64 * 1024);
  const buffer = Buffer.alloc(length);
  const fd = openSync(file, 'r');
  try {
    readSync(fd, buffer, 0, length, size - length);
  } finally {
    closeSync(fd);
  }
  return parseCheckpoints(buffer.toString('utf8')).at(-1);
}

/** Appends one line to `file`, creating it 0600 (and narrowing a looser one). */
function appendLine(file: string, line: string): void {
  const fd = openSync(file, 'a', 0o600);
  try {
    if ((statSync(file).mode & 0o077) !== 0) chmodSync(file, 0o600);
    writeSync(fd, `${line}\n`);
  } finally {
    closeSync(fd);
  }
}

export interface AuditCheckpointerOptions {
  store: Pick<AuditStore, 'readAudit' | 'readAuditHead'>;
  signer: AuditSigner;
  /** Checks the head's own signature before it is checkpointed. */
  keyring: AuditKeyring;
  logger: Logger;
  /** The checkpoint file; none when unset. */
  file?: string | undefined;
  /** Also log each checkpoint (info). */
  log: boolean;
  /** Milliseconds between checks of the head. */
  everyMs: number;
  clock?: () => number;
}

/**
 * Signs the head of the log when it moved, every `everyMs`, and once more on `stop()`. Before
 * signing it checks that the head carries a good signature of its own and that the entries since
 * the last checkpoint chain onto it, so it never vouches for entries someone else wrote into the
 * store; a head that went backwards is reported, not signed.
 */
export class AuditCheckpointer {
  readonly #options: AuditCheckpointerOptions;
  readonly #clock: () => number;
  #last: { seq: number; hash: string } | undefined;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<unknown> | undefined;

  constructor(options: AuditCheckpointerOptions) {
    this.#options = options;
    this.#clock = options.clock ?? Date.now;
    const previous = options.file ? readLastCheckpoint(options.file) : undefined;
    if (previous) this.#last = { seq: previous.seq, hash: previous.hash };
  }

  /** Starts the periodic checkpoints. */
  start(): void {
    this.#timer ??= setInterval(() => void this.#tick(), this.#options.everyMs);
    this.#timer.unref();
  }

  /** Stops the timer and takes a last checkpoint. */
  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running;
    await this.checkpoint();
  }

  #tick(): void {
    if (this.#running) return;
    this.#running = this.checkpoint().finally(() => {
      this.#running = undefined;
    });
  }

  /** Checkpoints the head now if it moved; returns what was written, if anything. Never throws. */
  async checkpoint(): Promise<AuditCheckpoint | undefined> {
    const { store, signer, keyring, logger } = this.#options;
    try {
      const head = await store.readAuditHead();
      if (!head || (this.#last && head.seq === this.#last.seq && head.hash === this.#last.hash))
        return undefined;
      if (this.#last && head.seq <= this.#last.seq) {
        logger.error(
          { head: head.seq, checkpoint: this.#last.seq },
          'audit log TAMPERED: the head is behind the last checkpoint (entries removed or the store replaced); not checkpointing',
        );
        return undefined;
      }
      if (!head.sig || !head.keyId || !keyring.verifyEntry(head.hash, head.keyId, head.sig)) {
        logger.error(
          { head: head.seq },
          'audit log head carries no valid signature (written without the audit key, or tampered); not checkpointing',
        );
        return undefined;
      }
      if (this.#last && !(await this.#extendsLast(head.seq))) {
        logger.error(
          { checkpoint: this.#last.seq },
          'audit log TAMPERED: entries since the last checkpoint do not chain onto it; not checkpointing',
        );
        return undefined;
      }
      const fields = { seq: head.seq, hash: head.hash, at: this.#clock() };
      const checkpoint: AuditCheckpoint = {
        type: 'warden-audit-checkpoint',
        ...fields,
        key: signer.keyId,
        sig: signer.signCheckpoint(fields),
      };
      if (this.#options.file) appendLine(this.#options.file, JSON.stringify(checkpoint));
      if (this.#options.log) logger.info({ [CHECKPOINT_LOG_FIELD]: checkpoint }, 'audit checkpoint');
      this.#last = { seq: head.seq, hash: head.hash };
      return checkpoint;
    } catch (error) {
      logger.error({ err: error }, 'audit checkpoint failed');
      return undefined;
    }
  }

  /** Whether the entries after the last checkpoint, up to `headSeq`, chain onto its hash. */
  async #extendsLast(headSeq: number): Promise<boolean> {
    let from = this.#last!;
    while (from.seq < headSeq) {
      const page = await this.#options.store.readAudit({ afterSeq: from.seq, limit: 5000 });
      if (page.length === 0) return false;
      const result = verifyAuditChain(page, from);
      if (!result.ok) return false;
      from = { seq: result.lastSeq, hash: result.lastHash };
    }
    return true;
  }
}
