/**
 * Issue 15, item 5: masking follows changes to the tables without a window that shows raw
 * values. Columns and tables added after a look are denied (every relation in scope has column
 * privileges, never table-wide SELECT); a rename that gives a granted column a masked name, or a
 * table a masked table's name, is noticed by the provider's schema watch within seconds, well
 * before the minute upkeep; default privileges that would make new tables readable are refused
 * at start-up. Real PostgreSQL 15 and psql, with the minted credential directly and through the
 * proxy.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { execSql, type PgCluster, startPgCluster } from '../../helpers/pg-cluster.ts';
import {
  type ProxyFixture,
  type ProxyLogin,
  startMaskedProxyFixture,
} from '../../helpers/pg-proxy-fixture.ts';
import { type PsqlLogin, runPsql } from '../../helpers/psql.ts';

const RAW = ['REFXY0778812', '4111111111111111', 'eve@example.com', 'DE89370400440532013000'];

/** Runs `sql`, as psql prints it (rows, then errors), on both routes. */
async function both(logins: PsqlLogin[], sql: string): Promise<string[]> {
  return Promise.all(
    logins.map(async (login) => {
      const out = await runPsql(login, sql);
      return `${out.stdout}\n${out.stderr}`;
    }),
  );
}

function assertNoRaw(outputs: string[], what: string): void {
  for (const output of outputs)
    for (const raw of RAW) assert.ok(!output.includes(raw), `${what}: ${raw} in ${JSON.stringify(output)}`);
}

/**
 * Polls until `check` holds on every route, or fails after `ms` (a deadline, not a speed test).
 * No output may hold a raw value, except while a rename is not seen yet (`renamed`: the values
 * were readable under their old name until then, docs/masking.md).
 */
async function eventually(
  logins: PsqlLogin[],
  sql: string,
  check: RegExp,
  { ms = 20_000, renamed = false } = {},
): Promise<void> {
  const until = Date.now() + ms;
  let outputs: string[] = [];
  while (Date.now() < until) {
    outputs = await both(logins, sql);
    if (!renamed) assertNoRaw(outputs, sql);
    if (outputs.every((o) => check.test(o))) return assertNoRaw(outputs, sql);
    await sleep(200);
  }
  assert.fail(`${sql}: never ${check} within ${ms} ms: ${JSON.stringify(outputs)}`);
}

describe('masking follows schema changes (issue 15, item 5)', () => {
  let cluster: PgCluster;
  let fx: ProxyFixture;
  let logins: PsqlLogin[];
  const asOwner = (sql: string) => execSql(cluster, fx.database, sql);

  before(async () => {
    cluster = await startPgCluster();
    fx = await startMaskedProxyFixture(cluster, {
      'customers.email': 'hash',
      'orders.email': 'hash',
      '*.card_number': 'last4',
      '*.iban': 'redact',
    });
    await asOwner(
      `CREATE TABLE ledger (id int PRIMARY KEY, ref text);
       INSERT INTO ledger VALUES (1, 'REFXY0778812');
       ALTER TABLE ledger OWNER TO app_owner;
       CREATE TABLE purchases (id int PRIMARY KEY, email text);
       INSERT INTO purchases VALUES (1, 'eve@example.com');
       ALTER TABLE purchases OWNER TO app_owner;`,
    );
    const login: ProxyLogin = await fx.grant('read');
    const grant = await fx.broker.app.proxyPorts.grants.lookup('app-db', login.user);
    assert.ok(grant, 'the grant is live');
    const up = grant.upstream;
    logins = [
      login,
      { host: up.host, port: up.port, database: up.database, user: up.user, password: up.password.reveal() },
    ];
  });
  after(async () => {
    await fx?.close();
    await cluster?.stop();
  });

  it('reads unmasked tables as the owner does, column by column', async () => {
    for (const output of await both(logins, 'SELECT * FROM public.invoices ORDER BY id')) {
      assert.match(output, /^1\|acme\|100\n2\|globex\|250\n/);
    }
  });

  it('denies a rule-matching column added to an unmasked table at once, and masks it after the next look', async () => {
    await asOwner(
      `ALTER TABLE invoices ADD COLUMN card_number text DEFAULT '4111111111111111';
       ALTER TABLE invoices ADD COLUMN iban text DEFAULT 'DE89370400440532013000';`,
    );
    for (const output of await both(logins, 'SELECT card_number FROM public.invoices'))
      assert.match(output, /permission denied/);
    assertNoRaw(await both(logins, 'SELECT * FROM invoices ORDER BY id'), 'whole row');
    await eventually(
      logins,
      'SELECT card_number, iban FROM invoices ORDER BY id',
      /^\*{12}1111\|\[REDACTED\]\n/,
    );
    for (const output of await both(logins, 'SELECT card_number FROM public.invoices'))
      assert.match(output, /permission denied/);
  });

  it('denies a table created since the last look, then grants it masked', async () => {
    await asOwner(
      `CREATE TABLE payments (id int PRIMARY KEY, card_number text, memo text);
       INSERT INTO payments VALUES (1, '4111111111111111', 'rent');
       ALTER TABLE payments OWNER TO app_owner;`,
    );
    for (const output of await both(logins, 'SELECT * FROM public.payments'))
      assert.match(output, /permission denied|does not exist/);
    await eventually(logins, 'SELECT memo, card_number FROM payments', /^rent\|\*{12}1111\n/);
  });

  it('revokes a granted column renamed to a masked name within seconds, not at the minute upkeep', async () => {
    for (const output of await both(logins, 'SELECT ref FROM ledger')) assert.match(output, /^REFXY0778812/);
    await asOwner('ALTER TABLE ledger RENAME COLUMN ref TO card_number');
    await eventually(logins, 'SELECT card_number FROM public.ledger', /permission denied/, { renamed: true });
    await eventually(logins, 'SELECT card_number FROM ledger', /^\*{8}8812\n/);
    assertNoRaw(await both(logins, 'SELECT * FROM ledger; SELECT l::text FROM ledger l'), 'after the look');
  });

  it("follows a table renamed to a masked table's name", async () => {
    await asOwner('ALTER TABLE purchases RENAME TO orders');
    await eventually(logins, 'SELECT email FROM public.orders', /permission denied/, { renamed: true });
    await eventually(logins, 'SELECT email FROM orders', /^tok_[0-9a-f]{16}\n/);
  });

  it('refuses default privileges that would make new tables readable before Warden looks', async () => {
    const provider = fx.broker.app.providers.get('app-db')!;
    await asOwner(
      'ALTER DEFAULT PRIVILEGES FOR ROLE app_owner IN SCHEMA public GRANT SELECT ON TABLES TO PUBLIC',
    );
    try {
      await assert.rejects(provider.assertMaskingEnforced!(), (error: Error) => {
        assert.match(
          error.message,
          /level read, rule [^:]*customers\.email[^:]*: default privileges of "?app_owner"? in schema public give PUBLIC SELECT on new tables/,
        );
        assert.match(error.message, /targets\.app-db\.levels\.read\.allow_unenforced_masking/);
        return true;
      });
    } finally {
      await asOwner(
        'ALTER DEFAULT PRIVILEGES FOR ROLE app_owner IN SCHEMA public REVOKE SELECT ON TABLES FROM PUBLIC',
      );
    }
    await assert.rejects(provider.assertMaskingEnforced!(), (error: Error) => {
      assert.doesNotMatch(error.message, /default privileges/);
      return true;
    });
  });
});
