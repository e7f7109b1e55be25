/**
 * The pure parts of database-enforced masking (issue 15): rules compiled for PostgreSQL's `~`,
 * HMAC built from two SHA-256 passes over the stored pads, and the plan of one level's column
 * privileges and masking views.
 */
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  compileDbColumnRules,
  deriveHmacPads,
  planLevelMasking,
  type ScopeColumn,
} from '../../../../broker/providers/postgres/masking-views.ts';

function column(overrides: Partial<ScopeColumn>): ScopeColumn {
  return {
    oid: 1,
    relkind: 'r',
    schema: 'public',
    table: 'customers',
    attnum: 1,
    column: 'id',
    style: null,
    ruleIndex: null,
    tainted: false,
    tableSelect: false,
    tableReferences: false,
    columnSelect: false,
    columnReferences: false,
    grantable: true,
    ...overrides,
  };
}

describe('database masking rules', () => {
  it('compiles segments to anchored regexes, missing leading segments match anything', () => {
    const [email, card] = compileDbColumnRules({
      columns: [
        { match: 'customers.Email', style: 'hash' },
        { match: '*.card_$number', style: 'last4' },
      ],
    });
    assert.deepEqual([email!.schema, email!.table, email!.column], ['^.*$', '^customers$', '^email$']);
    assert.equal(card!.column, '^card_\\$number$');
    assert.ok(new RegExp(card!.column).test('card_$number'));
  });

  it('skips what the masking schema refuses (checked at start-up)', () => {
    assert.deepEqual(
      compileDbColumnRules({
        columns: [
          { match: 'a.b.c.d', style: 'hash' },
          { match: 'x', style: 'odd' },
        ],
      }),
      [],
    );
  });

  it('HMAC from the stored pads equals HMAC-SHA-256, for short and long keys', () => {
    for (const key of [Buffer.from('a-masking-key-of-32-bytes-length'), Buffer.alloc(100, 7)]) {
      const { ipad, opad } = deriveHmacPads(key);
      const message = Buffer.from('ada@example.com');
      const inner = createHash('sha256')
        .update(Buffer.concat([ipad, message]))
        .digest();
      const outer = createHash('sha256')
        .update(Buffer.concat([opad, inner]))
        .digest('hex');
      assert.equal(outer, createHmac('sha256', key).update(message).digest('hex'));
    }
  });
});

describe('planLevelMasking', () => {
  const level = { grants: ['select', 'update'], schemas: ['public'] } as never;
  const rules = compileDbColumnRules({ columns: [{ match: 'customers.email', style: 'hash' }] });
  const plan = (columns: ScopeColumn[], views: Parameters<typeof planLevelMasking>[0]['views'] = new Map()) =>
    planLevelMasking({ levelRole: 'warden__read', level, rules, views, columns });

  it('replaces table-wide SELECT with the unmasked columns and builds the view', () => {
    const result = plan([
      column({ tableSelect: true, columnSelect: true }),
      column({
        attnum: 2,
        column: 'email',
        style: 'hash',
        ruleIndex: 1,
        tableSelect: true,
        columnSelect: true,
      }),
    ]);
    const text = result.statements.join('\n');
    assert.match(text, /REVOKE SELECT ON "public"."customers" FROM "warden__read"/);
    assert.match(text, /REVOKE SELECT \("email"\), REFERENCES \("email"\) ON "public"."customers"/);
    assert.match(text, /GRANT SELECT \("id"\) ON "public"."customers" TO "warden__read"/);
    assert.doesNotMatch(text, /GRANT SELECT \([^)]*"email"/);
    assert.match(text, /CREATE VIEW "warden_mask"."customers" WITH \(security_barrier = true\)/);
    assert.match(text, /sha256\(\(SELECT k.opad FROM "warden_mask".hmac_key k\)/);
    assert.match(text, /GRANT UPDATE ON "warden_mask"."customers" TO "warden__read"/);
    assert.equal(result.masked.get('public.customers.email'), 'customers.email');
  });

  it('leaves an unchanged view alone and gives a rebuilt one back to the other levels', () => {
    const columns = [column({}), column({ attnum: 2, column: 'email', style: 'hash', ruleIndex: 1 })];
    const first = plan(columns);
    const fingerprint = /COMMENT ON VIEW \S+ IS '([^']+)'/.exec(first.statements.join('\n'))![1]!;
    const same = plan(
      columns,
      new Map([['customers', { name: 'customers', comment: fingerprint, grantees: [] }]]),
    );
    assert.ok(!same.statements.some((s) => /CREATE VIEW|DROP VIEW/.test(s)));
    const changed = plan(
      [...columns, column({ attnum: 3, column: 'added' })],
      new Map([['customers', { name: 'customers', comment: fingerprint, grantees: ['warden__write'] }]]),
    );
    const text = changed.statements.join('\n');
    assert.match(text, /DROP VIEW "warden_mask"."customers"/);
    assert.match(text, /GRANT SELECT ON "warden_mask"."customers" TO "warden__write"/);
  });

  it('does not grant a view that reads a masked column, and grants unmasked tables column by column', () => {
    const result = plan([
      column({
        oid: 2,
        relkind: 'v',
        table: 'contacts',
        column: 'contact',
        tainted: true,
        tableSelect: true,
        columnSelect: true,
      }),
      column({ oid: 3, table: 'invoices', column: 'amount' }),
      column({ oid: 4, table: 'ledger', column: 'total', tableSelect: true, columnSelect: true }),
    ]);
    const text = result.statements.join('\n');
    assert.match(text, /REVOKE SELECT ON "public"."contacts"/);
    assert.doesNotMatch(text, /GRANT SELECT \("contact"\)/);
    // A table-wide grant would also cover a column added later, or one renamed to a masked name.
    assert.match(text, /GRANT SELECT \("amount"\) ON "public"."invoices" TO "warden__read"/);
    assert.match(text, /REVOKE SELECT ON "public"."ledger" FROM "warden__read"/);
    assert.match(text, /GRANT SELECT \("total"\) ON "public"."ledger" TO "warden__read"/);
    assert.doesNotMatch(text, /VIEW "warden_mask"."(invoices|ledger)"/);
  });

  it('names columns the admin cannot grant', () => {
    const result = plan([
      column({ grantable: false }),
      column({ attnum: 2, column: 'email', style: 'hash', ruleIndex: 1 }),
    ]);
    assert.deepEqual(result.notGrantable, ['public.customers.id']);
  });
});
