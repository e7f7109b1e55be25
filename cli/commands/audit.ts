/**
 * `warden audit verify | export | keygen`. verify and export read the store directly, so they do
 * not trust a running broker; verify also checks the audit key's signatures and the checkpoints
 * kept outside the store (docs/audit.md says what that proves).
 */
import { chmodSync, existsSync, writeFileSync } from 'node:fs';
import { openConfiguredStore } from '../../broker/app.ts';
import { type AuditCheckpoint, readCheckpointFile } from '../../broker/audit/checkpoints.ts';
import { loadConfiguredAuditKeyring } from '../../broker/audit/config.ts';
import { generateAuditKey } from '../../broker/audit/signing.ts';
import { describeAuditTamper, verifyAuditLog } from '../../broker/audit/verify.ts';
import type { Config } from '../../broker/config/load.ts';
import { ConfigError } from '../../broker/errors.ts';
import { UsageError } from '../errors.ts';
import { ExitCode, type Io } from '../output.ts';

type Flags = Record<string, string | boolean | undefined>;

const USAGE =
  'usage: warden audit verify [--expect-head HASH] [--checkpoints FILE] [--public-key FILE.pem] | warden audit export [--since 2026-01-01] [--format jsonl] | warden audit keygen --out FILE';

const s = (v: string | boolean | undefined) => (typeof v === 'string' ? v : undefined);

export async function runAuditCommand(
  verb: string | undefined,
  flags: Flags,
  config: Config,
  io: Io,
): Promise<number> {
  if (verb === 'keygen') return writeAuditKey(flags, io);
  if (verb !== 'verify' && verb !== 'export') throw new UsageError(USAGE);
  if (verb === 'export' && (flags.format ?? 'jsonl') !== 'jsonl') {
    throw new UsageError('only --format jsonl is supported');
  }
  const sinceText = s(flags.since);
  const since = sinceText ? Date.parse(sinceText) : undefined;
  if (sinceText && Number.isNaN(since)) throw new UsageError(`--since: not a date: ${sinceText}`);
  // Read before the store opens: a bad key or checkpoint file is a configuration error.
  const keyring =
    verb === 'verify'
      ? await loadConfiguredAuditKeyring(
          config,
          io.env,
          s(flags['public-key']) ? [s(flags['public-key'])!] : [],
        )
      : undefined;
  const checkpoints = verb === 'verify' ? readCheckpoints(config, s(flags.checkpoints)) : [];
  const store = await openConfiguredStore(config, io.env, undefined, { mustExist: true });
  try {
    if (verb === 'verify') {
      const report = await verifyAuditLog({
        store,
        keyring,
        checkpoints,
        expectHead: s(flags['expect-head']),
      });
      for (const warning of report.warnings) io.err(`warning: ${warning}`);
      if (!report.ok) {
        io.err(
          `audit log TAMPERED: ${describeAuditTamper(report.problem!)} (${report.checked} entries checked; entries up to ${report.head.seq} are intact)`,
        );
        return ExitCode.Tampered;
      }
      const signed = report.signatures.keyed
        ? `signed up to ${report.signatures.lastSigned}`
        : 'signatures not checked';
      const cps =
        checkpoints.length > 0
          ? `, ${report.checkpoints.checked} checkpoints match (newest at ${report.checkpoints.newest})`
          : '';
      io.out(
        `audit log intact: ${report.checked} entries, head ${report.head.hash} (seq ${report.head.seq}), ${signed}${cps}`,
      );
      return ExitCode.Ok;
    }
    let afterSeq = 0;
    for (;;) {
      const page = await store.readAudit({
        afterSeq,
        ...(since !== undefined ? { since } : {}),
        limit: 5000,
      });
      if (page.length === 0) return ExitCode.Ok;
      for (const e of page) io.out(JSON.stringify({ ...e, time: new Date(e.at).toISOString() }));
      afterSeq = page[page.length - 1]!.seq;
    }
  } finally {
    await store.close();
  }
}

/** The configured checkpoint file and `--checkpoints` (a checkpoint file or a Warden log). */
function readCheckpoints(config: Config, extra: string | undefined): AuditCheckpoint[] {
  const found: AuditCheckpoint[] = [];
  const sources = [
    ...(config.audit.checkpoints.file
      ? [{ file: config.audit.checkpoints.file, path: 'audit.checkpoints.file' }]
      : []),
    ...(extra ? [{ file: extra, path: '--checkpoints' }] : []),
  ];
  for (const { file, path } of sources) {
    if (path === '--checkpoints' && !existsSync(file)) throw new UsageError(`--checkpoints: no file ${file}`);
    try {
      found.push(...readCheckpointFile(file));
    } catch (error) {
      throw new ConfigError(path, `cannot read ${file}: ${(error as Error).message}`);
    }
  }
  return found;
}

/** `warden audit keygen --out FILE`: a new Ed25519 audit key (0600), and its public half on stdout. */
function writeAuditKey(flags: Flags, io: Io): number {
  const out = s(flags.out);
  if (!out) throw new UsageError('usage: warden audit keygen --out FILE   (the private key, written 0600)');
  if (existsSync(out) && flags.force !== true) throw new UsageError(`${out} exists (--force replaces it)`);
  const key = generateAuditKey();
  writeFileSync(out, key.privateKey, { mode: 0o600 });
  chmodSync(out, 0o600);
  io.err(`wrote the private key to ${out} (0600); reference it as audit.signing_key: { file: ${out} }`);
  io.err(`key id ${key.keyId}; its public key (for audit.public_keys on verifying machines):`);
  io.out(key.publicKey.trimEnd());
  return ExitCode.Ok;
}
