/**
 * Slack wants an acknowledgement within three seconds. This sends 50 concurrent signed `/access`
 * commands to the Slack bot over HTTP (broker on a real PostgreSQL, Web API stand-in) and measures
 * the time to each HTTP acknowledgement. Target: p99 ≤ 500 ms.
 */
import { Worker } from 'node:worker_threads';
import { waitFor } from '../test/helpers/broker-fixture.ts';
import { startPgCluster } from '../test/helpers/pg-cluster.ts';
import { SIGNING_SECRET, startSlackHarness } from '../test/helpers/slack-harness.ts';

const CONCURRENT = 50;

/**
 * The client runs in a worker thread, as Slack runs elsewhere: its timing must not wait on the
 * app's own event loop. Plain JavaScript, so the worker needs no TypeScript loader.
 */
const CLIENT = `
const { workerData, parentPort } = require('node:worker_threads');
const { request } = require('node:http');
const { createHmac } = require('node:crypto');
const { url, secret, bodies } = workerData;
function send(body) {
  const ts = String(Math.floor(Date.now() / 1000));
  const sig = 'v0=' + createHmac('sha256', secret).update('v0:' + ts + ':' + body).digest('hex');
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', agent: false, headers: {
      'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body),
      'x-slack-request-timestamp': ts, 'x-slack-signature': sig } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode, ms: performance.now() - started }));
    });
    req.on('error', reject);
    req.end(body);
  });
}
Promise.all(bodies.map(send)).then((r) => parentPort.postMessage(r), (e) => parentPort.postMessage({ error: String(e) }));
`;

function sendFromWorker(url: string, bodies: string[]): Promise<{ status: number; ms: number }[]> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(CLIENT, { eval: true, workerData: { url, secret: SIGNING_SECRET, bodies } });
    worker.once('message', (result) => {
      void worker.terminate();
      if (Array.isArray(result)) resolve(result);
      else reject(new Error(result.error));
    });
    worker.once('error', reject);
  });
}

function percentile(sorted: readonly number[], p: number): number {
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return Math.round(sorted[index]! * 10) / 10;
}

/** Runs the benchmark; returns `{ack_p50_ms, ack_p99_ms}` (and prints them unless `json`). */
export async function run(args: { json: boolean }): Promise<Record<string, number>> {
  const cluster = await startPgCluster();
  try {
    const h = await startSlackHarness(cluster);
    try {
      // Warm up: Bolt's first request verifies the token.
      await h.driver.command('UALICE', 'help', 'warm-up');
      await waitFor(() => h.standin.responsesFor('warm-up')[0], 10_000, 'warm-up reply');
      const bodies = Array.from({ length: CONCURRENT }, (_, i) =>
        h.driver.commandBody('UALICE', `app-db 30m bench request ${i}`, `bench-${i}`),
      );
      const sent = await sendFromWorker(h.driver.url, bodies);
      const failed = sent.filter((s) => s.status !== 200).length;
      if (failed > 0) throw new Error(`${failed} of ${CONCURRENT} commands were not acknowledged`);
      // The slow work happens after the ack; let it finish so the broker is not torn down mid-way.
      await waitFor(
        () => h.standin.responses.filter((r) => r.key.startsWith('bench-')).length === CONCURRENT,
        60_000,
        'replies',
      );
      await h.bot.core.idle();
      const ms = sent.map((s) => s.ms).sort((a, b) => a - b);
      const result = { ack_p50_ms: percentile(ms, 50), ack_p99_ms: percentile(ms, 99) };
      if (!args.json) {
        console.log(`slack-ack: ${CONCURRENT} concurrent signed /access commands`);
        console.log(`  ack p50 ${result.ack_p50_ms} ms, p99 ${result.ack_p99_ms} ms (target ≤ 500 ms)`);
      }
      return result;
    } finally {
      await h.close();
    }
  } finally {
    await cluster.stop();
  }
}
