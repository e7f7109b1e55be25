/**
 * Issue 16's corpus through the running proxy with the real psql client (phase B): every
 * dangerous statement is refused, or held for review, naming its rule; every ordinary one passes.
 * Nothing is played by stand-ins here: the relay reads the catalog, the session's search_path and
 * temporary relations and the bodies of called functions from the server, and the blast-radius
 * estimates come from EXPLAIN on the session's own connection. The target's admin is the README's
 * CREATEROLE role (see broker-fixture.ts); the corpus's tables belong to the level's owner role.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import type { ReviewSubmission, StatementReviewer } from '../../../broker/ports/proxy.ts';
import { execSql, type PgCluster, startPgCluster } from '../../helpers/pg-cluster.ts';
import { type ProxyFixture, type ProxyLogin, startProxyFixture } from '../../helpers/pg-proxy-fixture.ts';
import {
  CORPUS_GUARDRAILS,
  CORPUS_LEVEL,
  CORPUS_SCHEMA,
  DANGEROUS,
  ORDINARY,
} from '../guardrails/sql/corpus.ts';

interface PsqlRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs psql once: each of `commands` as its own `-c` (one session), stopping at the first error. */
function psql(fx: ProxyFixture, login: ProxyLogin, commands: readonly string[]): Promise<PsqlRun> {
  const args = ['-X', '-At', '-v', 'ON_ERROR_STOP=1', ...commands.flatMap((c) => ['-c', c])];
  return new Promise((resolve) => {
    execFile('psql', args, { env: fx.libpqEnv(login), timeout: 30_000 }, (error, stdout, stderr) =>
      resolve({
        code: error ? (typeof error.code === 'number' ? error.code : 1) : 0,
        stdout: stdout.trim(),
        stderr: stderr.trim(),
      }),
    );
  });
}

/** Sets up the corpus's schema as the owner level's role would have it (tables it owns). */
async function createCorpusSchema(cluster: PgCluster, database: string): Promise<void> {
  await execSql(
    cluster,
    database,
    `DROP TABLE customers, invoices CASCADE;
     GRANT CREATE ON DATABASE "${database}" TO app_owner;
     SET ROLE app_owner;
     ${CORPUS_SCHEMA}
     RESET ROLE;`,
  );
}

describe('issue 16 corpus through the proxy with real psql', () => {
  let cluster: PgCluster;
  let fx: ProxyFixture;
  let login: ProxyLogin;
  const reviews: ReviewSubmission[] = [];
  // A reviewer that denies: a held statement then fails with its rule and never runs.
  const reviewer: StatementReviewer = {
    async review(submission) {
      reviews.push(submission);
      return { decision: 'denied', reviewId: `r${reviews.length}`, by: 'corpus-reviewer', reason: 'corpus' };
    },
  };

  before(async () => {
    cluster = await startPgCluster();
    fx = await startProxyFixture(cluster, { guardrails: CORPUS_GUARDRAILS }, { reviewer });
    await createCorpusSchema(cluster, fx.database);
    login = await fx.grant(CORPUS_LEVEL);
  });
  after(async () => {
    await fx?.close();
    await cluster?.stop();
  });

  it('has at least 40 dangerous and 25 ordinary statements', () => {
    assert.ok(DANGEROUS.length >= 40, `${DANGEROUS.length} dangerous`);
    assert.ok(ORDINARY.length >= 25, `${ORDINARY.length} ordinary`);
  });

  for (const [index, c] of DANGEROUS.entries()) {
    it(`${c.class} #${index}: ${JSON.stringify(c.sql).slice(0, 110)} → ${c.action} ${c.rule}`, async () => {
      const held = reviews.length;
      const run = await psql(fx, login, [...(c.before ?? []), c.sql]);
      assert.notEqual(run.code, 0, `it ran: ${run.stdout}`);
      const rule = c.rule.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      assert.match(run.stderr, new RegExp(`ERROR: {2}Warden blocked this statement \\(rule ${rule}\\)`));
      if (c.action === 'review') {
        assert.equal(reviews.length, held + 1, 'it was held for review');
        assert.equal(reviews.at(-1)!.rule, c.rule);
        assert.match(run.stderr, /denied by corpus-reviewer/);
      } else {
        assert.equal(reviews.length, held, 'a refused statement is not sent for review');
      }
    });
  }

  for (const [index, c] of ORDINARY.entries()) {
    it(`ordinary #${index}: ${JSON.stringify(c.sql).slice(0, 110)} passes`, async () => {
      const held = reviews.length;
      const run = await psql(fx, login, [...(c.before ?? []), c.sql]);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(reviews.length, held, 'an ordinary statement is not held');
    });
  }

  it('nothing a refused or held statement named ran', async () => {
    const run = await psql(fx, login, [
      "SELECT (SELECT count(*) FROM events) || ',' || (SELECT count(*) FROM pg_proc WHERE proname = 'f_sd')",
    ]);
    assert.equal(run.code, 0, run.stderr);
    // 5,000 events less the one ordinary targeted delete; no SECURITY DEFINER function was created.
    assert.equal(run.stdout, '4999,0');
  });

  it('the recording shows each refused statement with its rule', async () => {
    const sessions = await fx.broker.store.listSessions({ grantId: login.grantId });
    const events = (await Promise.all(sessions.map((s) => fx.broker.store.listSessionEvents(s.id)))).flat();
    const rules = new Set(
      events.filter((e) => e.kind === 'blocked').map((e) => (e.data.verdict as { rule?: string }).rule),
    );
    for (const c of DANGEROUS) assert.ok(rules.has(c.rule), `no blocked event for rule ${c.rule}`);
  });
});
