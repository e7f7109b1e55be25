/**
 * Benchmark of the CI exchange: exchanges per second and latency over HTTP with a warm JWKS cache,
 * each exchange with a fresh token (new `jti`) and a real role created on PostgreSQL, plus how
 * many times the JWKS was fetched while the issuer rotated its keys once mid-run.
 *
 * `npm run bench -- ci-exchange --json` (through bench/run.ts), or directly:
 * `node --import tsx bench/ci-exchange.ts [--json] [--count 400] [--concurrency 8]`.
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { startCiExchangeFixture } from '../test/helpers/ci-exchange-fixture.ts';
import { startPgCluster } from '../test/helpers/pg-cluster.ts';

/** Options of {@link run}. */
export interface CiExchangeBenchArgs {
  /** Print only the JSON figures (last line) instead of a readable summary too. */
  readonly json: boolean;
  /** Exchanges measured, split in two halves around the key rotation; default 400. */
  readonly count?: number;
  /** Exchanges in flight at once; default 4. */
  readonly concurrency?: number;
}

const BODY = { target: 'app-db', level: 'read', ttl: '5m' };

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const round = (n: number) => Math.round(n * 100) / 100;

/** Runs the benchmark; returns `{per_s, p50_ms, p99_ms, jwks_fetches}` and prints them. */
export async function run(args: CiExchangeBenchArgs): Promise<Record<string, number>> {
  const count = args.count ?? 400;
  // Latency is measured one exchange at a time; throughput separately, with 4 jobs at once.
  const concurrency = args.concurrency ?? 1;
  const throughputConcurrency = 4;
  const cluster = await startPgCluster();
  const fx = await startCiExchangeFixture(cluster, {
    rateLimit: { per_subject: 100_000, per_issuer: 100_000 },
  });
  try {
    // Warm-up: discovery, JWKS, connection pools, JIT.
    for (let i = 0; i < 10; i++) {
      const res = await fx.post(await fx.issuer.issue({ sub: `warm-${i}` }), BODY);
      if (res.status !== 200) throw new Error(`warm-up exchange failed: ${JSON.stringify(res.json)}`);
    }
    const fetchesBefore = fx.issuer.jwksFetches;
    const latencies: number[] = [];
    let failures = 0;
    const codes = new Set<string>();
    let elapsed = 0;
    for (const phase of [0, 1]) {
      if (phase === 1) {
        await fx.issuer.rotate();
        // Unknown kids refetch at most once per second (the fixture's interval): let it pass.
        await new Promise((resolve) => setTimeout(resolve, 1_100));
      }
      // Tokens are signed beforehand: the issuer's signing is not the broker's work.
      const half = Math.floor(count / 2);
      const tokens = await Promise.all(
        Array.from({ length: half }, (_, i) => fx.issuer.issue({ sub: `bench-${phase}-${i}` })),
      );
      let next = 0;
      const started = performance.now();
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (next < tokens.length) {
            const token = tokens[next++]!;
            const t0 = performance.now();
            const res = await fx.post(token, BODY);
            latencies.push(performance.now() - t0);
            if (res.status !== 200) {
              failures++;
              codes.add(res.json.error?.code ?? String(res.status));
            }
          }
        }),
      );
      elapsed += performance.now() - started;
    }
    // Throughput: the same exchanges with several jobs at once.
    const burst = await Promise.all(
      Array.from({ length: Math.floor(count / 2) }, (_, i) => fx.issuer.issue({ sub: `burst-${i}` })),
    );
    let cursor = 0;
    const burstStarted = performance.now();
    await Promise.all(
      Array.from({ length: throughputConcurrency }, async () => {
        while (cursor < burst.length) {
          const res = await fx.post(burst[cursor++]!, BODY);
          if (res.status !== 200) {
            failures++;
            codes.add(res.json.error?.code ?? String(res.status));
          }
        }
      }),
    );
    const burstElapsed = performance.now() - burstStarted;
    if (failures > 0)
      throw new Error(`${failures} exchanges failed during the benchmark: ${[...codes].join(', ')}`);
    latencies.sort((a, b) => a - b);
    const result = {
      per_s: round((burst.length / burstElapsed) * 1000),
      sequential_per_s: round((latencies.length / elapsed) * 1000),
      p50_ms: round(percentile(latencies, 50)),
      p99_ms: round(percentile(latencies, 99)),
      jwks_fetches: fx.issuer.jwksFetches - fetchesBefore,
    };
    if (!args.json) {
      console.log(
        `ci-exchange: ${latencies.length} exchanges, concurrency ${concurrency}, one key rotation: ` +
          `${result.per_s}/s, p50 ${result.p50_ms} ms, p99 ${result.p99_ms} ms, JWKS fetches ${result.jwks_fetches}`,
      );
    }
    return result;
  } finally {
    await fx.close();
    await cluster.stop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      json: { type: 'boolean', default: false },
      count: { type: 'string' },
      concurrency: { type: 'string' },
    },
  });
  const result = await run({
    json: values.json,
    ...(values.count ? { count: Number(values.count) } : {}),
    ...(values.concurrency ? { concurrency: Number(values.concurrency) } : {}),
  });
  console.log(JSON.stringify(result));
}
