/** `warden policy explain | test`: offline, from the configuration file alone. */
import { readFileSync } from 'node:fs';
import type { Config } from '../../broker/config/load.ts';
import { FileDirectory } from '../../broker/directory/directory.ts';
import { explainPolicy, runPolicyCases } from '../../broker/policy/explain.ts';
import { UsageError } from '../errors.ts';
import { ExitCode, type Io } from '../output.ts';

export function runPolicyCommand(
  verb: string | undefined,
  positionals: string[],
  flags: Record<string, string | boolean | undefined>,
  config: Config,
  io: Io,
): number {
  const directory = new FileDirectory(config.people);
  if (verb === 'explain') {
    const user = flags.user;
    const target = flags.target;
    if (typeof user !== 'string' || typeof target !== 'string') {
      throw new UsageError(
        'usage: warden policy explain --user alice --target prod-db [--level write] [--at 2026-12-01T10:00:00Z]',
      );
    }
    const at = typeof flags.at === 'string' ? Date.parse(flags.at) : Date.now();
    if (Number.isNaN(at)) throw new UsageError(`--at: not a date: ${flags.at}`);
    const result = explainPolicy(config, directory, {
      user,
      target,
      level: typeof flags.level === 'string' ? flags.level : undefined,
      at,
      breakGlass: flags['break-glass'] === true,
    });
    if (flags.json) io.out(JSON.stringify(result));
    else {
      io.out(`${result.outcome === 'denied' ? 'DENIED' : 'ALLOWED'}: ${result.summary}`);
      io.out(`  outcome:   ${result.outcome}`);
      io.out(`  rule:      ${result.rule ?? '(none)'}`);
      if (result.approvers.length) io.out(`  approvers: ${result.approvers.join(', ')}`);
      if (result.maxDuration)
        io.out(`  duration:  default ${result.defaultDuration}, max ${result.maxDuration}`);
    }
    return result.outcome === 'denied' ? ExitCode.Refused : ExitCode.Ok;
  }
  if (verb === 'test') {
    const file = positionals[0];
    if (!file) throw new UsageError('usage: warden policy test CASES.yaml');
    const results = runPolicyCases(config, directory, readFileSync(file, 'utf8'));
    for (const r of results) {
      io.out(`${r.passed ? 'ok  ' : 'FAIL'} ${r.name}`);
      for (const p of r.problems) io.out(`     ${p}`);
    }
    const failed = results.filter((r) => !r.passed).length;
    io.out(`${results.length - failed} passed, ${failed} failed`);
    return failed > 0 ? ExitCode.Refused : ExitCode.Ok;
  }
  throw new UsageError('usage: warden policy explain ... | warden policy test FILE');
}
