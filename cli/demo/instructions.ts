/** The text `npm start` prints before the console opens: what runs, and what to type, in order. */

/** What the instructions need to know about the running demo. */
export interface DemoFacts {
  /** Grant duration the newcomer asks for (`--demo-ttl`, default 30m). */
  ttl: string;
  /** Where the recording proxy listens (`host:port`). */
  proxy: string;
  database: string;
  /** `PostgreSQL 15` or the embedded one. */
  databaseLabel: string;
  /** True with the PGlite fallback: it enforces neither roles nor passwords. */
  embedded: boolean;
  /** False when no `openssl` was found: the proxy then takes plaintext connections. */
  tls: boolean;
  /** True when `psql` is on the PATH. */
  hasPsql: boolean;
  /** The demo's configuration file (for `warden sessions` / `warden replay`). */
  configFile: string;
  /** The demo's temporary directory, removed at exit. */
  dir: string;
  /** The broker API's URL. */
  apiUrl: string;
}

/** Lines to print at start-up (pure: tests compare them). */
export function formatDemoInstructions(facts: DemoFacts): string[] {
  const [host, port] = facts.proxy.split(':') as [string, string];
  const psql = `psql "host=${host} port=${port} dbname=${facts.database} user=<user from the DM>"`;
  const helper = `npm run -s warden -- psql "postgres://<user from the DM>@${host}:${port}/${facts.database}"`;
  const lines = [
    '',
    'Warden demo is running: the broker, the console chat, and a recording proxy in front of a',
    `${facts.databaseLabel} database with a customers table (emails, card numbers).`,
  ];
  if (facts.embedded) {
    lines.push(
      'Note: no PostgreSQL 15 here, so the database is PGlite (PostgreSQL in WebAssembly). PGlite has',
      'one user and checks no password: the roles Warden mints are not enforced behind the proxy, but',
      'the proxy still checks your grant, masks, blocks and records. Install postgresql-15 for the real thing.',
    );
  }
  if (!facts.tls) lines.push('Note: openssl was not found, so the proxy accepts connections without TLS.');
  lines.push(
    '',
    'You are alice. Type these lines, in order:',
    `  ${`/access demo-db ${facts.ttl} trying warden`.padEnd(36)}ask for access`,
    '  as maria                            become alice’s manager',
    '  approve <id>                        the id is in the request above',
    '  as alice                            read the DM: proxy host, port, user and password',
    '',
    'Then, in a second terminal (the password is in the DM):',
    facts.hasPsql ? `  ${psql}` : `  ${helper}`,
  );
  if (facts.hasPsql) lines.push(`  (or, without psql: ${helper})`);
  lines.push(
    '  SELECT * FROM customers;            emails and card numbers come back masked',
    '  DROP TABLE customers;               refused by the rule drop-table',
    '',
    'Replay the session (second terminal):',
    `  export WARDEN_CONFIG=${facts.configFile}`,
    '  npm run -s warden -- sessions list',
    '  npm run -s warden -- replay <session id>',
    '',
    `The grant expires after ${facts.ttl} and psql is disconnected${facts.ttl === '30m' ? ' (npm start -- --demo-ttl 2m to watch it sooner)' : ''}.`,
    `Ctrl-C or quit stops everything and removes ${facts.dir}.`,
    `(Broker API: ${facts.apiUrl}, its admin token in ${facts.dir}/admin-token; logs go to stderr.)`,
    '',
  );
  return lines;
}
