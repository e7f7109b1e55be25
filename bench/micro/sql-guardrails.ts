/**
 * Micro-benchmark of the SQL guardrails over a mixed corpus (issue 16's dangerous and ordinary
 * statements, plus pgbench's), in CPU time per statement (user + system time of this process, so
 * a busy machine skews it less than wall time). A measurement to run by hand:
 *   node --import tsx bench/micro/sql-guardrails.ts [--json]
 * - cached: the verdict caches are warm (every text was checked before), as on a session that
 *   sends the same statements again;
 * - uncached: caches disabled (`cacheSize: 0`), every check parses and analyses the text.
 * Estimates (`max_rows`) are not taken here: the relay's EXPLAIN is phase B; pending estimates
 * are settled with a constant answer so the cost of `applyEstimates` is included.
 * The figures feed `guardrail_us_per_statement_cached` / `_uncached` of `npm run bench -- pg-proxy`.
 */
import { type CheckContext, compileSqlGuardrails } from '../../proxy/guardrails/sql/index.ts';
import {
  CORPUS_GUARDRAILS,
  CORPUS_LEVEL,
  DANGEROUS,
  ORDINARY,
} from '../../test/proxy/guardrails/sql/corpus.ts';

const PGBENCH = [
  'UPDATE pgbench_accounts SET abalance = abalance + 4 WHERE aid = 48213;',
  'SELECT abalance FROM pgbench_accounts WHERE aid = 48213;',
  'UPDATE pgbench_tellers SET tbalance = tbalance + 4 WHERE tid = 7;',
  'UPDATE pgbench_branches SET bbalance = bbalance + 4 WHERE bid = 1;',
  'INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (7, 1, 48213, 4, CURRENT_TIMESTAMP);',
];
const corpus = [...DANGEROUS.map((c) => c.sql), ...ORDINARY.map((c) => c.sql), ...PGBENCH];
const ctx: CheckContext = { level: CORPUS_LEVEL, groups: [] };
const answer = new Map([[0, [{ relation: { name: 'x' }, rows: 1, tableRows: 100 }]]]);

function cpuMicros(since: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(since);
  return used.user + used.system;
}

function perStatement(cacheSize: number, rounds: number): number {
  const guard = compileSqlGuardrails({ ...CORPUS_GUARDRAILS, cacheSize });
  const run = () => {
    for (const sql of corpus) {
      const verdict = guard.check(sql, ctx);
      if (verdict.pendingEstimates) guard.applyEstimates(verdict, answer);
    }
  };
  run(); // warm the caches (and the JIT)
  run();
  const start = process.cpuUsage();
  for (let r = 0; r < rounds; r++) run();
  return cpuMicros(start) / (rounds * corpus.length);
}

const cached = perStatement(10_000, 400);
const uncached = perStatement(0, 20);
const figures = {
  statements: corpus.length,
  guardrail_us_per_statement_cached: Number(cached.toFixed(2)),
  guardrail_us_per_statement_uncached: Number(uncached.toFixed(1)),
};
if (process.argv.includes('--json')) console.log(JSON.stringify(figures));
else for (const [k, v] of Object.entries(figures)) console.log(`${k.padEnd(40)} ${v}`);
