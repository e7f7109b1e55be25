/**
 * The guardrails corpus of issue 16, as data: dangerous statements (each refused or held, naming
 * its rule) and ordinary ones (each passes), with the schema, configuration and session they are
 * judged in. Phase A runs it over the analysis API (corpus.test.ts) with stand-ins for what the
 * relay will provide (catalog, function bodies, estimates); phase B runs the same cases through
 * the proxy with real psql against {@link CORPUS_SCHEMA}, where EXPLAIN gives the estimates.
 */

/** Created directly (not through the proxy) by the database owner before the corpus runs. */
export const CORPUS_SCHEMA = `
CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, email text);
CREATE TABLE invoices (id serial PRIMARY KEY, customer text, amount int NOT NULL);
CREATE INDEX invoices_customer_idx ON invoices (customer);
CREATE TABLE notes (id int PRIMARY KEY, body text);
CREATE TABLE secrets (id int PRIMARY KEY, secret text);
CREATE TABLE events (id int PRIMARY KEY, kind text);
INSERT INTO events SELECT g, 'k' || (g % 7) FROM generate_series(1, 5000) g;
ANALYZE events;
CREATE SCHEMA payroll;
CREATE TABLE payroll.salaries (id int PRIMARY KEY, amount int);
CREATE FUNCTION wipe_invoices() RETURNS void LANGUAGE sql AS 'DELETE FROM invoices';
CREATE PROCEDURE purge_notes() LANGUAGE plpgsql AS $$ BEGIN DELETE FROM notes WHERE true; END $$;
CREATE FUNCTION note_count() RETURNS bigint LANGUAGE sql AS 'SELECT count(*) FROM notes';
`;

/** The target's guardrails configuration for the corpus (on top of the default pack). */
export const CORPUS_GUARDRAILS = {
  rules: [
    { name: 'no-salaries', match: { relations: ['payroll.salaries'] }, action: 'block' },
    { name: 'no-secrets', match: { relations: ['secrets'] }, action: 'block' },
    { name: 'no-sleep', match: { functions: ['pg_catalog.pg_sleep'] }, action: 'block' },
    { name: 'protect-customers', match: { kinds: ['delete'], relations: ['customers'] }, action: 'block' },
    {
      name: 'review-invoice-deletes',
      match: { kinds: ['delete'], relations: ['invoices'] },
      action: 'review',
    },
  ],
};

/** The access level every case runs at (it owns the corpus's tables). */
export const CORPUS_LEVEL = 'owner';

/** What the relay's catalog lookups would answer for {@link CORPUS_SCHEMA} (phase A stand-in). */
export const CORPUS_CATALOG = {
  relations: {
    public: ['customers', 'invoices', 'notes', 'secrets', 'events'],
    payroll: ['salaries'],
  } as Record<string, string[]>,
  notNull: {
    'public.customers': ['id', 'name'],
    'public.invoices': ['id', 'amount'],
    'public.notes': ['id'],
    'public.secrets': ['id'],
    'public.events': ['id'],
    'payroll.salaries': ['id'],
  } as Record<string, string[]>,
  routines: [
    { schema: 'public', name: 'wipe_invoices', language: 'sql', body: 'DELETE FROM invoices' },
    {
      schema: 'public',
      name: 'purge_notes',
      language: 'plpgsql',
      body: ' BEGIN DELETE FROM notes WHERE true; END ',
    },
    { schema: 'public', name: 'note_count', language: 'sql', body: 'SELECT count(*) FROM notes' },
  ],
};

/** The planner's answer a case's writes get (phase A stand-in; `null`: EXPLAIN fails). */
export type CorpusEstimate = { rows: number; tableRows: number } | null;

/** A statement that must be refused or held. */
export interface DangerousCase {
  /** The class of issue 16 it covers. */
  readonly class:
    | 'nested'
    | 'sql-function'
    | 'no-filter'
    | 'blast-radius'
    | 'persistent-object'
    | 'destructive-ddl'
    | 'names';
  readonly sql: string;
  readonly action: 'block' | 'review';
  readonly rule: string;
  /** Statements the same session ran before (search_path changes, temporary tables). */
  readonly before?: readonly string[];
  readonly estimate?: CorpusEstimate;
}

/** A statement that must pass. */
export interface OrdinaryCase {
  readonly sql: string;
  readonly before?: readonly string[];
  readonly estimate?: CorpusEstimate;
}

const review = 'review-invoice-deletes';

export const DANGEROUS: readonly DangerousCase[] = [
  // Every statement a query would execute, wherever it is nested.
  {
    class: 'nested',
    sql: 'WITH gone AS (DELETE FROM invoices WHERE id = 2 RETURNING *) SELECT count(*) FROM gone',
    action: 'review',
    rule: review,
  },
  {
    class: 'nested',
    sql: 'MERGE INTO invoices i USING (SELECT 2 AS id) s ON i.id = s.id WHEN MATCHED THEN DELETE',
    action: 'review',
    rule: review,
  },
  {
    class: 'nested',
    sql: 'EXPLAIN ANALYZE DELETE FROM invoices WHERE id = 2',
    action: 'review',
    rule: review,
  },
  {
    class: 'nested',
    sql: 'EXPLAIN (ANALYZE, COSTS OFF) DELETE FROM invoices WHERE id = 2',
    action: 'review',
    rule: review,
  },
  {
    class: 'nested',
    sql: 'DO $$ BEGIN DELETE FROM invoices WHERE id = 2; END $$',
    action: 'review',
    rule: review,
  },
  {
    class: 'nested',
    sql: 'COPY (DELETE FROM invoices WHERE id = 2 RETURNING *) TO STDOUT',
    action: 'review',
    rule: review,
  },
  {
    class: 'nested',
    sql: 'PREPARE del(int) AS DELETE FROM invoices WHERE id = $1',
    action: 'review',
    rule: review,
  },
  {
    class: 'nested',
    sql: "DO $$ BEGIN EXECUTE 'DELETE FROM invoices WHERE id = 2'; END $$",
    action: 'review',
    rule: review,
  },
  {
    class: 'nested',
    sql: "DO $$ BEGIN EXECUTE 'TRUNC' || 'ATE invoices'; END $$",
    action: 'block',
    rule: 'dynamic-sql',
  },
  {
    class: 'nested',
    sql: "DO $$ DECLARE q text := 'DROP TABLE invoices'; BEGIN EXECUTE q; END $$",
    action: 'block',
    rule: 'dynamic-sql',
  },
  { class: 'nested', sql: 'SELECT wipe_invoices()', action: 'block', rule: 'delete-without-where' },
  { class: 'nested', sql: 'CALL purge_notes()', action: 'block', rule: 'delete-without-where' },
  // Functions that execute SQL text or read relations by name.
  {
    class: 'sql-function',
    sql: "SELECT query_to_xml('select * from secrets', true, true, '')",
    action: 'block',
    rule: 'no-secrets',
  },
  {
    class: 'sql-function',
    sql: "SELECT table_to_xml('secrets', true, true, '')",
    action: 'block',
    rule: 'no-secrets',
  },
  {
    class: 'sql-function',
    sql: "SELECT table_to_xml('public.secrets'::regclass, true, true, '')",
    action: 'block',
    rule: 'no-secrets',
  },
  {
    class: 'sql-function',
    sql: "SELECT query_to_xmlschema('SELECT * FROM payroll.salaries', true, true, '')",
    action: 'block',
    rule: 'no-salaries',
  },
  {
    class: 'sql-function',
    sql: "SELECT query_to_xml_and_xmlschema('SELECT secret FROM secrets', true, true, '')",
    action: 'block',
    rule: 'no-secrets',
  },
  {
    class: 'sql-function',
    sql: "SELECT schema_to_xml('payroll', true, true, '')",
    action: 'block',
    rule: 'no-salaries',
  },
  {
    class: 'sql-function',
    sql: "SELECT database_to_xml(true, true, '')",
    action: 'block',
    rule: 'no-salaries',
  },
  {
    class: 'sql-function',
    sql: "SELECT query_to_xml(q, true, true, '') FROM (VALUES ('select 1')) v(q)",
    action: 'block',
    rule: 'dynamic-sql',
  },
  {
    class: 'sql-function',
    sql: "SELECT table_to_xml(relname::regclass, true, true, '') FROM pg_class",
    action: 'block',
    rule: 'dynamic-sql',
  },
  {
    class: 'sql-function',
    sql: "SELECT * FROM ts_stat('SELECT to_tsvector(secret) FROM secrets')",
    action: 'block',
    rule: 'no-secrets',
  },
  {
    class: 'sql-function',
    sql: "SELECT xpath('/row/secret/text()', query_to_xml('SELECT * FROM secrets', true, false, ''))",
    action: 'block',
    rule: 'no-secrets',
  },
  {
    class: 'sql-function',
    sql: "SELECT dblink_exec('dbname=postgres', 'DROP TABLE invoices')",
    action: 'block',
    rule: 'dangerous-function',
  },
  // Filters that keep every row.
  {
    class: 'no-filter',
    sql: 'DELETE FROM invoices WHERE id IS NOT NULL',
    action: 'block',
    rule: 'delete-without-where',
  },
  {
    class: 'no-filter',
    sql: 'DELETE FROM invoices WHERE true OR id = 0',
    action: 'block',
    rule: 'delete-without-where',
  },
  {
    class: 'no-filter',
    sql: 'DELETE FROM invoices WHERE EXISTS (SELECT 1)',
    action: 'block',
    rule: 'delete-without-where',
  },
  {
    class: 'no-filter',
    sql: 'MERGE INTO invoices t USING customers c ON true WHEN MATCHED THEN UPDATE SET amount = 0',
    action: 'block',
    rule: 'update-without-where',
  },
  {
    class: 'no-filter',
    sql: 'UPDATE invoices SET amount = 0 WHERE amount = amount',
    action: 'block',
    rule: 'update-without-where',
  },
  {
    class: 'no-filter',
    sql: 'UPDATE invoices SET amount = 0 WHERE NOT false',
    action: 'block',
    rule: 'update-without-where',
  },
  {
    class: 'no-filter',
    sql: 'DELETE FROM invoices USING customers WHERE customers.id = 1',
    action: 'block',
    rule: 'delete-without-where',
  },
  {
    class: 'no-filter',
    sql: 'UPDATE invoices SET amount = 0 WHERE 1 = 1 AND id = id',
    action: 'block',
    rule: 'update-without-where',
  },
  {
    class: 'no-filter',
    sql: 'DELETE FROM invoices WHERE customer IS NULL OR customer IS NOT NULL',
    action: 'block',
    rule: 'delete-without-where',
  },
  {
    class: 'no-filter',
    sql: 'WITH x AS (UPDATE invoices SET amount = 0 WHERE (SELECT true) RETURNING 1) SELECT 1',
    action: 'block',
    rule: 'update-without-where',
  },
  {
    class: 'no-filter',
    sql: 'MERGE INTO invoices t USING customers c ON t.customer = c.name WHEN NOT MATCHED BY SOURCE THEN DELETE',
    action: 'block',
    rule: 'delete-without-where',
  },
  {
    class: 'no-filter',
    sql: "DELETE FROM notes WHERE now() > '2000-01-01'",
    action: 'block',
    rule: 'delete-without-where',
  },
  // Planner estimates over the blast-radius limit (and a write whose estimate cannot be taken).
  {
    class: 'blast-radius',
    sql: 'DELETE FROM events WHERE id > 0',
    action: 'review',
    rule: 'blast-radius',
    estimate: { rows: 5000, tableRows: 5000 },
  },
  {
    class: 'blast-radius',
    sql: "UPDATE events SET kind = 'x' WHERE kind <> 'y'",
    action: 'review',
    rule: 'blast-radius',
    estimate: { rows: 5000, tableRows: 5000 },
  },
  {
    class: 'blast-radius',
    sql: 'DO $$ DECLARE z int := 0; BEGIN DELETE FROM events WHERE id > z; END $$',
    action: 'review',
    rule: 'blast-radius',
    estimate: null,
  },
  // Objects that act after the grant ends.
  {
    class: 'persistent-object',
    sql: "CREATE FUNCTION f_sd() RETURNS int LANGUAGE sql SECURITY DEFINER AS 'SELECT 1'",
    action: 'block',
    rule: 'persistent-object',
  },
  {
    class: 'persistent-object',
    sql: 'CREATE TRIGGER trg BEFORE UPDATE ON invoices FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()',
    action: 'block',
    rule: 'persistent-object',
  },
  {
    class: 'persistent-object',
    sql: 'CREATE RULE r AS ON INSERT TO invoices DO ALSO NOTIFY invoices',
    action: 'block',
    rule: 'persistent-object',
  },
  {
    class: 'persistent-object',
    sql: 'CREATE EVENT TRIGGER et ON ddl_command_start EXECUTE FUNCTION note_count()',
    action: 'block',
    rule: 'persistent-object',
  },
  {
    class: 'persistent-object',
    sql: 'CREATE PUBLICATION pub FOR TABLE invoices',
    action: 'block',
    rule: 'persistent-object',
  },
  {
    class: 'persistent-object',
    sql: "CREATE SUBSCRIPTION sub CONNECTION 'dbname=x' PUBLICATION pub",
    action: 'block',
    rule: 'persistent-object',
  },
  {
    class: 'persistent-object',
    sql: 'CREATE SERVER srv FOREIGN DATA WRAPPER postgres_fdw',
    action: 'block',
    rule: 'persistent-object',
  },
  {
    class: 'persistent-object',
    sql: 'CREATE USER MAPPING FOR CURRENT_USER SERVER srv',
    action: 'block',
    rule: 'persistent-object',
  },
  {
    class: 'persistent-object',
    sql: 'ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO PUBLIC',
    action: 'block',
    rule: 'persistent-object',
  },
  {
    class: 'persistent-object',
    sql: 'ALTER FUNCTION note_count() SECURITY DEFINER',
    action: 'block',
    rule: 'persistent-object',
  },
  {
    class: 'persistent-object',
    sql: "DO $$ BEGIN CREATE FUNCTION g() RETURNS int LANGUAGE sql SECURITY DEFINER AS 'SELECT 1'; END $$",
    action: 'block',
    rule: 'persistent-object',
  },
  // Destructive DDL.
  {
    class: 'destructive-ddl',
    sql: 'ALTER TABLE invoices DROP COLUMN amount',
    action: 'block',
    rule: 'destructive-ddl',
  },
  {
    class: 'destructive-ddl',
    sql: 'ALTER TABLE invoices ALTER COLUMN amount TYPE text USING amount::text',
    action: 'block',
    rule: 'destructive-ddl',
  },
  {
    class: 'destructive-ddl',
    sql: 'DROP INDEX invoices_customer_idx',
    action: 'block',
    rule: 'destructive-ddl',
  },
  {
    class: 'destructive-ddl',
    sql: 'ALTER TABLE invoices DROP CONSTRAINT invoices_pkey',
    action: 'block',
    rule: 'destructive-ddl',
  },
  // Names resolved as PostgreSQL resolves them.
  {
    class: 'names',
    sql: 'SET search_path = payroll; SELECT * FROM salaries',
    action: 'block',
    rule: 'no-salaries',
  },
  {
    class: 'names',
    sql: "SELECT set_config('search_path', 'payroll', false); SELECT * FROM salaries",
    action: 'block',
    rule: 'no-salaries',
  },
  {
    class: 'names',
    sql: 'BEGIN; SET LOCAL search_path TO payroll, public; SELECT * FROM salaries',
    action: 'block',
    rule: 'no-salaries',
  },
  {
    class: 'names',
    sql: "SELECT set_config('search_path', current_user, false); SELECT * FROM salaries",
    action: 'block',
    rule: 'no-salaries',
  },
  {
    class: 'names',
    sql: 'SELECT * FROM salaries',
    before: ['SET search_path = payroll'],
    action: 'block',
    rule: 'no-salaries',
  },
  {
    class: 'names',
    sql: 'TABLE salaries',
    before: ["SELECT pg_catalog.set_config('search_path', 'payroll, public', false)"],
    action: 'block',
    rule: 'no-salaries',
  },
  { class: 'names', sql: 'SELECT pg_sleep(0)', action: 'block', rule: 'no-sleep' },
  { class: 'names', sql: 'SELECT "pg_catalog"."pg_sleep"(0)', action: 'block', rule: 'no-sleep' },
  { class: 'names', sql: 'SELECT * FROM "payroll"."salaries"', action: 'block', rule: 'no-salaries' },
  { class: 'names', sql: 'DELETE FROM customers WHERE id = 2', action: 'block', rule: 'protect-customers' },
  {
    class: 'names',
    sql: 'DELETE FROM invoices USING customers WHERE invoices.customer = customers.name AND customers.id = 2',
    action: 'review',
    rule: review,
  },
];

export const ORDINARY: readonly OrdinaryCase[] = [
  { sql: 'SELECT * FROM invoices WHERE id = 1' },
  { sql: 'UPDATE invoices SET amount = amount + 1 WHERE id = 1' },
  { sql: 'DELETE FROM notes WHERE id = 3' },
  { sql: 'DELETE FROM notes WHERE body IS NULL' },
  { sql: "UPDATE notes SET body = 'x' WHERE id IN (SELECT id FROM notes WHERE body LIKE 'a%')" },
  {
    sql: "MERGE INTO notes n USING (VALUES (1, 'hello')) AS s(id, body) ON n.id = s.id WHEN MATCHED THEN UPDATE SET body = s.body WHEN NOT MATCHED THEN INSERT (id, body) VALUES (s.id, s.body)",
  },
  { sql: "INSERT INTO notes (id, body) VALUES (10, 'x') ON CONFLICT (id) DO NOTHING" },
  { sql: 'PREPARE getn(int) AS SELECT * FROM notes WHERE id = $1; EXECUTE getn(1)' },
  { sql: "PREPARE upd(int) AS UPDATE notes SET body = 'y' WHERE id = $1; EXECUTE upd(1); DEALLOCATE upd" },
  { sql: 'CREATE TEMP TABLE scratch (a int); INSERT INTO scratch VALUES (1); DROP TABLE scratch' },
  { sql: 'DROP TABLE scratch2', before: ['CREATE TEMP TABLE scratch2 (a int)'] },
  {
    sql: 'CREATE TEMP TABLE s3 AS SELECT 1 AS a; CREATE INDEX s3_a ON s3 (a); DROP INDEX s3_a; DROP TABLE pg_temp.s3',
  },
  { sql: 'ALTER TABLE scratch4 DROP COLUMN b', before: ['CREATE TEMP TABLE scratch4 (a int, b int)'] },
  { sql: 'ANALYZE notes' },
  { sql: 'EXPLAIN DELETE FROM invoices' },
  { sql: 'EXPLAIN (COSTS OFF) UPDATE invoices SET amount = 0' },
  { sql: 'LISTEN invoices_changed' },
  { sql: "NOTIFY invoices_changed, 'hi'" },
  { sql: 'UNLISTEN *' },
  { sql: "SET statement_timeout = '5s'" },
  { sql: "BEGIN; SET LOCAL work_mem = '64MB'; COMMIT" },
  { sql: 'SET search_path = public, payroll' },
  { sql: "SELECT set_config('application_name', 'warden-corpus', false)" },
  { sql: 'BEGIN; UPDATE invoices SET amount = 5 WHERE id = 1; COMMIT' },
  { sql: 'SELECT count(*) FROM invoices i JOIN customers c ON c.name = i.customer' },
  { sql: 'WITH recent AS (SELECT id FROM invoices WHERE id > 1) SELECT * FROM recent' },
  { sql: "SELECT query_to_xml('select id from notes', true, true, '')" },
  { sql: 'DELETE FROM notes WHERE id = 1 RETURNING *' },
  { sql: 'UPDATE notes n SET body = c.name FROM customers c WHERE n.id = c.id AND c.id = 1' },
  { sql: 'SELECT pg_catalog.now()' },
  { sql: "CREATE OR REPLACE FUNCTION add_one(i int) RETURNS int LANGUAGE sql AS 'SELECT i + 1'" },
  { sql: "DO $$ BEGIN UPDATE notes SET body = 'z' WHERE id = 2; END $$" },
  { sql: 'SELECT * FROM customers WHERE id = 1' },
  { sql: 'SELECT note_count()' },
  { sql: 'DELETE FROM events WHERE id = 42', estimate: { rows: 1, tableRows: 5000 } },
  { sql: 'COPY notes TO STDOUT' },
  { sql: 'SELECT * FROM notes', before: ['SET search_path = payroll, public'] },
];
