/**
 * COPY and LOCK of tables under Warden's column privileges (issue 15): what is rewritten, and
 * what is left for the database to refuse.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CopyDescription, StatementReport } from '../../../proxy/guardrails/sql/index.ts';
import type { Catalog } from '../../../proxy/pg/catalog.ts';
import { rewriteForMaskingViews } from '../../../proxy/pg/masking-view-rewrite.ts';

const catalog: Catalog = {
  tables: new Map([
    [1, { schema: 'public', table: 'customers' }],
    [2, { schema: 'warden_mask', table: 'customers' }],
    [3, { schema: 'warden_mask', table: 'hmac_key' }],
    [4, { schema: 'public', table: 'invoices' }],
  ]),
  attributes: new Map(),
  loadedAt: 0,
};

function copy(description: Partial<CopyDescription>): StatementReport {
  return { copy: { from: false, client: true, options: [], ...description } } as unknown as StatementReport;
}

describe('rewriteForMaskingViews', () => {
  it('sends COPY of a masked table, as pg_dump writes it, to the view function', () => {
    assert.equal(
      rewriteForMaskingViews(
        copy({ relation: { schema: 'public', table: 'customers' }, columns: ['id', 'email'] }),
        'COPY public.customers (id, email) TO stdout;',
        catalog,
      ),
      'COPY (SELECT "id", "email" FROM "warden_mask"."customers"()) TO STDOUT',
    );
  });

  it('keeps the options, quoted', () => {
    assert.equal(
      rewriteForMaskingViews(
        copy({
          relation: { table: 'customers' },
          options: [
            ['format', 'csv'],
            ['header', undefined],
            ['delimiter', "'"],
            ['force_quote', ['email']],
          ],
        }),
        'COPY customers TO STDOUT (FORMAT csv, HEADER)',
        catalog,
      ),
      `COPY (SELECT * FROM "warden_mask"."customers"()) TO STDOUT (format 'csv', header, delimiter '''', force_quote ("email"))`,
    );
  });

  it('leaves binary COPY, COPY FROM, other schemas, unmasked tables and unreadable options alone', () => {
    for (const report of [
      copy({ relation: { table: 'customers' }, options: [['format', 'binary']] }),
      copy({ relation: { table: 'customers' }, from: true }),
      copy({ relation: { schema: 'sales', table: 'customers' } }),
      copy({ relation: { table: 'invoices' } }),
      copy({ relation: { table: 'customers' }, options: [['format', null]] }),
    ]) {
      assert.equal(rewriteForMaskingViews(report, 'COPY ...', catalog), undefined);
    }
    assert.equal(
      rewriteForMaskingViews(copy({ relation: { table: 'customers' } }), 'COPY', undefined),
      undefined,
    );
  });

  it('copies the key table empty and skips its lock', () => {
    assert.match(
      rewriteForMaskingViews(copy({ relation: { schema: 'warden_mask', table: 'hmac_key' } }), '', catalog)!,
      /^COPY \(SELECT NULL::int AS id, NULL::bytea AS ipad, NULL::bytea AS opad WHERE false\) TO STDOUT$/,
    );
    const none = {} as StatementReport;
    assert.equal(
      rewriteForMaskingViews(none, 'LOCK TABLE warden_mask.hmac_key IN ACCESS SHARE MODE', catalog),
      'DO $$BEGIN END$$',
    );
  });

  it('locks a masked table through its view, any other table by reading no rows of it', () => {
    const none = {} as StatementReport;
    const lock = (sql: string) => rewriteForMaskingViews(none, sql, catalog);
    assert.equal(
      lock('LOCK TABLE public.customers IN ACCESS SHARE MODE'),
      'LOCK TABLE "warden_mask"."customers" IN ACCESS SHARE MODE',
    );
    assert.equal(
      lock('LOCK TABLE public.invoices IN ACCESS SHARE MODE'),
      'DO $warden$BEGIN PERFORM FROM "public"."invoices" WHERE false; END$warden$',
    );
    assert.equal(
      lock('lock table only "Sales"."Odd ""Name""", customers, ledger * in access share mode;'),
      'DO $warden$BEGIN LOCK TABLE "warden_mask"."customers" IN ACCESS SHARE MODE; PERFORM FROM ONLY "Sales"."Odd ""Name""" WHERE false; PERFORM FROM "ledger" WHERE false; END$warden$',
    );
    // pg_dump's parallel workers: NOWAIT becomes a 1 ms lock_timeout for the reads only.
    assert.equal(
      lock('LOCK TABLE public.invoices IN ACCESS SHARE MODE NOWAIT'),
      "DO $warden$DECLARE previous text := current_setting('lock_timeout'); BEGIN PERFORM set_config('lock_timeout', '1ms', true); PERFORM FROM \"public\".\"invoices\" WHERE false; PERFORM set_config('lock_timeout', previous, true); END$warden$",
    );
  });

  it('sends as it is what it cannot rewrite exactly, and nothing where masking is not enforced', () => {
    const none = {} as StatementReport;
    for (const sql of [
      'LOCK TABLE public.customers IN ACCESS EXCLUSIVE MODE',
      'LOCK TABLE public.customers IN SHARE MODE',
      'LOCK TABLE public.customers, IN ACCESS SHARE MODE',
      'LOCK TABLE public.customers; DROP TABLE x IN ACCESS SHARE MODE',
      // A name holding the block's quote tag cannot end the block early.
      'LOCK TABLE "a$warden$; DROP TABLE x; --" IN ACCESS SHARE MODE',
      'LOCK TABLE tabellé IN ACCESS SHARE MODE',
    ]) {
      assert.equal(rewriteForMaskingViews(none, sql, catalog), undefined, sql);
    }
    const unmasked: Catalog = { ...catalog, tables: new Map([[4, { schema: 'public', table: 'invoices' }]]) };
    assert.equal(
      rewriteForMaskingViews(none, 'LOCK TABLE public.invoices IN ACCESS SHARE MODE', unmasked),
      undefined,
    );
  });
});
