/**
 * Micro-benchmarks of the Postgres proxy's hot paths, in CPU time per operation (user + system
 * time of this process, so a busy machine skews them less than wall time). A measurement to run by
 * hand, not a test and not an `npm run bench` target:
 *   node --import tsx bench/micro/pg-hot-path.ts
 * - guardrails: `check` of pgbench's statements (the same text every time) and of texts that differ
 *   only in literals; `computeSqlShape` alone;
 * - relay: 64 KiB upstream chunks of DataRows shaped like the `big` table of bench/pg-proxy.ts
 *   (int4 id, redacted email, last4 card number, scanned text filler) through `PgRelay`.
 */
import { compileSqlGuardrails, computeSqlShape } from '../../proxy/guardrails/sql/index.ts';
import { compileMasking, createMasker } from '../../proxy/masking/index.ts';
import { buildCatalog } from '../../proxy/pg/catalog.ts';
import type { ByteSink } from '../../proxy/pg/chunk-output.ts';
import { TransactionStatus } from '../../proxy/pg/protocol/message-codes.ts';
import {
  encodeMessages,
  writeCommandComplete,
  writeDataRow,
  writeQuery,
  writeReadyForQuery,
  writeRowDescription,
} from '../../proxy/pg/protocol/serializer.ts';
import { PgRelay } from '../../proxy/pg/relay.ts';

function cpuNanos(since: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(since);
  return (used.user + used.system) * 1e3;
}

function measure(label: string, iterations: number, fn: (i: number) => unknown): void {
  for (let i = 0; i < Math.min(iterations, 50_000); i++) fn(i);
  const start = process.cpuUsage();
  for (let i = 0; i < iterations; i++) fn(i);
  const ns = cpuNanos(start) / iterations;
  console.log(`${label.padEnd(52)} ${ns.toFixed(0).padStart(10)} ns/op`);
}

const PGBENCH_SELECT = 'SELECT abalance FROM pgbench_accounts WHERE aid = 48213;';
const ORM_TEXT = 'SELECT abalance FROM pgbench_accounts WHERE aid = $1';
const guard = compileSqlGuardrails({});
const ctx = { level: 'read', groups: [] as string[], prepared: new Map() };
measure('guardrails.check same text with a literal', 1_000_000, () => guard.check(PGBENCH_SELECT, ctx));
measure('guardrails.check same text ($1, as ORMs / Parse)', 1_000_000, () => guard.check(ORM_TEXT, ctx));
measure('guardrails.check other literal each time', 300_000, (i) =>
  guard.check(`SELECT abalance FROM pgbench_accounts WHERE aid = ${i};`, ctx),
);
measure('computeSqlShape pgbench -S', 1_000_000, () => computeSqlShape(PGBENCH_SELECT));
const ORM =
  'SELECT "User"."id", "User"."email", "User"."createdAt" FROM "public"."User" WHERE ("User"."id" = $1 AND "User"."deletedAt" IS NULL) LIMIT $2 OFFSET $3';
measure('computeSqlShape ORM statement', 500_000, () => computeSqlShape(ORM));

const TABLE = 16_400;
const sink: ByteSink = { write: () => true, cork() {}, uncork() {} };
const relay = new PgRelay({
  guardrails: guard,
  masker: createMasker(
    compileMasking({
      columns: [
        { match: 'big.email', style: 'redact' },
        { match: 'big.card_number', style: 'last4' },
      ],
    }),
  ),
  level: 'read',
  groups: [],
  recordRows: false,
  catalog: buildCatalog(
    ['id', 'email', 'card_number', 'filler'].map((name, i) => [
      String(TABLE),
      'public',
      'big',
      String(i + 1),
      name,
    ]),
    0,
  ),
  toUpstream: sink,
  toClient: sink,
  record: () => {},
});
relay.feedClient(encodeMessages((w) => writeQuery(w, 'select * from big')));
relay.feedUpstream(
  encodeMessages((w) =>
    writeRowDescription(
      w,
      ['id', 'email', 'card_number', 'filler'].map((name, i) => ({
        name,
        tableOid: TABLE,
        columnAttribute: i + 1,
        typeOid: i === 0 ? 23 : 25,
        typeSize: -1,
        typeModifier: -1,
        format: 0,
      })),
    ),
  ),
);
const ROWS_PER_CHUNK = 500;
const chunks = Array.from({ length: 16 }, (_, c) =>
  encodeMessages((w) => {
    for (let r = 0; r < ROWS_PER_CHUNK; r++) {
      const g = c * ROWS_PER_CHUNK + r + 1;
      writeDataRow(w, [String(g), `user${g}@example.com`, String(g).padStart(16, '4'), 'x'.repeat(40)]);
    }
  }),
);
measure(`relay DataRow chunk (${ROWS_PER_CHUNK} rows, ${chunks[0]!.length} B)`, 2_000, (i) =>
  relay.feedUpstream(chunks[i % chunks.length]!),
);
// The measure above is per chunk: print the per-row figure too.
const start = process.cpuUsage();
for (let i = 0; i < 2_000; i++) relay.feedUpstream(chunks[i % chunks.length]!);
console.log(
  `${'relay DataRow per row'.padEnd(52)} ${(cpuNanos(start) / (2_000 * ROWS_PER_CHUNK)).toFixed(0).padStart(10)} ns/op`,
);
relay.feedUpstream(
  encodeMessages((w) => {
    writeCommandComplete(w, 'SELECT 1');
    writeReadyForQuery(w, TransactionStatus.Idle);
  }),
);
