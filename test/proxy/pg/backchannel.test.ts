/**
 * The backchannel's pure parts: the sandbox Warden's own statements run in (always rolled back,
 * nothing in a failed transaction), a job consuming the server's replies (result sets, an error
 * that skips the rest of its batch, a skip started by the client's batch), and the write
 * estimates read from an EXPLAIN (FORMAT JSON, VERBOSE) plan.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  InternalJob,
  type JobOutcome,
  quoteLiteral,
  readWriteEstimates,
  sandboxSteps,
} from '../../../proxy/pg/backchannel.ts';
import { TransactionStatus } from '../../../proxy/pg/protocol/message-codes.ts';
import {
  encodeMessages,
  type MessageWriter,
  writeBindComplete,
  writeCommandComplete,
  writeDataRow,
  writeErrorResponse,
  writeParseComplete,
  writeReadyForQuery,
  writeRowDescription,
} from '../../../proxy/pg/protocol/serializer.ts';

/** Server messages as (code, raw) pairs, as the relay hands them to a job. */
function frames(build: (w: MessageWriter) => void): [number, Buffer][] {
  const bytes = encodeMessages(build);
  const out: [number, Buffer][] = [];
  for (let at = 0; at < bytes.length; ) {
    const length = bytes.readInt32BE(at + 1);
    out.push([bytes[at]!, bytes.subarray(at, at + 1 + length)]);
    at += 1 + length;
  }
  return out;
}

function run(job: InternalJob, replies: [number, Buffer][]): boolean {
  let done = false;
  for (const [code, raw] of replies) done = job.feed(code, raw);
  return done;
}

/** CloseComplete ('3'), which the serializer has no writer for (the proxy never sends one itself). */
const CLOSE_COMPLETE: [number, Buffer] = [0x33, Buffer.from([0x33, 0, 0, 0, 4])];

describe('sandboxSteps', () => {
  it('outside a block: a read-only transaction of its own, always rolled back', () => {
    const sandbox = sandboxSteps([{ query: 'EXPLAIN DELETE FROM t' }], TransactionStatus.Idle, 'sp')!;
    assert.deepEqual(sandbox.steps, [
      { query: 'BEGIN TRANSACTION READ ONLY' },
      { query: 'EXPLAIN DELETE FROM t' },
      { query: 'ROLLBACK' },
    ]);
    assert.deepEqual(sandbox.at, [1]);
  });

  // Regression: simple statements ran as `SET TRANSACTION READ ONLY; ...` in an implicit
  // transaction that committed when they succeeded.
  it('never leaves a statement in a transaction that commits', () => {
    const cases = [
      [TransactionStatus.Idle, [{ query: 'a' }, { query: 'b' }]],
      [TransactionStatus.Idle, [{ query: 'a' }, { statement: 'b' }]],
      [TransactionStatus.InTransaction, [{ query: 'a' }]],
    ] as const;
    for (const [status, statements] of cases) {
      const { steps } = sandboxSteps(statements, status, 'sp')!;
      const last = steps.at(-1)!;
      assert.ok('query' in last && /^ROLLBACK/.test(last.query), JSON.stringify(steps));
      assert.ok(!steps.some((s) => 'query' in s && /SET TRANSACTION|COMMIT/.test(s.query)));
    }
  });

  it('inside a block: a read-only savepoint, rolled back and released', () => {
    const sandbox = sandboxSteps([{ statement: 'EXPLAIN x' }], TransactionStatus.InTransaction, 'warden_t')!;
    assert.deepEqual(sandbox.steps, [
      { query: 'SAVEPOINT warden_t; SET LOCAL transaction_read_only = on' },
      { statement: 'EXPLAIN x' },
      { sync: true },
      { query: 'ROLLBACK TO SAVEPOINT warden_t; RELEASE SAVEPOINT warden_t' },
    ]);
    assert.deepEqual(sandbox.at, [1]);
  });

  it('in a failed transaction nothing runs', () => {
    assert.equal(sandboxSteps([{ query: 'x' }], TransactionStatus.Failed, 'sp'), undefined);
  });
});

describe('InternalJob', () => {
  it('keeps each statement result set and the last transaction status', () => {
    let outcome: JobOutcome | undefined;
    const job = new InternalJob([{ query: 'SHOW search_path' }], 'warden_t', false, (o) => {
      outcome = o;
    });
    const done = run(
      job,
      frames((w) => {
        writeRowDescription(w, []);
        writeDataRow(w, ['"$user", public']);
        writeCommandComplete(w, 'SHOW');
        writeReadyForQuery(w, TransactionStatus.Idle);
      }),
    );
    assert.equal(done, true);
    assert.deepEqual(outcome!.steps[0]!.sets, [[['"$user", public']]]);
    assert.equal(outcome!.status, TransactionStatus.Idle);
  });

  it('names its statements with its prefix and closes them first', () => {
    const job = new InternalJob([{ statement: 'SELECT 1' }], 'warden_abc', true, () => {});
    const text = job.bytes.toString('latin1');
    assert.ok(text.includes('warden_abc_s0'));
    assert.equal(job.bytes[0], 0x43, 'a Close comes first');
    assert.equal(job.bytes.at(-5), 0x48, 'ends with a Flush inside a client batch');
  });

  it('an error in an extended step skips the rest up to its Sync', () => {
    let outcome: JobOutcome | undefined;
    const job = new InternalJob(
      [{ statement: 'EXPLAIN bad' }, { statement: 'SELECT sizes' }, { sync: true }],
      'warden_t',
      false,
      (o) => {
        outcome = o;
      },
    );
    const done = run(job, [
      CLOSE_COMPLETE,
      ...frames((w) => {
        writeErrorResponse(w, { severity: 'ERROR', code: '42P01', message: 'relation does not exist' });
        writeReadyForQuery(w, TransactionStatus.Idle);
      }),
    ]);
    assert.equal(done, true);
    assert.deepEqual(outcome!.steps[0]!.error, { code: '42P01', message: 'relation does not exist' });
    assert.equal(outcome!.steps[1]!.skipped, true);
  });

  it('skipped by the server for an earlier client error: over at once without a Sync of its own', () => {
    let outcome: JobOutcome | undefined;
    const job = new InternalJob([{ statement: 'EXPLAIN x' }], 'warden_t', true, (o) => {
      outcome = o;
    });
    assert.equal(job.skippedByServer(), false);
    assert.equal(job.done, true);
    assert.equal(outcome!.steps[0]!.skipped, true);
  });

  it('an extended step that ran: parse, bind, rows, close', () => {
    let outcome: JobOutcome | undefined;
    const job = new InternalJob([{ statement: 'EXPLAIN y' }], 'warden_t', true, (o) => {
      outcome = o;
    });
    const done = run(job, [
      CLOSE_COMPLETE,
      ...frames((w) => {
        writeParseComplete(w);
        writeBindComplete(w);
        writeDataRow(w, ['[{"Plan": {}}]']);
        writeCommandComplete(w, 'EXPLAIN');
      }),
      CLOSE_COMPLETE,
    ]);
    assert.equal(done, true);
    assert.deepEqual(outcome!.steps[0]!.sets, [[['[{"Plan": {}}]']]]);
  });
});

describe('readWriteEstimates', () => {
  const plan = (root: unknown) => JSON.stringify([{ Plan: root }]);

  it('one estimate per ModifyTable node, rows from its outer input, table rows from the sizes', () => {
    const json = plan({
      'Node Type': 'ModifyTable',
      'Relation Name': 'events',
      Schema: 'public',
      Plans: [{ 'Node Type': 'Seq Scan', 'Parent Relationship': 'Outer', 'Plan Rows': 4999 }],
    });
    assert.deepEqual(readWriteEstimates(json, [['public', 'events', '5000']]), [
      { relation: { schema: 'public', name: 'events' }, rows: 4999, tableRows: 5000 },
    ]);
  });

  it('finds writes nested in CTEs and names the temporary schema pg_temp', () => {
    const json = plan({
      'Node Type': 'CTE Scan',
      Plans: [
        {
          'Node Type': 'ModifyTable',
          'Relation Name': 'scratch',
          Schema: 'pg_temp_3',
          'Parent Relationship': 'InitPlan',
          Plans: [{ 'Node Type': 'Seq Scan', 'Parent Relationship': 'Outer', 'Plan Rows': 10 }],
        },
      ],
    });
    assert.deepEqual(readWriteEstimates(json, [['pg_temp_3', 'scratch', '40']]), [
      { relation: { schema: 'pg_temp', name: 'scratch' }, rows: 10, tableRows: 40 },
    ]);
  });

  it('a plan it cannot read is no estimate (the rule then applies)', () => {
    for (const bad of [undefined, null, '', 'not json', '{}', '[{"NoPlan": 1}]']) {
      assert.equal(readWriteEstimates(bad, []), undefined, String(bad));
    }
  });

  it('an unknown or negative table size is left out', () => {
    const json = plan({
      'Node Type': 'ModifyTable',
      'Relation Name': 't',
      Schema: 'public',
      Plans: [{ 'Parent Relationship': 'Outer', 'Plan Rows': 3 }],
    });
    assert.deepEqual(readWriteEstimates(json, [['public', 't', '-1']]), [
      { relation: { schema: 'public', name: 't' }, rows: 3 },
    ]);
  });
});

describe('quoteLiteral', () => {
  it('reads the same whatever standard_conforming_strings says', () => {
    assert.equal(quoteLiteral("it's a \\ test"), "E'it\\'s a \\\\ test'");
  });
});
