import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import { inspect } from 'node:util';
import { PgAuthError, type PgAuthErrorCode } from '../../../../proxy/pg/auth/errors.ts';
import { prepareScramPassword } from '../../../../proxy/pg/auth/saslprep.ts';
import {
  createMockScramVerifier,
  createScramVerifier,
  formatScramVerifier,
  parseScramVerifier,
  ScramClientSession,
  ScramServerSession,
} from '../../../../proxy/pg/auth/scram.ts';

// RFC 7677 §3.
const RFC = {
  password: 'pencil',
  clientNonce: 'rOprNGfwEbeRWgbNEkqO',
  serverNonce: '%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0',
  salt: Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64'),
  clientFirst: 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO',
  serverFirst: 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
  clientFinal:
    'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
  serverFinal: 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
};

/** The `pg` npm client's own SCRAM implementation, driven without a socket. */
interface PgSasl {
  startSession(mechanisms: string[]): { response: string };
  continueSession(session: object, password: string, serverData: string): Promise<void>;
  finalizeSession(session: object, serverData: string): void;
}
const pgSasl = createRequire(import.meta.url)('pg/lib/crypto/sasl.js') as PgSasl;

function assertCode(fn: () => unknown, code: PgAuthErrorCode): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof PgAuthError, `expected PgAuthError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    return true;
  });
}

const rfcServer = () =>
  new ScramServerSession(
    { verifier: createScramVerifier(RFC.password, { salt: RFC.salt }) },
    { nonce: RFC.serverNonce },
  );

describe('SCRAM-SHA-256 against the RFC 7677 test vector', () => {
  it('the client produces the RFC messages and accepts the RFC server signature', () => {
    const client = new ScramClientSession(RFC.password, { username: 'user', nonce: RFC.clientNonce });
    assert.equal(client.createClientFirst(), RFC.clientFirst);
    assert.equal(client.handleServerFirst(RFC.serverFirst), RFC.clientFinal);
    client.verifyServerFinal(RFC.serverFinal);
  });

  it('the server produces the RFC messages and accepts the RFC proof', () => {
    const server = rfcServer();
    assert.equal(server.handleClientFirst(Buffer.from(RFC.clientFirst)), RFC.serverFirst);
    assert.equal(server.handleClientFinal(Buffer.from(RFC.clientFinal)), RFC.serverFinal);
    assert.equal(server.authenticated, true);
  });
});

describe('SCRAM-SHA-256 server against clients', () => {
  it('accepts our own client, from a password and from a stored verifier', () => {
    const verifier = createScramVerifier('s3cret-otp');
    for (const server of [
      new ScramServerSession({ password: 's3cret-otp' }),
      new ScramServerSession({ verifier }),
    ]) {
      const client = new ScramClientSession('s3cret-otp');
      const serverFirst = server.handleClientFirst(client.createClientFirst());
      const serverFinal = server.handleClientFinal(client.handleServerFirst(serverFirst));
      client.verifyServerFinal(serverFinal);
      assert.equal(server.authenticated, true);
    }
  });

  /** Runs the pg client's SCRAM steps against `server` up to its client-final message. */
  async function pgClientFinal(
    server: ScramServerSession,
    password: string,
  ): Promise<{ session: object; final: string }> {
    const session = pgSasl.startSession(['SCRAM-SHA-256']);
    await pgSasl.continueSession(session, password, server.handleClientFirst(session.response));
    return { session, final: (session as { response: string }).response };
  }

  it("accepts the pg npm client's SCRAM implementation", async () => {
    const server = new ScramServerSession({ password: 'pässwörd ﬁ' });
    const { session, final } = await pgClientFinal(server, 'pässwörd ﬁ');
    pgSasl.finalizeSession(session, server.handleClientFinal(final));
    assert.equal(server.authenticated, true);
  });

  it('refuses the pg npm client with a wrong password: ERR_PG_AUTH_FAILED with a generic message', async () => {
    const server = new ScramServerSession({ password: 'right' });
    const { final } = await pgClientFinal(server, 'wrong');
    assert.throws(
      () => server.handleClientFinal(final),
      (e: unknown) =>
        e instanceof PgAuthError &&
        e.code === 'ERR_PG_AUTH_FAILED' &&
        e.message === 'password authentication failed',
    );
    assert.equal(server.authenticated, false);
  });

  it('refuses our client with a wrong password, and the client refuses a server without the verifier', () => {
    const server = new ScramServerSession({ password: 'right' });
    const client = new ScramClientSession('wrong');
    const clientFinal = client.handleServerFirst(server.handleClientFirst(client.createClientFirst()));
    assertCode(() => server.handleClientFinal(clientFinal), 'ERR_PG_AUTH_FAILED');

    const impostor = new ScramServerSession({ password: 'not-the-password' });
    const honest = new ScramClientSession('the-password');
    const serverFirst = impostor.handleClientFirst(honest.createClientFirst());
    honest.handleServerFirst(serverFirst);
    assertCode(
      () => honest.verifyServerFinal('v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4='),
      'ERR_PG_AUTH_SERVER_SIGNATURE',
    );
  });

  const badClientFirst: [string, string, PgAuthErrorCode][] = [
    [
      'channel binding p=tls-server-end-point',
      'p=tls-server-end-point,,n=,r=abc',
      'ERR_PG_AUTH_CHANNEL_BINDING',
    ],
    ['an unknown gs2 flag', 'x,,n=,r=abc', 'ERR_PG_AUTH_MALFORMED'],
    ['no comma at all', 'n', 'ERR_PG_AUTH_MALFORMED'],
    ['an authorization identity', 'n,a=admin,n=,r=abc', 'ERR_PG_AUTH_MALFORMED'],
    ['a missing nonce', 'n,,n=', 'ERR_PG_AUTH_MALFORMED'],
    ['attributes out of order', 'n,,r=abc,n=', 'ERR_PG_AUTH_MALFORMED'],
    ['a mandatory extension', 'n,,m=ext,r=abc', 'ERR_PG_AUTH_MALFORMED'],
    ['an extra attribute', 'n,,n=,r=abc,x=1', 'ERR_PG_AUTH_MALFORMED'],
    ['an empty nonce', 'n,,n=,r=', 'ERR_PG_AUTH_MALFORMED'],
    ['a nonce with a space', 'n,,n=,r=a b', 'ERR_PG_AUTH_MALFORMED'],
    ['a NUL byte', 'n,,n=,r=a\0b', 'ERR_PG_AUTH_MALFORMED'],
    ['an empty message', '', 'ERR_PG_AUTH_MALFORMED'],
  ];
  for (const [name, message, code] of badClientFirst) {
    it(`refuses a client-first message with ${name}: ${code}`, () =>
      assertCode(() => new ScramServerSession({ password: 'x' }).handleClientFirst(message), code));
  }

  const nonce = 'rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0';
  const badClientFinal: [string, string, PgAuthErrorCode][] = [
    ['no proof', `c=biws,r=${nonce}`, 'ERR_PG_AUTH_MALFORMED'],
    ['another channel binding header', `c=eSws,r=${nonce},p=AAAA`, 'ERR_PG_AUTH_MALFORMED'],
    [
      'a different nonce',
      'c=biws,r=rOprNGfwEbeRWgbNEkqOxx,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
      'ERR_PG_AUTH_NONCE',
    ],
    ['a proof that is not base64', `c=biws,r=${nonce},p=!!!!`, 'ERR_PG_AUTH_MALFORMED'],
    ['a short proof', `c=biws,r=${nonce},p=AAAA`, 'ERR_PG_AUTH_MALFORMED'],
    ['a wrong proof', `c=biws,r=${nonce},p=${Buffer.alloc(32, 1).toString('base64')}`, 'ERR_PG_AUTH_FAILED'],
    [
      'missing channel binding',
      `r=${nonce},p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=`,
      'ERR_PG_AUTH_MALFORMED',
    ],
  ];
  for (const [name, message, code] of badClientFinal) {
    it(`refuses a client-final message with ${name}: ${code}`, () => {
      const server = rfcServer();
      server.handleClientFirst(RFC.clientFirst);
      assertCode(() => server.handleClientFinal(message), code);
      assert.equal(server.authenticated, false);
    });
  }

  it('refuses messages out of order, and any message after a failure: ERR_PG_AUTH_STATE', () => {
    assertCode(() => rfcServer().handleClientFinal(RFC.clientFinal), 'ERR_PG_AUTH_STATE');
    const server = rfcServer();
    assertCode(() => server.handleClientFirst('p=x,,n=,r=a'), 'ERR_PG_AUTH_CHANNEL_BINDING');
    assertCode(() => server.handleClientFirst(RFC.clientFirst), 'ERR_PG_AUTH_STATE');
    const done = rfcServer();
    done.handleClientFirst(RFC.clientFirst);
    done.handleClientFinal(RFC.clientFinal);
    assertCode(() => done.handleClientFinal(RFC.clientFinal), 'ERR_PG_AUTH_STATE');
  });
});

describe('SCRAM-SHA-256 client refuses bad server messages', () => {
  const client = () => {
    const c = new ScramClientSession(RFC.password, {
      username: 'user',
      nonce: RFC.clientNonce,
      maxIterations: 10_000,
    });
    c.createClientFirst();
    return c;
  };
  const cases: [string, string, PgAuthErrorCode][] = [
    ['a nonce not extending ours', 'r=XXXX%hvY,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096', 'ERR_PG_AUTH_NONCE'],
    ['a nonce equal to ours', `r=${RFC.clientNonce},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096`, 'ERR_PG_AUTH_NONCE'],
    ['a salt that is not base64', `r=${RFC.clientNonce}x,s=***,i=4096`, 'ERR_PG_AUTH_MALFORMED'],
    ['an empty salt', `r=${RFC.clientNonce}x,s=,i=4096`, 'ERR_PG_AUTH_MALFORMED'],
    ['zero iterations', `r=${RFC.clientNonce}x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0`, 'ERR_PG_AUTH_ITERATIONS'],
    [
      'too many iterations',
      `r=${RFC.clientNonce}x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=10001`,
      'ERR_PG_AUTH_ITERATIONS',
    ],
    [
      'iterations that are not a number',
      `r=${RFC.clientNonce}x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4e3`,
      'ERR_PG_AUTH_ITERATIONS',
    ],
    [
      'a mandatory extension',
      `m=x,r=${RFC.clientNonce}x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096`,
      'ERR_PG_AUTH_MALFORMED',
    ],
    ['a missing attribute', `r=${RFC.clientNonce}x,i=4096`, 'ERR_PG_AUTH_MALFORMED'],
  ];
  for (const [name, message, code] of cases) {
    it(`refuses a server-first message with ${name}: ${code}`, () =>
      assertCode(() => client().handleServerFirst(message), code));
  }

  const finals: [string, string, PgAuthErrorCode][] = [
    ['an e= error', 'e=invalid-proof', 'ERR_PG_AUTH_FAILED'],
    ['a wrong signature', `v=${Buffer.alloc(32).toString('base64')}`, 'ERR_PG_AUTH_SERVER_SIGNATURE'],
    ['a short signature', 'v=AAAA', 'ERR_PG_AUTH_SERVER_SIGNATURE'],
    ['garbage', 'hello', 'ERR_PG_AUTH_MALFORMED'],
  ];
  for (const [name, message, code] of finals) {
    it(`refuses a server-final message with ${name}: ${code}`, () => {
      const c = client();
      c.handleServerFirst(RFC.serverFirst);
      assertCode(() => c.verifyServerFinal(message), code);
    });
  }

  it('refuses steps out of order: ERR_PG_AUTH_STATE', () => {
    assertCode(() => new ScramClientSession('x').handleServerFirst(RFC.serverFirst), 'ERR_PG_AUTH_STATE');
    assertCode(() => client().verifyServerFinal(RFC.serverFinal), 'ERR_PG_AUTH_STATE');
  });

  it('escapes = and , in the username', () => {
    const c = new ScramClientSession('x', { username: 'a=b,c', nonce: 'abc' });
    assert.equal(c.createClientFirst(), 'n,,n=a=3Db=2Cc,r=abc');
  });

  it('draws its nonce from the injected randomness', () => {
    const c = new ScramClientSession('x', { randomBytes: (n) => Buffer.alloc(n, 7) });
    assert.equal(c.createClientFirst(), `n,,n=,r=${Buffer.alloc(18, 7).toString('base64')}`);
  });
});

describe('SCRAM verifiers', () => {
  it('formats and parses the PostgreSQL verifier string', () => {
    const verifier = createScramVerifier(RFC.password, { salt: RFC.salt });
    const text = formatScramVerifier(verifier);
    assert.match(
      text,
      /^SCRAM-SHA-256\$4096:W22ZaJ0SNY7soEsUEjb6gQ==\$[A-Za-z0-9+/=]{44}:[A-Za-z0-9+/=]{44}$/,
    );
    assert.deepEqual(parseScramVerifier(text), verifier);
  });

  const bad = [
    'md5abc',
    'SCRAM-SHA-256$0:c2FsdA==$AAAA:AAAA',
    'SCRAM-SHA-256$4096:c2FsdA==$AAAA:AAAA',
    `SCRAM-SHA-256$4096:***$${'A'.repeat(43)}=:${'A'.repeat(43)}=`,
    `SCRAM-SHA-256$99999999999:c2FsdA==$${'A'.repeat(43)}=:${'A'.repeat(43)}=`,
    '',
  ];
  for (const text of bad) {
    it(`refuses ${JSON.stringify(text.slice(0, 40))}: ERR_PG_AUTH_VERIFIER_INVALID`, () =>
      assertCode(() => parseScramVerifier(text), 'ERR_PG_AUTH_VERIFIER_INVALID'));
  }

  it('mock verifiers for unknown users have a stable salt per name and accept no password', () => {
    const secret = Buffer.alloc(32, 3);
    const alice = createMockScramVerifier('alice', secret);
    assert.deepEqual(createMockScramVerifier('alice', secret), alice);
    assert.notDeepEqual(createMockScramVerifier('bob', secret).salt, alice.salt);
    assert.notDeepEqual(createMockScramVerifier('alice', Buffer.alloc(32, 4)).salt, alice.salt);
    const server = new ScramServerSession({ verifier: alice });
    const client = new ScramClientSession('any password');
    const final = client.handleServerFirst(server.handleClientFirst(client.createClientFirst()));
    assertCode(() => server.handleClientFinal(final), 'ERR_PG_AUTH_FAILED');
    assertCode(() => createMockScramVerifier('alice', Buffer.alloc(8)), 'ERR_PG_AUTH_VERIFIER_INVALID');
  });

  it('sessions never print the password or the verifier keys', () => {
    const client = new ScramClientSession('hunter2-secret');
    const server = new ScramServerSession({ password: 'hunter2-secret' });
    const printed = inspect([client, server], { depth: 5, showHidden: true });
    assert.ok(!printed.includes('hunter2'), printed);
    assert.ok(!printed.includes('storedKey'), printed);
  });

  it('refuses zero iterations when creating one', () =>
    assertCode(() => createScramVerifier('x', { iterations: 0 }), 'ERR_PG_AUTH_ITERATIONS'));
});

describe('SASLprep of passwords', () => {
  const table: [string, string, string][] = [
    ['ASCII unchanged', 'pencil', 'pencil'],
    ['ASCII control characters kept (fast path)', 'a\u0007b', 'a\u0007b'],
    ['soft hyphen mapped to nothing (RFC 4013 example)', 'I\u00ADX', 'IX'],
    ['non-ASCII space mapped to space', 'a\u00A0b', 'a b'],
    ['NFKC: feminine ordinal', '\u00AA', 'a'],
    ['NFKC: roman numeral nine', '\u2168', 'IX'],
    ['NFKC: ligature', 'ﬁ', 'fi'],
    ['already normal non-ASCII kept', 'pässwörd', 'pässwörd'],
    ['prohibited control character: raw password', 'ü\u0007', 'ü\u0007'],
    ['private use character: raw password', 'ü\uE000', 'ü\uE000'],
    ['only mapped-to-nothing characters: raw password', '\u00AD', '\u00AD'],
  ];
  for (const [name, input, expected] of table) {
    it(name, () => assert.equal(prepareScramPassword(input), expected));
  }
});
