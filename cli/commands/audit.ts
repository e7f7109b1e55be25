/** `warden audit verify | export`: reads the store directly, so it does not trust a running broker. */

import { openConfiguredStore } from '../../broker/app.ts';
import { GENESIS_HASH, verifyAuditChain } from '../../broker/audit/chain.ts';
import type { Config } from '../../broker/config/load.ts';
import { UsageError } from '../errors.ts';
import { ExitCode, type Io } from '../output.ts';

export async function runAuditCommand(
  verb: string | undefined,
  flags: Record<string, string | boolean | undefined>,
  config: Config,
  io: Io,
): Promise<number> {
  const store = await openConfiguredStore(config, io.env);
  try {
    if (verb === 'verify') {
      let from = { seq: 0, hash: GENESIS_HASH };
      let checked = 0;
      for (;;) {
        const page = await store.readAudit({ afterSeq: from.seq, limit: 5000 });
        const result = verifyAuditChain(page, from);
        checked += result.checked;
        if (!result.ok) {
          const p = result.problem!;
          io.err(
            `audit log TAMPERED: entry ${p.seq} was ${p.kind} (${checked} entries checked; entries up to ${result.lastSeq} are intact)`,
          );
          return ExitCode.Tampered;
        }
        if (page.length === 0) {
          const expect = typeof flags['expect-head'] === 'string' ? flags['expect-head'] : undefined;
          if (expect && !from.hash.startsWith(expect)) {
            io.err(
              `audit log TAMPERED: the head is ${from.hash.slice(0, 16)} (seq ${from.seq}), expected ${expect}: entries were removed from the end`,
            );
            return ExitCode.Tampered;
          }
          io.out(`audit log intact: ${checked} entries, head ${from.hash} (seq ${from.seq})`);
          return ExitCode.Ok;
        }
        from = { seq: result.lastSeq, hash: result.lastHash };
      }
    }
    if (verb === 'export') {
      const format = flags.format ?? 'jsonl';
      if (format !== 'jsonl') throw new UsageError('only --format jsonl is supported');
      const sinceText = typeof flags.since === 'string' ? flags.since : undefined;
      const since = sinceText ? Date.parse(sinceText) : undefined;
      if (sinceText && Number.isNaN(since)) throw new UsageError(`--since: not a date: ${sinceText}`);
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
    }
    throw new UsageError(
      'usage: warden audit verify [--expect-head HASH] | warden audit export [--since 2026-01-01] [--format jsonl]',
    );
  } finally {
    await store.close();
  }
}
