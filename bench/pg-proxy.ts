/**
 * Benchmark of the Postgres recording proxy (`npm run bench -- pg-proxy --json`). Starts what it
 * needs on 127.0.0.1: a PostgreSQL 15 cluster, pgbouncer (session mode) and the proxy in its own
 * process with guardrails, masking (two masked columns plus the default detectors) and
 * recording on. Measures:
 * - `pgbench -S`, 8 clients, simple and prepared: tps direct, through pgbouncer, through Warden;
 * - a 1,000,000-row (~100 MB) result with two masked columns: time through Warden / time direct;
 * - the same result read directly with a role the Postgres provider minted, through the masking
 *   views the database computes (issue 15), against raw: `masked_large_result_direct_ratio`;
 * - RSS growth of the proxy process per idle proxied connection, at 1,000 connections;
 * - the guardrails' cost per statement text over issue 16's mixed corpus (dangerous and ordinary
 *   statements), with the verdict caches warm and with them off;
 * - the latency a write pays for its blast-radius estimate (EXPLAIN on the session's connection):
 *   p99 of a targeted UPDATE through Warden with the default pack, less the same through a Warden
 *   with blast-radius disabled.
 */
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { targetSchema } from '../broker/config/schema.ts';
import type { AccessRequest } from '../broker/model.ts';
import { PostgresCredential } from '../broker/providers/postgres/credential.ts';
import { PostgresProvider } from '../broker/providers/postgres/postgres-provider.ts';
import {
  createDatabase,
  execSql,
  freePort,
  type PgCluster,
  startPgCluster,
} from '../cli/demo/local-postgres.ts';
import { Secret } from '../lib/secret.ts';
import { compileSqlGuardrails } from '../proxy/guardrails/sql/index.ts';
import type { PgProxyTargetConfig } from '../proxy/pg/config.ts';
import { loginRaw, type RawClient } from '../test/helpers/pg-raw-client.ts';
import { prepareTargetAdmin, TEST_ADMIN_USER } from '../test/helpers/target-admin.ts';
import { CORPUS_GUARDRAILS, CORPUS_LEVEL, DANGEROUS, ORDINARY } from '../test/proxy/guardrails/sql/corpus.ts';
import { summarize } from './_stats.ts';

const PGBENCH_SECONDS = Number(process.env.WARDEN_BENCH_SECONDS ?? 5);
/** `WARDEN_BENCH_PGBENCH_ONLY=1`: only the pgbench runs (quick iterations on the hot path). */
const PGBENCH_ONLY = process.env.WARDEN_BENCH_PGBENCH_ONLY === '1';
const IDLE_CONNECTIONS = 1_000;
export const PROXY_USER = 'bench';
export const PROXY_PASSWORD = 'bench-proxy-password';

export interface Endpoint {
  port: number;
  user: string;
  password: string;
}

export function exec(
  cmd: string,
  args: string[],
  env: Record<string, string>,
): Promise<{ stdout: string; ms: number }> {
  const started = process.hrtime.bigint();
  return new Promise((resolve, reject) =>
    execFile(cmd, args, { env, maxBuffer: 256 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${cmd} failed: ${stderr || error.message}`));
      else resolve({ stdout, ms: Number(process.hrtime.bigint() - started) / 1e6 });
    }),
  );
}

export function libpq(endpoint: Endpoint, database: string): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    PGHOST: '127.0.0.1',
    PGPORT: String(endpoint.port),
    PGUSER: endpoint.user,
    PGPASSWORD: endpoint.password,
    PGDATABASE: database,
    PGSSLMODE: 'disable',
  };
}

/** Clock ticks per second of /proc's CPU times (USER_HZ, 100 on Linux). */
const CLOCK_TICKS = 100;

/** The process and its descendants (pgbouncer runs under runuser and sh). */
function processTree(pid: number): number[] {
  const pids = [pid];
  for (let i = 0; i < pids.length; i++) {
    let children = '';
    try {
      for (const task of readdirSync(`/proc/${pids[i]}/task`))
        children += ` ${readFileSync(`/proc/${pids[i]}/task/${task}/children`, 'utf8')}`;
    } catch {
      continue;
    }
    for (const child of children.split(' ')) if (child.trim()) pids.push(Number(child));
  }
  return pids;
}

/** CPU time (all threads) of a process tree, in µs: user and system (kernel) time. */
function cpuMicros(pid: number): { user: number; system: number } {
  let user = 0;
  let system = 0;
  for (const p of processTree(pid)) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      // Fields after the command name (which may hold spaces): utime is the 14th, stime the 15th.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      user += Number(fields[11]);
      system += Number(fields[12]);
    } catch {
      // The process ended between listing and reading.
    }
  }
  return { user: (user * 1e6) / CLOCK_TICKS, system: (system * 1e6) / CLOCK_TICKS };
}

interface PgbenchResult {
  tps: number;
  /** CPU µs per transaction of the process under `pid` (the proxy or pgbouncer), if given. */
  cpuPerTx?: number;
  /** The part of `cpuPerTx` spent in the kernel (socket system calls, loopback delivery). */
  systemPerTx?: number;
}

async function pgbench(
  endpoint: Endpoint,
  database: string,
  mode: 'simple' | 'prepared',
  pid?: number,
): Promise<PgbenchResult> {
  // A short unmeasured run first: every contender is measured warm (JIT, caches, pools).
  const args = ['-n', '-S', '-c', '8', '-j', '2', '-M', mode];
  await exec('pgbench', [...args, '-T', '1'], libpq(endpoint, database));
  const cpuBefore = pid === undefined ? undefined : cpuMicros(pid);
  const { stdout } = await exec(
    'pgbench',
    [...args, '-T', String(PGBENCH_SECONDS)],
    libpq(endpoint, database),
  );
  const cpuAfter = pid === undefined ? undefined : cpuMicros(pid);
  const match = /tps = ([\d.]+) \(without initial connection time\)/.exec(stdout);
  const processed = /number of transactions actually processed: (\d+)/.exec(stdout);
  if (!match || !processed) throw new Error(`cannot read pgbench output: ${stdout.slice(-300)}`);
  const tps = Number(match[1]);
  if (!cpuBefore || !cpuAfter) return { tps };
  const perTx = (micros: number) => Number((micros / Number(processed[1])).toFixed(2));
  const system = cpuAfter.system - cpuBefore.system;
  return { tps, cpuPerTx: perTx(cpuAfter.user - cpuBefore.user + system), systemPerTx: perTx(system) };
}

function startPgbouncer(
  dir: string,
  cluster: PgCluster,
  database: string,
  port: number,
  mode: 'session' | 'transaction',
): ChildProcess {
  const ini = join(dir, `pgbouncer-${mode}.ini`);
  writeFileSync(join(dir, 'userlist.txt'), `"${cluster.user}" "${cluster.password}"\n`);
  writeFileSync(
    ini,
    [
      '[databases]',
      `${database} = host=127.0.0.1 port=${cluster.port} dbname=${database}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = trust',
      `auth_file = ${join(dir, 'userlist.txt')}`,
      `pool_mode = ${mode}`,
      'max_client_conn = 3000',
      'default_pool_size = 20',
      'ignore_startup_parameters = extra_float_digits,options',
      'logfile = /dev/null',
      '',
    ].join('\n'),
  );
  for (const file of [ini, join(dir, 'userlist.txt')]) chmodSync(file, 0o644);
  // 1,000 idle clients need more descriptors than the usual soft limit of 1,024; runuser applies
  // PAM limits, so the limit is raised inside the postgres user's shell.
  const asRoot = process.getuid?.() === 0;
  const command = `ulimit -n 8192; exec pgbouncer ${ini}`;
  return spawn(
    asRoot ? 'runuser' : 'sh',
    asRoot ? ['-u', 'postgres', '--', 'sh', '-c', command] : ['-c', command],
    {
      stdio: 'ignore',
    },
  );
}

async function waitForPort(endpoint: Endpoint, database: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      await exec('psql', ['-X', '-At', '-c', 'select 1'], libpq(endpoint, database));
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`nothing answers on port ${endpoint.port}`);
}

/** Starts bench/pg-proxy-server.ts in its own process (`nodeArgs` such as `--cpu-prof` go to node). */
export async function startProxy(
  dir: string,
  name: string,
  upstream: { port: number; database: string; user: string; password: string },
  proxy: PgProxyTargetConfig,
  nodeArgs: readonly string[] = [],
): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(
    process.execPath,
    [
      ...nodeArgs,
      // e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` to profile the proxy under pgbench.
      ...(process.env.WARDEN_BENCH_PROXY_NODE_ARGS?.split(' ').filter(Boolean) ?? []),
      '--import',
      'tsx',
      join(import.meta.dirname, 'pg-proxy-server.ts'),
    ],
    {
      env: {
        ...process.env,
        WARDEN_BENCH_PROXY: JSON.stringify({
          user: PROXY_USER,
          password: PROXY_PASSWORD,
          upstream: { host: '127.0.0.1', ...upstream },
          proxy,
          storePath: join(dir, `${name}.db`),
        }),
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d;
      const match = /READY (\d+)/.exec(out);
      if (match) resolve(Number(match[1]));
    });
    child.once('exit', (code) => reject(new Error(`proxy process exited (${code})`)));
  });
  return { child, port };
}

function rssKb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
}

async function openIdle(port: number, database: string, count: number): Promise<RawClient[]> {
  const clients: RawClient[] = [];
  for (let i = 0; i < count; i += 50) {
    const batch = Array.from({ length: Math.min(50, count - i) }, () =>
      loginRaw({ port, user: PROXY_USER, password: PROXY_PASSWORD, database }),
    );
    clients.push(...(await Promise.all(batch)));
  }
  return clients;
}

/** Statement texts checked per measurement of the guardrails' cost. */
const GUARDRAIL_CHECKS = 20_000;
/** Targeted writes timed per proxy for the blast-radius latency. */
const BLAST_RADIUS_WRITES = 400;

/**
 * µs per statement text checked over the mixed corpus (in this process: the check is pure CPU),
 * with the verdict caches warm (`cached`) and disabled (`uncached`).
 */
export function measureGuardrails(): { cached: number; uncached: number } {
  const texts = [...DANGEROUS, ...ORDINARY].map((c) => c.sql);
  const ctx = { level: CORPUS_LEVEL, groups: [] as string[] };
  const time = (cacheSize: number) => {
    const guardrails = compileSqlGuardrails({ ...CORPUS_GUARDRAILS, cacheSize });
    for (const sql of texts) guardrails.check(sql, ctx);
    const started = process.hrtime.bigint();
    for (let i = 0; i < GUARDRAIL_CHECKS; i++) guardrails.check(texts[i % texts.length]!, ctx);
    return Number(process.hrtime.bigint() - started) / 1_000 / GUARDRAIL_CHECKS;
  };
  return { cached: Number(time(10_000).toFixed(2)), uncached: Number(time(0).toFixed(2)) };
}

/** Latencies (ms) of targeted UPDATEs, one at a time on one connection, simple protocol. */
async function timeWrites(endpoint: Endpoint, database: string): Promise<number[]> {
  const client = new pg.Client({ host: '127.0.0.1', ...endpoint, database });
  await client.connect();
  try {
    const samples: number[] = [];
    for (let i = 0; i < BLAST_RADIUS_WRITES + 50; i++) {
      const aid = 1 + ((i * 7919) % 400_000);
      const started = process.hrtime.bigint();
      await client.query(`UPDATE pgbench_accounts SET abalance = abalance WHERE aid = ${aid}`);
      // The first 50 warm the connection, the plan caches and the proxy's JIT.
      if (i >= 50) samples.push(Number(process.hrtime.bigint() - started) / 1e6);
    }
    return samples;
  } finally {
    await client.end();
  }
}

/** The proxy as benchmarked: default guardrails, two masked columns of `big` plus the default detectors, recording on. */
export const BENCH_PROXY_SETTINGS: PgProxyTargetConfig = {
  listen: '127.0.0.1:0',
  allow_plaintext: true,
  guardrails: {},
  masking: {
    columns: [
      { match: 'big.email', style: 'redact' },
      { match: 'big.card_number', style: 'last4' },
    ],
  },
  record_rows: false,
};

/**
 * A role minted by the Postgres provider for a read level with the benchmark's two column rules
 * (the README's CREATEROLE admin), so `select * from big` reads `warden_mask.big`.
 */
async function mintMaskedRole(
  cluster: PgCluster,
  database: string,
): Promise<{ endpoint: Endpoint; close: () => Promise<void> }> {
  await prepareTargetAdmin(cluster, database);
  const target = targetSchema.parse({
    kind: 'postgres',
    admin: {
      host: '127.0.0.1',
      port: cluster.port,
      database,
      user: TEST_ADMIN_USER,
      password: { env: 'BENCH_ADMIN_PASSWORD' },
    },
    levels: { read: { grants: ['select'] } },
    masking: { columns: BENCH_PROXY_SETTINGS.masking.columns },
  });
  if (target.kind !== 'postgres') throw new Error('bench is a postgres target');
  const provider = new PostgresProvider({
    targetName: 'bench',
    target,
    adminPassword: new Secret(cluster.password),
  });
  const grant = { id: 'bench1', requester: 'bench', level: 'read' } as AccessRequest;
  const { credential } = await provider.mint(grant, Date.now() + 3_600_000);
  if (!(credential instanceof PostgresCredential)) throw new Error('a postgres credential');
  return {
    endpoint: { port: cluster.port, user: credential.user, password: credential.password.reveal() },
    close: () => provider.close(),
  };
}

/** Runs the benchmark and returns the issue's figures. */
export async function run(args: { json: boolean }): Promise<Record<string, number>> {
  const log = (line: string) => {
    if (!args.json) console.log(line);
  };
  for (const [tool, flag, pkg] of [
    ['pgbouncer', '--version', 'pgbouncer'],
    ['pgbench', '--version', 'postgresql-client-15'],
  ]) {
    try {
      execFileSync(tool!, [flag!], { stdio: 'ignore' });
    } catch {
      throw new Error(`the pg-proxy benchmark needs ${tool} (apt-get install ${pkg})`);
    }
  }
  const dir = mkdtempSync(join(tmpdir(), 'warden-bench-'));
  chmodSync(dir, 0o755);
  const cluster = await startPgCluster({ max_connections: 200, shared_buffers: "'256MB'" });
  const children: ChildProcess[] = [];
  try {
    const database = await createDatabase(cluster, 'bench');
    const direct: Endpoint = { port: cluster.port, user: cluster.user, password: cluster.password };
    await exec('pgbench', ['-i', '-q', '-s', '5'], libpq(direct, database));
    await execSql(
      cluster,
      database,
      "CREATE TABLE big AS SELECT g AS id, 'user' || g || '@example.com' AS email, lpad(g::text, 16, '4') AS card_number, repeat('x', 40) AS filler FROM generate_series(1, 1000000) g; ANALYZE big",
    );
    const bouncerPort = await freePort();
    const bouncer = startPgbouncer(dir, cluster, database, bouncerPort, 'session');
    children.push(bouncer);
    const pooled: Endpoint = { port: bouncerPort, user: cluster.user, password: cluster.password };
    await waitForPort(pooled, database);
    const proxySettings = BENCH_PROXY_SETTINGS;
    const upstream = { port: cluster.port, database, user: cluster.user, password: cluster.password };
    const proxy = await startProxy(dir, 'proxy', upstream, proxySettings);
    children.push(proxy.child);
    const warden: Endpoint = { port: proxy.port, user: PROXY_USER, password: PROXY_PASSWORD };

    const figures: Record<string, number> = {};
    for (const mode of ['simple', 'prepared'] as const) {
      const prefix = mode === 'prepared' ? 'prepared_' : '';
      figures[`${prefix}tps_direct`] = (await pgbench(direct, database, mode)).tps;
      const viaBouncer = await pgbench(pooled, database, mode, bouncer.pid);
      const viaWarden = await pgbench(warden, database, mode, proxy.child.pid);
      figures[`${prefix}tps_pgbouncer`] = viaBouncer.tps;
      figures[`${prefix}tps_warden`] = viaWarden.tps;
      figures[`${prefix}cpu_us_per_tx_pgbouncer`] = viaBouncer.cpuPerTx!;
      figures[`${prefix}cpu_us_per_tx_warden`] = viaWarden.cpuPerTx!;
      log(
        `pgbench -S ${mode}: direct ${figures[`${prefix}tps_direct`]} tps, pgbouncer ${viaBouncer.tps} tps, warden ${viaWarden.tps} tps`,
      );
      log(
        `CPU per transaction (${mode}): pgbouncer ${viaBouncer.cpuPerTx} µs (${viaBouncer.systemPerTx} in the kernel), warden ${viaWarden.cpuPerTx} µs (${viaWarden.systemPerTx} in the kernel)`,
      );
    }

    const guardrailCost = measureGuardrails();
    figures.guardrail_us_per_statement_cached = guardrailCost.cached;
    figures.guardrail_us_per_statement_uncached = guardrailCost.uncached;
    log(
      `guardrails per statement text: ${guardrailCost.cached} µs cached, ${guardrailCost.uncached} µs uncached`,
    );

    // The same proxy without the blast-radius rule: the difference is what the estimate adds.
    const noEstimate = await startProxy(dir, 'no-estimate', upstream, {
      ...proxySettings,
      guardrails: { disable: ['blast-radius'] },
    });
    children.push(noEstimate.child);
    const without = summarize(await timeWrites({ ...warden, port: noEstimate.port }, database));
    const withEstimate = summarize(await timeWrites(warden, database));
    figures.blast_radius_ms_p99 = Number((withEstimate.p99 - without.p99).toFixed(3));
    figures.blast_radius_ms_p50 = Number((withEstimate.p50 - without.p50).toFixed(3));
    log(
      `targeted UPDATE through warden: p50 ${withEstimate.p50} ms / p99 ${withEstimate.p99} ms with the estimate, p50 ${without.p50} ms / p99 ${without.p99} ms without`,
    );
    noEstimate.child.kill('SIGTERM');

    if (PGBENCH_ONLY) {
      console.log(JSON.stringify(figures));
      return figures;
    }

    const query = ['-X', '-At', '-o', '/dev/null', '-c', 'select * from big'];
    const best = async (endpoint: Endpoint) => {
      let ms = Number.POSITIVE_INFINITY;
      for (let i = 0; i < 3; i++)
        ms = Math.min(ms, (await exec('psql', query, libpq(endpoint, database))).ms);
      return ms;
    };
    // Direct and through Warden in turn, five times each, best of each: a neighbour's burst on
    // this shared machine then disturbs both sides alike rather than one.
    let directMs = Number.POSITIVE_INFINITY;
    let wardenMs = Number.POSITIVE_INFINITY;
    for (let i = 0; i < 5; i++) {
      directMs = Math.min(directMs, (await exec('psql', query, libpq(direct, database))).ms);
      wardenMs = Math.min(wardenMs, (await exec('psql', query, libpq(warden, database))).ms);
    }
    figures.large_result_ratio = Number((wardenMs / directMs).toFixed(3));
    log(`1,000,000 rows: direct ${directMs.toFixed(0)} ms, warden ${wardenMs.toFixed(0)} ms`);
    const minted = await mintMaskedRole(cluster, database);
    try {
      const maskedMs = await best(minted.endpoint);
      figures.masked_large_result_direct_ratio = Number((maskedMs / directMs).toFixed(3));
      log(`1,000,000 rows with a minted role through the masking views: ${maskedMs.toFixed(0)} ms`);
    } finally {
      await minted.close();
    }

    // Idle connections go through pgbouncer (transaction mode: idle clients hold no server
    // connection), so only the proxy's own memory is measured, not 1,000 backends.
    const idleBouncerPort = await freePort();
    children.push(startPgbouncer(dir, cluster, database, idleBouncerPort, 'transaction'));
    await waitForPort({ ...pooled, port: idleBouncerPort }, database);
    const idleProxy = await startProxy(
      dir,
      'idle',
      { port: idleBouncerPort, database, user: cluster.user, password: cluster.password },
      proxySettings,
    );
    children.push(idleProxy.child);
    const warm = await openIdle(idleProxy.port, database, 20);
    await new Promise((r) => setTimeout(r, 500));
    const before = rssKb(idleProxy.child.pid!);
    const idle = await openIdle(idleProxy.port, database, IDLE_CONNECTIONS);
    await new Promise((r) => setTimeout(r, 1_000));
    const after = rssKb(idleProxy.child.pid!);
    figures.rss_kb_per_conn = Number(((after - before) / IDLE_CONNECTIONS).toFixed(1));
    log(`RSS: ${before} KB before, ${after} KB with ${IDLE_CONNECTIONS} more idle connections`);
    for (const client of [...warm, ...idle]) client.end();

    const result = {
      tps_direct: figures.tps_direct!,
      tps_pgbouncer: figures.tps_pgbouncer!,
      tps_warden: figures.tps_warden!,
      prepared_tps_direct: figures.prepared_tps_direct!,
      prepared_tps_pgbouncer: figures.prepared_tps_pgbouncer!,
      prepared_tps_warden: figures.prepared_tps_warden!,
      cpu_us_per_tx_pgbouncer: figures.cpu_us_per_tx_pgbouncer!,
      cpu_us_per_tx_warden: figures.cpu_us_per_tx_warden!,
      prepared_cpu_us_per_tx_pgbouncer: figures.prepared_cpu_us_per_tx_pgbouncer!,
      prepared_cpu_us_per_tx_warden: figures.prepared_cpu_us_per_tx_warden!,
      large_result_ratio: figures.large_result_ratio!,
      masked_large_result_direct_ratio: figures.masked_large_result_direct_ratio!,
      rss_kb_per_conn: figures.rss_kb_per_conn!,
      guardrail_us_per_statement_cached: figures.guardrail_us_per_statement_cached!,
      guardrail_us_per_statement_uncached: figures.guardrail_us_per_statement_uncached!,
      blast_radius_ms_p99: figures.blast_radius_ms_p99!,
      blast_radius_ms_p50: figures.blast_radius_ms_p50!,
    };
    console.log(JSON.stringify(result));
    return result;
  } finally {
    for (const child of children) child.kill('SIGTERM');
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await run({ json: process.argv.includes('--json') });
}
