/**
 * Issue 15: column rules enforced by the database. A corpus of derivation attempts runs with real
 * psql both through the proxy and directly with the minted credential (the role's own password,
 * as a target without `proxy:` or a CI job would use it); neither output, the session recording
 * nor the broker's log may hold a raw value or any string the table owner sees for the same query.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { tmpdir } from 'node:os';
import { after, before, describe, it } from 'node:test';
import { keepLast4, MaskingKey } from '../../../proxy/masking/styles.ts';
import { execSql, type PgCluster, startPgCluster } from '../../helpers/pg-cluster.ts';
import {
  type ProxyFixture,
  type ProxyLogin,
  startMaskedProxyFixture,
} from '../../helpers/pg-proxy-fixture.ts';

const MASKING_KEY = 'a-masking-key-of-32-bytes-length';

const RAW = [
  'ada@example.com',
  'bob@example.org',
  '4111111111111111',
  '5500005555555559',
  '123-45-6789',
  '987-65-4321',
];

/** Runs psql as a person would (`-X`, no rc file), statements on stdin; never throws. */
function psql(
  login: { host: string; port: number; database: string; user: string; password: string },
  sql: string,
  args: string[] = ['-tA'],
): Promise<string> {
  return new Promise((resolve) => {
    const child = execFile(
      'psql',
      ['-X', '-h', login.host, '-p', String(login.port), '-U', login.user, '-d', login.database, ...args],
      {
        env: {
          PATH: process.env.PATH ?? '',
          PGPASSWORD: login.password,
          PGSSLMODE: 'disable',
          HOME: tmpdir(),
        },
        timeout: 30_000,
        maxBuffer: 16 * 1024 * 1024,
        encoding: 'latin1',
      },
      (_error, stdout, stderr) => resolve(`${stdout}\n${stderr}`),
    );
    child.stdin!.end(sql);
  });
}

/**
 * Derivation attempts; `write: true` runs with the write level. None holds a raw value itself.
 * `rawOnly`: what the owner sees is no secret (the view's text, statistics of unmasked columns),
 * so only raw values are looked for.
 */
const CORPUS: { name: string; sql: string; write?: boolean; rawOnly?: boolean }[] = [
  { name: 'base64 of the value', sql: "SELECT encode(email::bytea, 'base64') FROM customers;" },
  { name: 'substr halves', sql: 'SELECT substr(card_number, 1, 8), substr(card_number, 9) FROM customers;' },
  { name: 'replace', sql: "SELECT replace(email, '@', ' (at) ') FROM customers;" },
  { name: 'concatenation', sql: "SELECT tax_id || '' FROM customers;" },
  { name: 'reverse', sql: 'SELECT reverse(tax_id), upper(email), left(card_number, 6) FROM customers;' },
  { name: 'md5 of the value', sql: 'SELECT md5(email), md5(tax_id) FROM customers;' },
  { name: 'bytes of the value', sql: "SELECT convert_to(email, 'UTF8'), email::bytea FROM customers;" },
  { name: 'format', sql: "SELECT format('%s/%s', tax_id, card_number) FROM customers;" },
  {
    name: 'notice fields',
    sql: "DO $$ BEGIN RAISE NOTICE 'x' USING COLUMN = (SELECT string_agg(email, ',') FROM customers), TABLE = (SELECT string_agg(tax_id, ',') FROM customers), DETAIL = (SELECT string_agg(card_number, ',') FROM customers); END $$;",
  },
  {
    name: 'error fields',
    sql: "DO $$ BEGIN RAISE EXCEPTION 'e' USING SCHEMA = (SELECT string_agg(email, ',') FROM customers), CONSTRAINT = (SELECT min(tax_id) FROM customers), DATATYPE = (SELECT min(card_number) FROM customers); END $$;",
  },
  {
    name: 'parameter status',
    sql: "SELECT set_config('application_name', (SELECT string_agg(email, ',') FROM customers), false);",
  },
  {
    name: 'custom setting',
    sql: "SELECT set_config('warden.x', (SELECT min(tax_id) FROM customers), false); SHOW warden.x;",
  },
  {
    name: 'COPY of a temporary function (qualified table)',
    sql: 'CREATE FUNCTION pg_temp.f() RETURNS SETOF public.customers LANGUAGE sql AS $f$ SELECT * FROM public.customers $f$; COPY (SELECT * FROM pg_temp.f()) TO STDOUT;',
  },
  {
    name: 'COPY of a temporary function (search path)',
    sql: 'CREATE FUNCTION pg_temp.g() RETURNS TABLE (e text, t text) LANGUAGE sql AS $f$ SELECT email, tax_id FROM customers $f$; COPY (SELECT * FROM pg_temp.g()) TO STDOUT;',
  },
  { name: 'cast that fails (int)', sql: 'SELECT email::int FROM customers;' },
  { name: 'cast that fails (date)', sql: 'SELECT tax_id::date FROM customers;' },
  { name: 'cast that fails (json)', sql: 'SELECT card_number::json FROM customers WHERE id = 1;' },
  { name: 'string_agg', sql: "SELECT string_agg(email, ',' ORDER BY email) FROM customers;" },
  { name: 'array_agg', sql: 'SELECT array_agg(card_number), max(tax_id), min(email) FROM customers;' },
  { name: 'json_agg of rows', sql: 'SELECT json_agg(c) FROM customers c;' },
  { name: 'row_to_json', sql: 'SELECT row_to_json(c) FROM customers c;' },
  { name: 'jsonb_build_object', sql: "SELECT jsonb_build_object('e', email, 't', tax_id) FROM customers;" },
  {
    name: 'xmlelement',
    sql: 'SELECT xmlelement(name x, email), xmlforest(tax_id, card_number) FROM customers;',
  },
  { name: 'whole-row text', sql: 'SELECT c::text FROM customers c;' },
  { name: 'UNION', sql: 'SELECT email FROM customers UNION SELECT tax_id FROM customers;' },
  {
    name: 'LATERAL',
    sql: 'SELECT l.* FROM (SELECT 1) s, LATERAL (SELECT email, card_number FROM customers) l;',
  },
  {
    name: 'scalar subquery',
    sql: 'SELECT (SELECT max(email) FROM customers), (SELECT max(tax_id) FROM customers);',
  },
  { name: 'CTE', sql: 'WITH x AS (SELECT * FROM customers) SELECT * FROM x;' },
  {
    name: 'cursor',
    sql: 'BEGIN; DECLARE c CURSOR FOR SELECT email, tax_id FROM customers; FETCH ALL c; COMMIT;',
  },
  { name: 'temporary table', sql: 'CREATE TEMP TABLE t AS SELECT * FROM customers; SELECT * FROM t;' },
  {
    name: 'temporary view of the base table',
    sql: 'CREATE TEMP VIEW v AS SELECT email, tax_id FROM public.customers; SELECT * FROM v;',
  },
  { name: 'base table, every column', sql: 'SELECT * FROM public.customers;' },
  { name: 'base table, masked column', sql: 'SELECT email FROM public.customers;' },
  {
    name: 'base table, masked column in WHERE',
    sql: "SELECT id FROM public.customers WHERE email LIKE '%example.com';",
  },
  { name: 'base table whole row', sql: 'SELECT to_jsonb(c) FROM public.customers c;' },
  {
    name: 'DO block reading the base table',
    sql: "DO $$ DECLARE r record; BEGIN FOR r IN SELECT email, tax_id FROM public.customers LOOP RAISE NOTICE '% %', r.email, r.tax_id; END LOOP; END $$;",
  },
  {
    name: 'DO block raising notices',
    sql: "DO $$ BEGIN RAISE NOTICE '%', (SELECT string_agg(email || tax_id || card_number, ',') FROM customers); END $$;",
  },
  { name: 'COPY of a query', sql: 'COPY (SELECT email, card_number, tax_id FROM customers) TO STDOUT;' },
  { name: 'COPY of the base table', sql: 'COPY public.customers TO STDOUT;' },
  { name: 'COPY of the view', sql: 'COPY customers TO STDOUT;' },
  {
    name: 'binary COPY',
    sql: 'COPY (SELECT email, tax_id FROM customers) TO STDOUT WITH (FORMAT binary);',
  },
  { name: 'prepared statement', sql: 'PREPARE p AS SELECT tax_id, email FROM customers; EXECUTE p;' },
  { name: 'the key table', sql: 'SELECT * FROM warden_mask.hmac_key;' },
  {
    name: 'the view definition',
    sql: "SELECT pg_get_viewdef('warden_mask.customers'::regclass);",
    rawOnly: true,
  },
  {
    name: 'statistics',
    sql: "SELECT attname, most_common_vals, histogram_bounds FROM pg_stats WHERE tablename = 'customers';",
    rawOnly: true,
  },
  { name: 'search path reset', sql: 'SET search_path = public; SELECT * FROM customers;' },
  {
    name: 'INSERT … SELECT … RETURNING',
    sql: 'INSERT INTO invoices (customer, amount) SELECT email, 1 FROM customers RETURNING customer;',
    write: true,
  },
  {
    name: 'INSERT … SELECT from the base table',
    sql: 'INSERT INTO invoices (customer, amount) SELECT tax_id, 1 FROM public.customers RETURNING customer;',
    write: true,
  },
  {
    name: 'UPDATE … SET other = masked RETURNING',
    sql: 'UPDATE public.customers SET note = email RETURNING note;',
    write: true,
  },
  {
    name: 'UPDATE through the view',
    sql: 'UPDATE customers SET note = tax_id RETURNING note;',
    write: true,
  },
  {
    name: 'DELETE … RETURNING *',
    sql: 'BEGIN; DELETE FROM public.customers WHERE id = 1 RETURNING *; ROLLBACK;',
    write: true,
  },
];

/** The cells of psql output a reader would take as values (≥ 6 characters, not psql's own tags). */
function cellsOf(output: string): string[] {
  return output
    .split(/[\n|\t]/)
    .map((c) => c.trim())
    .filter(
      (c) =>
        c.length >= 6 &&
        !/^[A-Z][A-Z ]*( \d+)*$/.test(c) &&
        !/^(psql|NOTICE|ERROR|DETAIL|HINT|CONTEXT)/.test(c),
    );
}

describe('masking enforced by the database (issue 15)', () => {
  let cluster: PgCluster;
  let fx: ProxyFixture;
  const asOwner = (sql: string) =>
    psql(
      {
        host: '127.0.0.1',
        port: cluster.port,
        database: fx.database,
        user: cluster.user,
        password: cluster.password,
      },
      sql,
    );
  /** The minted role's own login (what the proxy injects upstream). */
  const direct = async (login: ProxyLogin) => {
    const grant = await fx.broker.app.proxyPorts.grants.lookup('app-db', login.user);
    assert.ok(grant, 'the grant is live');
    const up = grant.upstream;
    return {
      host: up.host,
      port: up.port,
      database: up.database,
      user: up.user,
      password: up.password.reveal(),
    };
  };
  let read: ProxyLogin;
  let write: ProxyLogin;
  /** Unmasked values, which any output may hold. */
  let allowed: Set<string>;

  before(async () => {
    cluster = await startPgCluster();
    fx = await startMaskedProxyFixture(
      cluster,
      {
        'customers.email': 'hash',
        'orders.email': 'hash',
        '*.card_number': 'last4',
        'customers.tax_id': 'hash',
        'customers.note': 'none',
        '*.iban': 'redact',
      },
      MASKING_KEY,
    );
    await execSql(
      cluster,
      fx.database,
      `ALTER TABLE customers ADD COLUMN tax_id text;
       UPDATE customers SET tax_id = CASE id WHEN 1 THEN '123-45-6789' ELSE '987-65-4321' END;
       CREATE TABLE orders (id serial PRIMARY KEY, email text, total int);
       INSERT INTO orders (email, total) VALUES ('ada@example.com', 10), ('ada@example.com', 20), ('bob@example.org', 5);
       ALTER TABLE orders OWNER TO app_owner;
       CREATE VIEW customer_contacts AS SELECT id, email AS contact FROM customers;
       ANALYZE customers;`,
    );
    read = await fx.grant('read');
    write = await fx.grant('write');
    allowed = new Set(
      cellsOf(await asOwner('SELECT id, name, note FROM customers; SELECT * FROM invoices;')),
    );
  });
  after(async () => {
    await fx?.close();
    await cluster?.stop();
  });

  it(`no route shows a raw value or what the owner sees (${CORPUS.length} attempts)`, async () => {
    assert.ok(CORPUS.length >= 40);
    const failures: string[] = [];
    for (const attempt of CORPUS) {
      const owner = (await asOwner(`BEGIN; ${attempt.sql} ROLLBACK;`)).replace(/ROLLBACK|COMMIT/g, '');
      const forbidden = attempt.rawOnly ? RAW : [...RAW, ...cellsOf(owner).filter((c) => !allowed.has(c))];
      const login = attempt.write ? write : read;
      for (const [route, endpoint] of [
        ['proxy', login],
        ['direct', await direct(login)],
      ] as const) {
        const output = await psql(endpoint, attempt.sql);
        const leaked = forbidden.find((f) => output.includes(f));
        if (leaked)
          failures.push(
            `${attempt.name} (${route}): ${JSON.stringify(leaked)} in ${JSON.stringify(output.slice(0, 300))}`,
          );
      }
    }
    assert.deepEqual(failures, []);
  });

  it('the recording and the log hold no raw value', async () => {
    const sessions = await fx.broker.store.listSessions({});
    assert.ok(sessions.length > 0);
    let recorded = JSON.stringify(sessions);
    for (const s of sessions) {
      recorded += JSON.stringify(await fx.broker.store.listSessionEvents(s.id));
      for (const frame of await fx.broker.store.readSessionFrames(s.id))
        recorded += Buffer.from(frame).toString('latin1');
    }
    recorded += JSON.stringify(await fx.broker.store.readAudit({ limit: 10_000 }));
    const logs = fx.broker.logs.lines.join('\n');
    for (const raw of RAW) {
      assert.ok(!recorded.includes(raw), `recording holds ${raw}`);
      assert.ok(!logs.includes(raw), `log holds ${raw}`);
    }
  });

  it('masked values stay useful: last4, stable tokens, joins on hashed columns, unmasked columns as direct', async () => {
    for (const endpoint of [read, await direct(read)]) {
      const cards = await psql(endpoint, 'SELECT card_number FROM customers ORDER BY id;');
      assert.match(cards, /^\*{12}1111\n\*{12}5559\n/);
      const plain = await psql(
        endpoint,
        'SELECT id, name, note FROM customers ORDER BY id; SELECT * FROM invoices ORDER BY id;',
      );
      assert.equal(
        plain,
        await asOwner(
          'SELECT id, name, note FROM customers ORDER BY id; SELECT * FROM invoices ORDER BY id;',
        ),
      );
      // Join and GROUP BY on two hashed columns: the same counts as the owner's join on raw values.
      const joined = await psql(
        endpoint,
        'SELECT c.name, count(*) FROM customers c JOIN orders o ON o.email = c.email GROUP BY c.name ORDER BY c.name;',
      );
      assert.equal(
        joined.trim(),
        await asOwner(
          'SELECT c.name, count(*) FROM customers c JOIN orders o ON o.email = c.email GROUP BY c.name ORDER BY c.name;',
        ).then((s) => s.trim()),
      );
    }
    const tokens = new Set<string>();
    for (const endpoint of [read, write, await direct(read), await direct(write)]) {
      tokens.add(await psql(endpoint, 'SELECT email, tax_id FROM customers ORDER BY id;'));
    }
    assert.equal(tokens.size, 1, 'one token per value across grants and routes');
    // The database's token is the proxy's (proxy/masking/styles.ts) for the same key.
    const key = new MaskingKey(Buffer.from(MASKING_KEY));
    assert.ok(
      [...tokens][0]!.startsWith(`${key.tokenize('ada@example.com')}|${key.tokenize('123-45-6789')}\n`),
    );
    assert.match([...tokens][0]!, /^tok_[0-9a-f]{16}\|tok_[0-9a-f]{16}\n/);
  });

  it('last4 in the database renders as the proxy does', async () => {
    const samples = [
      '4111111111111111',
      '4242 4242 4242 4242',
      '4242-4242-4242-424',
      'AB12 3456 7890 12',
      '1234567',
      '12345678',
      'card: 4111 1111 1111 1111.',
      'ZoëZoë 1234 5678',
      '',
      '---',
      'abc def',
      'DE89 3704 0044 0532 0130 00',
    ];
    const [result] = await execSql(
      cluster,
      fx.database,
      `SELECT warden_mask.last4(v) AS m FROM unnest(ARRAY[${samples.map((v) => `'${v}'`).join(', ')}]) WITH ORDINALITY AS s(v, i) ORDER BY i`,
    );
    assert.deepEqual(
      result!.rows.map((r: { m: string }) => r.m),
      samples.map((v) => keepLast4(v)),
    );
  });

  it('a view over a masked column is not granted; a column added to a masked table is denied until the next look', async () => {
    const login = await direct(read);
    assert.match(await psql(login, 'SELECT * FROM customer_contacts;'), /permission denied/);
    await execSql(
      cluster,
      fx.database,
      `ALTER TABLE customers ADD COLUMN iban text DEFAULT 'DE89370400440532013000';
       ALTER TABLE invoices ADD COLUMN card_number text DEFAULT '4000000000000002';`,
    );
    assert.match(await psql(login, 'SELECT iban FROM public.customers;'), /permission denied/);
    assert.doesNotMatch(await psql(login, 'SELECT * FROM customers;'), /DE89/);
    // The next look (the sweeper's upkeep, every minute) rebuilds the views: masked, not raw.
    await fx.broker.app.providers.get('app-db')!.maintain?.();
    assert.match(await psql(login, 'SELECT iban FROM customers;'), /^\[REDACTED\]\n/);
    assert.match(await psql(login, 'SELECT card_number FROM invoices ORDER BY id;'), /^\*{12}0002\n/);
    assert.match(await psql(login, 'SELECT card_number FROM public.invoices;'), /permission denied/);
  });

  it('refuses a level whose inherited role reads a masked column itself, naming target, level and rule', async () => {
    const provider = fx.broker.app.providers.get('app-db')!;
    await assert.rejects(provider.assertMaskingEnforced!(), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'ERR_CONFIG_INVALID', error.message);
      assert.match(error.message, /targets\.app-db\.levels\.owner\.allow_unenforced_masking/);
      assert.match(
        error.message,
        /level owner, rule customers\.email: inherited role "?app_owner"? may read public\.customers\.email/,
      );
      assert.doesNotMatch(error.message, /level (read|write),/);
      return true;
    });
  });
});
