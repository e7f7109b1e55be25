/**
 * The large-result figure of bench/pg-proxy.ts alone, plus the proxy process's CPU time per row
 * (user + system from /proc, less sensitive to a busy machine than wall time). A measurement to
 * run by hand, not a test:
 *   node --import tsx bench/micro/pg-large-result.ts [--rounds 3] [--cpu-prof] [--proxy-arg --trace-gc]
 * `--cpu-prof` profiles the proxy process and leaves the profile in the printed directory;
 * `--proxy-arg` passes one more option to the proxy's node.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDatabase, execSql, startPgCluster } from '../../cli/demo/local-postgres.ts';
import {
  BENCH_PROXY_SETTINGS,
  type Endpoint,
  exec,
  libpq,
  PROXY_PASSWORD,
  PROXY_USER,
  startProxy,
} from '../pg-proxy.ts';

const ROWS = 1_000_000;
const argRounds = process.argv.indexOf('--rounds');
const rounds = argRounds > 0 ? Number(process.argv[argRounds + 1]) : 3;
const profile = process.argv.includes('--cpu-prof');
const proxyArgs = process.argv.flatMap((arg, i) => (arg === '--proxy-arg' ? [process.argv[i + 1]!] : []));

/** User + system CPU time of a process in ms, from /proc (clock ticks of 10 ms). */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

const dir = mkdtempSync(join(tmpdir(), 'warden-large-'));
const cluster = await startPgCluster({ max_connections: 20, shared_buffers: "'256MB'" });
try {
  const database = await createDatabase(cluster, 'bench');
  await execSql(
    cluster,
    database,
    `CREATE TABLE big AS SELECT g AS id, 'user' || g || '@example.com' AS email, lpad(g::text, 16, '4') AS card_number, repeat('x', 40) AS filler FROM generate_series(1, ${ROWS}) g; ANALYZE big`,
  );
  const settings = BENCH_PROXY_SETTINGS;
  const upstream = { port: cluster.port, database, user: cluster.user, password: cluster.password };
  const proxy = await startProxy(dir, 'proxy', upstream, settings, [
    ...(profile ? ['--cpu-prof', `--cpu-prof-dir=${dir}`] : []),
    ...proxyArgs,
  ]);
  const direct: Endpoint = { port: cluster.port, user: cluster.user, password: cluster.password };
  const warden: Endpoint = { port: proxy.port, user: PROXY_USER, password: PROXY_PASSWORD };
  const query = ['-X', '-At', '-o', '/dev/null', '-c', 'select * from big'];
  let directMs = Number.POSITIVE_INFINITY;
  let wardenMs = Number.POSITIVE_INFINITY;
  let proxyCpu = Number.POSITIVE_INFINITY;
  for (let i = 0; i < rounds; i++) {
    directMs = Math.min(directMs, (await exec('psql', query, libpq(direct, database))).ms);
    const before = cpuMs(proxy.child.pid!);
    wardenMs = Math.min(wardenMs, (await exec('psql', query, libpq(warden, database))).ms);
    proxyCpu = Math.min(proxyCpu, cpuMs(proxy.child.pid!) - before);
  }
  console.log(`direct ${directMs.toFixed(0)} ms, warden ${wardenMs.toFixed(0)} ms`);
  console.log(`large_result_ratio ${(wardenMs / directMs).toFixed(3)}`);
  console.log(`proxy CPU ${proxyCpu} ms: ${((proxyCpu * 1e6) / ROWS).toFixed(0)} ns per row`);
  proxy.child.kill('SIGTERM');
  await new Promise((resolve) => proxy.child.once('exit', resolve));
  if (profile) console.log(`profile in ${dir}`);
} finally {
  await cluster.stop();
  if (!profile) rmSync(dir, { recursive: true, force: true });
}
