/**
 * Masking throughput, printed as values per second of CPU time (the process's user + system time,
 * so a busy machine skews the figures less than wall time would). A measurement to run by hand,
 * not a test:
 *   node --import tsx test/proxy/masking/bench.ts
 */
import { compileColumnRule } from '../../../proxy/masking/columns.ts';
import { compileMasking } from '../../../proxy/masking/config.ts';
import { createMasker } from '../../../proxy/masking/masker.ts';

const masker = createMasker(compileMasking({ detectors: { email: 'hash' } }, 'bench-key-0123456789abcdef'));
const hashRule = compileColumnRule('customers.email', 'hash', 'bench');
const last4Rule = compileColumnRule('*.card_number', 'last4', 'bench');

const SAMPLES: [string, string][] = [
  ['clean text', 'Invoice paid by customer, thanks'],
  ['short number', '4411'],
  ['timestamp', '2024-01-15 12:34:56.789+00'],
  ['uuid', '550e8400-e29b-41d4-a716-446655440000'],
  ['decimal', '-98765.4321'],
  ['email', 'alice.smith@example.com'],
  ['card', '4242 4242 4242 4242'],
];

function cpuSeconds(since: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(since);
  return (used.user + used.system) / 1e6;
}

function measure(label: string, iterations: number, fn: (i: number) => unknown): void {
  for (let i = 0; i < Math.min(iterations, 50_000); i++) fn(i);
  const start = process.cpuUsage();
  for (let i = 0; i < iterations; i++) fn(i);
  const seconds = cpuSeconds(start);
  const perSecond = Math.round(iterations / seconds);
  console.log(`${label.padEnd(44)} ${perSecond.toLocaleString('en-US').padStart(14)} values/s`);
}

const N = 1_000_000;
for (const [name, value] of SAMPLES) {
  const buffer = Buffer.from(value);
  measure(`maskValue  ${name}`, N, () => masker.maskValue(value));
  measure(`maskBuffer ${name}`, N, () => masker.maskBuffer(buffer));
}
measure('maskBuffer column hash (email)', N, () =>
  masker.maskBuffer(Buffer.from('alice.smith@example.com'), hashRule),
);
measure('maskBuffer column last4 (card)', N, () =>
  masker.maskBuffer(Buffer.from('4242424242424242'), last4Rule),
);

// A 1,000,000-row result of five columns, two of them under column rules; every other field goes
// through the detectors' fast path, as the Postgres proxy would do for each DataRow.
const rows = Array.from({ length: 1000 }, (_, i) => [
  Buffer.from(String(100000 + i)),
  Buffer.from(`Customer ${i} Ltd`),
  Buffer.from(`user${i}@example.com`),
  Buffer.from(`4242 4242 4242 ${String(1000 + i).slice(-4)}`),
  Buffer.from('2024-01-15 12:34:56+00'),
]);
const rules = [null, null, hashRule, last4Rule, null];
const start = process.cpuUsage();
let bytes = 0;
for (let r = 0; r < 1_000_000; r++) {
  const row = rows[r % rows.length]!;
  for (let c = 0; c < row.length; c++) bytes += masker.maskBuffer(row[c]!, rules[c]).buffer.length;
}
const seconds = cpuSeconds(start);
console.log(
  `1,000,000 rows x 5 columns (2 masked): ${seconds.toFixed(2)} s, ${Math.round(1_000_000 / seconds).toLocaleString('en-US')} rows/s, ${(
    (seconds * 1e9) / 1_000_000
  ).toFixed(0)} ns/row (${bytes} bytes out)`,
);
