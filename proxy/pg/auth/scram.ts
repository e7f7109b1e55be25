/**
 * SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL speaks it, as pure state objects: the proxy is
 * the server to its clients ({@link ScramServerSession}) and a client to the upstream server
 * ({@link ScramClientSession}). No channel binding: `n,,` and `y,,` are accepted, `p=` is refused.
 * Randomness is injectable; PBKDF2 runs synchronously (only when a password, not a stored
 * verifier, is given, and on the client side).
 */
import {
  createHash,
  createHmac,
  randomBytes as cryptoRandomBytes,
  pbkdf2Sync,
  timingSafeEqual,
} from 'node:crypto';
import {
  PgAuthError,
  ScramAuthenticationFailedError,
  ScramChannelBindingError,
  ScramMalformedError,
} from './errors.ts';
import { prepareScramPassword } from './saslprep.ts';

/** The SASL mechanism name. */
export const SCRAM_SHA_256 = 'SCRAM-SHA-256';

/** Defaults of SCRAM options, in one place. */
export const SCRAM_DEFAULTS = {
  /** PBKDF2 iterations of new verifiers (PostgreSQL's scram_iterations default). */
  iterations: 4096,
  /** Salt length in bytes of new verifiers (PostgreSQL's SCRAM_DEFAULT_SALT_LEN). */
  saltLength: 16,
  /** Random bytes in a nonce before base64 (PostgreSQL's SCRAM_RAW_NONCE_LEN). */
  nonceLength: 18,
  /** Most PBKDF2 iterations the client accepts from a server (the `pg` client's default). */
  maxIterations: 100_000,
} as const;

const KEY_LENGTH = 32;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
/** RFC 5802 `printable`: %x21-2B / %x2D-7E. */
const PRINTABLE = /^[\x21-\x2b\x2d-\x7e]+$/;

/** Supplies random bytes; tests inject a deterministic one. */
export type RandomBytes = (size: number) => Buffer;

/** What a server stores instead of a password (pg_authid.rolpassword for SCRAM). */
export interface ScramVerifier {
  iterations: number;
  salt: Buffer;
  storedKey: Buffer;
  serverKey: Buffer;
}

function hmac(key: Buffer, text: string): Buffer {
  return createHmac('sha256', key).update(text, 'utf8').digest();
}

function sha256(data: Buffer): Buffer {
  return createHash('sha256').update(data).digest();
}

function saltPassword(password: string, salt: Buffer, iterations: number): Buffer {
  return pbkdf2Sync(prepareScramPassword(password), salt, iterations, KEY_LENGTH, 'sha256');
}

function deriveKeys(saltedPassword: Buffer): { clientKey: Buffer; storedKey: Buffer; serverKey: Buffer } {
  const clientKey = hmac(saltedPassword, 'Client Key');
  return { clientKey, storedKey: sha256(clientKey), serverKey: hmac(saltedPassword, 'Server Key') };
}

/** Builds a SCRAM verifier for a password; salt and iterations default as PostgreSQL does. */
export function createScramVerifier(
  password: string,
  options: { salt?: Buffer; iterations?: number; randomBytes?: RandomBytes } = {},
): ScramVerifier {
  const iterations = options.iterations ?? SCRAM_DEFAULTS.iterations;
  if (!Number.isInteger(iterations) || iterations < 1) {
    throw new PgAuthError('ERR_PG_AUTH_ITERATIONS', 'iterations must be a positive integer', {
      details: { iterations },
    });
  }
  const salt = options.salt ?? (options.randomBytes ?? cryptoRandomBytes)(SCRAM_DEFAULTS.saltLength);
  const { storedKey, serverKey } = deriveKeys(saltPassword(password, salt, iterations));
  return { iterations, salt, storedKey, serverKey };
}

/**
 * Builds a stable fake verifier for a user that does not exist, as PostgreSQL does
 * (scram_mock_salt): the same name always gets the same salt, so a probe cannot tell an unknown
 * user from a wrong password. `secret` is a server-wide random value of at least 16 bytes, kept for
 * the life of the deployment. No password matches it.
 */
export function createMockScramVerifier(username: string, secret: Buffer): ScramVerifier {
  if (secret.length < 16) {
    throw new PgAuthError(
      'ERR_PG_AUTH_VERIFIER_INVALID',
      'the mock verifier secret must be at least 16 bytes',
    );
  }
  const derive = (label: string) =>
    createHmac('sha256', secret).update(`${label}\0${username}`, 'utf8').digest();
  return {
    iterations: SCRAM_DEFAULTS.iterations,
    salt: derive('salt').subarray(0, SCRAM_DEFAULTS.saltLength),
    storedKey: derive('stored-key'),
    serverKey: derive('server-key'),
  };
}

/** Formats a verifier as PostgreSQL stores it: `SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>`. */
export function formatScramVerifier(verifier: ScramVerifier): string {
  const b64 = (b: Buffer) => b.toString('base64');
  return `${SCRAM_SHA_256}$${verifier.iterations}:${b64(verifier.salt)}$${b64(verifier.storedKey)}:${b64(verifier.serverKey)}`;
}

/** Parses a PostgreSQL SCRAM verifier string; anything else is `ERR_PG_AUTH_VERIFIER_INVALID`. */
export function parseScramVerifier(text: string): ScramVerifier {
  const match = /^SCRAM-SHA-256\$([1-9][0-9]{0,9}):([^$:]+)\$([^$:]+):([^$:]+)$/.exec(text);
  const invalid = () => new PgAuthError('ERR_PG_AUTH_VERIFIER_INVALID', 'not a SCRAM-SHA-256 verifier');
  if (!match) throw invalid();
  const iterations = Number(match[1]);
  const [salt, storedKey, serverKey] = [match[2]!, match[3]!, match[4]!].map((part) =>
    BASE64.test(part) ? Buffer.from(part, 'base64') : undefined,
  );
  if (!salt?.length || storedKey?.length !== KEY_LENGTH || serverKey?.length !== KEY_LENGTH) throw invalid();
  if (iterations > 0x7fffffff) throw invalid();
  return { iterations, salt, storedKey, serverKey };
}

function createNonce(random: RandomBytes): string {
  return random(SCRAM_DEFAULTS.nonceLength).toString('base64');
}

function asText(message: Buffer | string, what: string): string {
  const text = typeof message === 'string' ? message : message.toString('utf8');
  if (text.includes('\0')) throw new ScramMalformedError(`${what} contains a NUL byte`);
  return text;
}

/**
 * Splits `a=value,b=value` into attributes, requiring the given names in that order; values may
 * contain `=` but not `,`. Extensions are refused: PostgreSQL's clients never send them.
 */
function readAttributes(text: string, names: readonly string[], what: string): Map<string, string> {
  const parts = text.split(',');
  if (parts.length !== names.length) {
    throw new ScramMalformedError(`${what}: expected attributes ${names.join(',')}`, { count: parts.length });
  }
  const attributes = new Map<string, string>();
  parts.forEach((part, i) => {
    if (part[1] !== '=' || part[0] !== names[i]) {
      if (part[0] === 'm' && part[1] === '=') {
        throw new ScramMalformedError(`${what}: mandatory extensions are not supported`);
      }
      throw new ScramMalformedError(`${what}: expected attribute '${names[i]}'`, { index: i });
    }
    attributes.set(names[i]!, part.slice(2));
  });
  return attributes;
}

function decodeBase64(value: string, what: string): Buffer {
  if (!BASE64.test(value)) throw new ScramMalformedError(`${what} is not valid base64`);
  return Buffer.from(value, 'base64');
}

function checkNonce(nonce: string, what: string): void {
  if (!PRINTABLE.test(nonce))
    throw new ScramMalformedError(`${what}: nonce must be printable ASCII without commas`);
}

function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.allocUnsafe(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i]!;
  return out;
}

function escapeUsername(name: string): string {
  return name.replace(/=/g, '=3D').replace(/,/g, '=2C');
}

/** Options of {@link ScramServerSession}. */
export interface ScramServerOptions {
  /** Server nonce part, for tests reproducing RFC vectors; otherwise random. */
  nonce?: string;
  randomBytes?: RandomBytes;
}

type ServerState = 'start' | 'sentServerFirst' | 'done' | 'failed';

/**
 * The server side of one SCRAM-SHA-256 exchange: `handleClientFirst` (SASLInitialResponse data)
 * returns the server-first message (send in AuthenticationSASLContinue); `handleClientFinal`
 * (SASLResponse data) checks the proof in constant time and returns the server-final message
 * (send in AuthenticationSASLFinal, then AuthenticationOk) or throws `ERR_PG_AUTH_FAILED`.
 *
 * The username in the client-first message is ignored, as PostgreSQL does (the startup packet's
 * `user` counts). Give each user a stable verifier (build it once with {@link createScramVerifier}
 * and keep it: a `{ password }` credential draws a new salt per session, which both costs a PBKDF2
 * per login and differs from the fixed salt of an unknown user); for an unknown user run the
 * exchange with {@link createMockScramVerifier} so the failure looks like a wrong password.
 */
export class ScramServerSession {
  readonly #verifier: ScramVerifier;
  private readonly random: RandomBytes;
  private readonly serverNonce: string | undefined;
  private state: ServerState = 'start';
  private gs2Header = '';
  private clientFirstBare = '';
  private serverFirst = '';
  private nonce = '';

  constructor(
    credential: { verifier: ScramVerifier } | { password: string },
    options: ScramServerOptions = {},
  ) {
    this.random = options.randomBytes ?? cryptoRandomBytes;
    this.#verifier =
      'verifier' in credential
        ? credential.verifier
        : createScramVerifier(credential.password, { randomBytes: this.random });
    this.serverNonce = options.nonce;
  }

  /** Reads the client-first message and returns the server-first message. */
  handleClientFirst(message: Buffer | string): string {
    this.expectState('start');
    this.state = 'failed';
    const text = asText(message, 'client-first message');
    const flagEnd = text.indexOf(',');
    const flag = flagEnd < 0 ? '' : text.slice(0, flagEnd);
    if (flag.startsWith('p=')) {
      throw new ScramChannelBindingError('channel binding is not supported; connect without it');
    }
    if (flag !== 'n' && flag !== 'y') throw new ScramMalformedError('client-first message: invalid gs2 flag');
    const authzEnd = text.indexOf(',', flagEnd + 1);
    if (authzEnd < 0) throw new ScramMalformedError('client-first message: missing authzid field');
    if (authzEnd !== flagEnd + 1) {
      throw new ScramMalformedError('client-first message: authorization identity is not supported');
    }
    this.gs2Header = text.slice(0, authzEnd + 1);
    this.clientFirstBare = text.slice(authzEnd + 1);
    const attributes = readAttributes(this.clientFirstBare, ['n', 'r'], 'client-first message');
    const clientNonce = attributes.get('r')!;
    checkNonce(clientNonce, 'client-first message');
    this.nonce = clientNonce + (this.serverNonce ?? createNonce(this.random));
    this.serverFirst = `r=${this.nonce},s=${this.#verifier.salt.toString('base64')},i=${this.#verifier.iterations}`;
    this.state = 'sentServerFirst';
    return this.serverFirst;
  }

  /** Verifies the client-final message and returns the server-final message. */
  handleClientFinal(message: Buffer | string): string {
    this.expectState('sentServerFirst');
    this.state = 'failed';
    const text = asText(message, 'client-final message');
    const proofAt = text.lastIndexOf(',p=');
    if (proofAt < 0) throw new ScramMalformedError('client-final message: missing proof');
    const withoutProof = text.slice(0, proofAt);
    const attributes = readAttributes(withoutProof, ['c', 'r'], 'client-final message');
    if (attributes.get('c') !== Buffer.from(this.gs2Header).toString('base64')) {
      throw new ScramMalformedError('client-final message: channel binding data does not match');
    }
    if (attributes.get('r') !== this.nonce)
      throw new PgAuthError('ERR_PG_AUTH_NONCE', 'nonce does not match');
    const proof = decodeBase64(text.slice(proofAt + 3), 'client proof');
    if (proof.length !== KEY_LENGTH) throw new ScramMalformedError('client proof has the wrong length');
    const authMessage = `${this.clientFirstBare},${this.serverFirst},${withoutProof}`;
    const clientSignature = hmac(this.#verifier.storedKey, authMessage);
    const storedKey = sha256(xor(proof, clientSignature));
    if (!timingSafeEqual(storedKey, this.#verifier.storedKey)) throw new ScramAuthenticationFailedError();
    this.state = 'done';
    return `v=${hmac(this.#verifier.serverKey, authMessage).toString('base64')}`;
  }

  /** True once the client has proven it knows the password. */
  get authenticated(): boolean {
    return this.state === 'done';
  }

  private expectState(expected: ServerState): void {
    if (this.state !== expected) {
      throw new PgAuthError('ERR_PG_AUTH_STATE', `SCRAM message out of order (state ${this.state})`);
    }
  }
}

/** Options of {@link ScramClientSession}. */
export interface ScramClientOptions {
  /** Username sent in client-first; PostgreSQL ignores it, libpq sends ''. Default ''. */
  username?: string;
  /** Client nonce, for tests reproducing RFC vectors; otherwise random. */
  nonce?: string;
  randomBytes?: RandomBytes;
  /** Most iterations accepted from the server. Default {@link SCRAM_DEFAULTS.maxIterations}. */
  maxIterations?: number;
}

type ClientState = 'start' | 'sentClientFirst' | 'sentClientFinal' | 'done' | 'failed';

/**
 * The client side of one SCRAM-SHA-256 exchange, for the proxy's upstream login:
 * `createClientFirst` (send in SASLInitialResponse with {@link SCRAM_SHA_256}),
 * `handleServerFirst` (AuthenticationSASLContinue data) returns the client-final message (send in
 * SASLResponse), `verifyServerFinal` (AuthenticationSASLFinal data) checks the server signature.
 */
export class ScramClientSession {
  private readonly clientNonce: string;
  private readonly username: string;
  private readonly maxIterations: number;
  private state: ClientState = 'start';
  // ES private fields: util.inspect and console.log never show them.
  readonly #password: string;
  #expectedServerSignature: Buffer = Buffer.alloc(0);

  constructor(password: string, options: ScramClientOptions = {}) {
    this.#password = password;
    this.clientNonce = options.nonce ?? createNonce(options.randomBytes ?? cryptoRandomBytes);
    checkNonce(this.clientNonce, 'client nonce');
    this.username = options.username ?? '';
    this.maxIterations = options.maxIterations ?? SCRAM_DEFAULTS.maxIterations;
  }

  private get clientFirstBare(): string {
    return `n=${escapeUsername(this.username)},r=${this.clientNonce}`;
  }

  /** Returns the client-first message. */
  createClientFirst(): string {
    this.expectState('start');
    this.state = 'sentClientFirst';
    return `n,,${this.clientFirstBare}`;
  }

  /** Reads the server-first message and returns the client-final message. */
  handleServerFirst(message: Buffer | string): string {
    this.expectState('sentClientFirst');
    this.state = 'failed';
    const serverFirst = asText(message, 'server-first message');
    const attributes = readAttributes(serverFirst, ['r', 's', 'i'], 'server-first message');
    const nonce = attributes.get('r')!;
    checkNonce(nonce, 'server-first message');
    if (!nonce.startsWith(this.clientNonce) || nonce.length === this.clientNonce.length) {
      throw new PgAuthError('ERR_PG_AUTH_NONCE', 'server nonce does not extend the client nonce');
    }
    const salt = decodeBase64(attributes.get('s')!, 'salt');
    if (salt.length === 0) throw new ScramMalformedError('server-first message: empty salt');
    const iterationText = attributes.get('i')!;
    const iterations = /^[1-9][0-9]{0,9}$/.test(iterationText) ? Number(iterationText) : 0;
    if (iterations < 1 || iterations > this.maxIterations) {
      throw new PgAuthError('ERR_PG_AUTH_ITERATIONS', 'iteration count out of range', {
        details: {
          maxIterations: this.maxIterations,
        },
      });
    }
    const { clientKey, storedKey, serverKey } = deriveKeys(saltPassword(this.#password, salt, iterations));
    const withoutProof = `c=biws,r=${nonce}`;
    const authMessage = `${this.clientFirstBare},${serverFirst},${withoutProof}`;
    const proof = xor(clientKey, hmac(storedKey, authMessage));
    this.#expectedServerSignature = hmac(serverKey, authMessage);
    this.state = 'sentClientFinal';
    return `${withoutProof},p=${proof.toString('base64')}`;
  }

  /** Checks the server-final message; throws unless the server proved it knows the verifier. */
  verifyServerFinal(message: Buffer | string): void {
    this.expectState('sentClientFinal');
    this.state = 'failed';
    const text = asText(message, 'server-final message');
    if (text.startsWith('e=')) {
      throw new PgAuthError('ERR_PG_AUTH_FAILED', 'server refused the authentication', {
        details: {
          reason: text.slice(2, 64),
        },
      });
    }
    const signature = decodeBase64(
      readAttributes(text, ['v'], 'server-final message').get('v')!,
      'server signature',
    );
    if (signature.length !== KEY_LENGTH || !timingSafeEqual(signature, this.#expectedServerSignature)) {
      throw new PgAuthError('ERR_PG_AUTH_SERVER_SIGNATURE', 'server signature does not match');
    }
    this.state = 'done';
  }

  private expectState(expected: ClientState): void {
    if (this.state !== expected) {
      throw new PgAuthError('ERR_PG_AUTH_STATE', `SCRAM message out of order (state ${this.state})`);
    }
  }
}
