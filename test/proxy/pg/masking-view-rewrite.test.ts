/**
 * COPY and LOCK of a masked table sent to its masking view (issue 15): what is rewritten, and
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

  it('copies the key table empty and locks a view in its place', () => {
    assert.match(
      rewriteForMaskingViews(copy({ relation: { schema: 'warden_mask', table: 'hmac_key' } }), '', catalog)!,
      /^COPY \(SELECT NULL::int AS id, NULL::bytea AS ipad, NULL::bytea AS opad WHERE false\) TO STDOUT$/,
    );
    const none = {} as StatementReport;
    assert.equal(
      rewriteForMaskingViews(none, 'LOCK TABLE warden_mask.hmac_key IN ACCESS SHARE MODE', catalog),
      'LOCK TABLE "warden_mask"."customers" IN ACCESS SHARE MODE',
    );
    assert.equal(
      rewriteForMaskingViews(none, 'LOCK TABLE public.customers IN ACCESS SHARE MODE', catalog),
      'LOCK TABLE "warden_mask"."customers" IN ACCESS SHARE MODE',
    );
    for (const sql of [
      'LOCK TABLE public.invoices IN ACCESS SHARE MODE',
      'LOCK TABLE public.customers IN ACCESS EXCLUSIVE MODE',
      'LOCK TABLE public.customers, public.invoices IN ACCESS SHARE MODE',
    ]) {
      assert.equal(rewriteForMaskingViews(none, sql, catalog), undefined, sql);
    }
  });
});
