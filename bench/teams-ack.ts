/**
 * Teams shows a spinner on a card button until its `Action.Execute` invoke is answered (with the
 * card as it now is). This posts 50 pending requests, then sends 50 concurrent signed Approve
 * invokes (one per request, by an eligible approver) to the Teams bot (the real Teams SDK app on
 * its HTTP endpoint, broker on a real PostgreSQL, Bot Connector stand-in) and measures the time to
 * each invoke response: the approval, the credential minted on the target, and the new card.
 * Target: p99 ≤ 500 ms.
 */
import { Worker } from 'node:worker_threads';
import { waitFor } from '../test/helpers/broker-fixture.ts';
import { startPgCluster } from '../test/helpers/pg-cluster.ts';
import { REQUESTS_CHANNEL, startTeamsHarness } from '../test/helpers/teams-harness.ts';

const CONCURRENT = 50;

/** The client runs in a worker thread, as Teams runs elsewhere. Plain JavaScript. */
const CLIENT = `
const { workerData, parentPort } = require('node:worker_threads');
const { request } = require('node:http');
const { url, sends } = workerData;
function send({ token, body }) {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', agent: false, headers: {
      'content-type': 'application/json', 'content-length': Buffer.byteLength(body),
      authorization: 'Bearer ' + token } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, ms: performance.now() - started,
        card: Buffer.concat(chunks).toString().includes('application/vnd.microsoft.card.adaptive') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}
Promise.all(sends.map(send)).then((r) => parentPort.postMessage(r), (e) => parentPort.postMessage({ error: String(e) }));
`;

type Sent = { status: number; ms: number; card: boolean };

function sendFromWorker(url: string, sends: { token: string; body: string }[]): Promise<Sent[]> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(CLIENT, { eval: true, workerData: { url, sends } });
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

/** Runs the benchmark; returns `{invoke_p50_ms, invoke_p99_ms}` (and prints them unless `json`). */
export async function run(args: { json: boolean }): Promise<Record<string, number>> {
  const cluster = await startPgCluster();
  try {
    const h = await startTeamsHarness(cluster);
    try {
      const ids: string[] = [];
      for (let i = 0; i < CONCURRENT; i++) {
        const request = await h.fx.app.broker.request({
          requester: i % 2 ? 'alice' : 'bob',
          target: 'app-db',
          level: 'read',
          duration: '30m',
          reason: `bench request ${i}`,
          source: 'cli',
        });
        ids.push(request.id);
      }
      await waitFor(
        () =>
          ids.every((id) => h.standin.in(REQUESTS_CHANNEL).some((a) => JSON.stringify(a.body).includes(id))),
        60_000,
        'the request cards',
      );
      await h.bot.core.idle();
      // Warm up the path (keys fetched, SDK routes compiled) on a refresh, which changes nothing.
      await h.driver.send(
        h.driver.invoke('maria', { channel: REQUESTS_CHANNEL }, 'refresh', {
          warden: 1,
          kind: 'request',
          id: ids[0],
        }),
      );
      const invokes = (verb: string) =>
        Promise.all(
          ids.map(async (id) => ({
            token: await h.standin.sign(),
            body: JSON.stringify(
              h.driver.invoke('maria', { channel: REQUESTS_CHANNEL }, verb, {
                warden: 1,
                kind: 'request',
                id,
              }),
            ),
          })),
        );
      // Reference: 50 concurrent refreshes (authentication, the SDK, the card; no decision).
      const refreshed = await sendFromWorker(h.driver.url, await invokes('refresh'));
      const sent = await sendFromWorker(h.driver.url, await invokes('approve'));
      const failed = sent.filter((s) => s.status !== 200 || !s.card).length;
      if (failed > 0) throw new Error(`${failed} of ${CONCURRENT} invokes were not answered with a card`);
      const active = (await h.fx.app.broker.list({ states: ['active'] })).length;
      await waitFor(
        async () => (await h.fx.app.broker.list({ states: ['active'] })).length === CONCURRENT,
        60_000,
        'every grant active',
      );
      await h.bot.core.idle();
      const ms = sent.map((s) => s.ms).sort((a, b) => a - b);
      const ref = refreshed.map((s) => s.ms).sort((a, b) => a - b);
      const result = {
        invoke_p50_ms: percentile(ms, 50),
        invoke_p99_ms: percentile(ms, 99),
        refresh_p50_ms: percentile(ref, 50),
        refresh_p99_ms: percentile(ref, 99),
        active_at_answer: active,
      };
      if (!args.json) {
        console.log(`teams-ack: ${CONCURRENT} concurrent signed Action.Execute approve invokes`);
        console.log(
          `  invoke response p50 ${result.invoke_p50_ms} ms, p99 ${result.invoke_p99_ms} ms (target ≤ 500 ms)`,
        );
      }
      return result;
    } finally {
      await h.close();
    }
  } finally {
    await cluster.stop();
  }
}
